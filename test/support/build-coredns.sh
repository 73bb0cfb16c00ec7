#!/usr/bin/env bash
# Builds CoreDNS from its Go module at the version picloud's image pins (COREDNS_IMAGE in
# components/tiers/serviceRegistry/dns.ts), into a cache outside the clone keyed by that version,
# and links it into the validators' directory as `coredns`. Reused when present; a few minutes of
# CPU the first time. Nothing built here is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"

version=$(grep -o 'coredns/coredns:[0-9][0-9.]*' "$repo/components/tiers/serviceRegistry/dns.ts" | head -1 | cut -d: -f2)
[ -n "$version" ] || { echo "build-coredns: no coredns/coredns:<version> in components/tiers/serviceRegistry/dns.ts" >&2; exit 1; }
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
dir="$cache/coredns-v$version"
mkdir -p "$bin_dir"

if ! { [ -x "$dir/coredns" ] && "$dir/coredns" -version 2>/dev/null | grep -qx "CoreDNS-$version"; }; then
    command -v go >/dev/null || { echo "build-coredns: CoreDNS is built from its Go module and needs Go: apt-get install golang, or see https://go.dev/doc/install" >&2; exit 1; }
    echo "build-coredns: building CoreDNS $version from github.com/coredns/coredns (a few minutes the first time)" >&2
    start=$SECONDS
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-mod=mod go install -trimpath "github.com/coredns/coredns@v$version" >&2
    echo "build-coredns: built in $((SECONDS - start)) s" >&2
fi
ln -sf "$dir/coredns" "$bin_dir/coredns"
