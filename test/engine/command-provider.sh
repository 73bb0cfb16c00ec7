#!/usr/bin/env bash
# Prints the folder holding the command provider (pulumi-resource-command) at the version of
# @pulumi/command this project pins: <engine cache>/command-v<version>, else the one on PATH.
# Without one it says, in one line on stderr, what is missing and how to provide it, and exits 1.
# It is not built here as the CLI is: the Go module proxy serves no version of
# github.com/pulumi/pulumi-command/provider (403), and the root module's releases hold no provider.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(node -p 'require("@pulumi/command/package.json").version')
cache=${PICLOUD_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-engine}
dir="$cache/command-v$version"
if [[ -x $dir/pulumi-resource-command ]]; then
    echo "$dir"
elif found=$(command -v pulumi-resource-command); then
    dirname "$found"
else
    echo "the engine lane needs the command provider pulumi-resource-command v$version in $dir or on PATH: build github.com/pulumi/pulumi-command v$version (provider/cmd/pulumi-resource-command) or take it from its release, and put it there; the Go module proxy does not serve it" >&2
    exit 1
fi
