#!/usr/bin/env bash
# Builds the Pulumi CLI from its Go module at the version of @pulumi/pulumi this project pins, into
# a cache outside the clone keyed by that version, and prints where it is. Reused when present.
#
# pkg/v3's go.mod carries `replace` lines, so `go install …@version` refuses it; a small wrapper
# module that requires pkg/v3 and sdk/v3 at the same version (and repeats pkg's one replace that
# is not a local path) builds it with `go build`. Nothing built here is committed.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(node -p 'require("@pulumi/pulumi/package.json").version')
cache=${PICLOUD_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-engine}
dir="$cache/pulumi-v$version"
bin="$dir/bin/pulumi"

if [[ -x $bin ]] && "$bin" version 2>/dev/null | grep -qx "v$version"; then
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { echo "build-engine: the Pulumi CLI is built from its Go module and needs Go 1.25 or later: apt-get install golang, or see https://go.dev/doc/install" >&2; exit 1; }

start=$SECONDS
mkdir -p "$dir/src"
cat >"$dir/src/go.mod" <<MOD
module picloud.local/engine-build

go 1.25.11

require (
	github.com/pulumi/pulumi/pkg/v3 v$version
	github.com/pulumi/pulumi/sdk/v3 v$version
)

// The one replace in pkg/v3's own go.mod that does not point into its repository.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
cat >"$dir/src/tools.go" <<'GO'
//go:build tools

// Package tools pins the Pulumi CLI's main package in this wrapper module.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
(
    cd "$dir/src"
    echo "build-engine: building the Pulumi CLI v$version from github.com/pulumi/pulumi/pkg/v3 (a few minutes the first time)" >&2
    GOFLAGS=-mod=mod go mod tidy >&2
    go build -trimpath -o "$bin.partial" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
)
mv -f "$bin.partial" "$bin"
echo "build-engine: built $("$bin" version) in $((SECONDS - start)) s" >&2
echo "$bin"
