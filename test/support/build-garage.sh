#!/usr/bin/env bash
# Builds Garage from its crate on crates.io at the version picloud's image pins (GARAGE_IMAGE in
# components/tiers/blob/garage.ts), into a cache outside the clone keyed by that version, and
# links it into the validators' directory as `garage`. Reused when present; the first build takes
# tens of minutes of CPU (its build folder is kept beside it, so an interrupted build resumes).
# Garage is AGPL: it is built here only to judge picloud's rendered config, never shipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"

version=$(grep -o 'dxflrs/garage:v[0-9][0-9.]*' "$repo/components/tiers/blob/garage.ts" | head -1 | cut -dv -f2)
[ -n "$version" ] || { echo "build-garage: no dxflrs/garage:v<version> in components/tiers/blob/garage.ts" >&2; exit 1; }
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
dir="$cache/garage-v$version"
mkdir -p "$bin_dir"

if ! { [ -x "$dir/bin/garage" ] && "$dir/bin/garage" --version 2>/dev/null | grep -q -E "[:v]${version//./\\.}( |$)"; }; then
    command -v cargo >/dev/null || { echo "build-garage: Garage is built from its crate and needs Rust's cargo: see https://rustup.rs" >&2; exit 1; }
    echo "build-garage: building Garage $version from crates.io (tens of minutes the first time)" >&2
    start=$SECONDS
    mkdir -p "$dir"
    CARGO_TARGET_DIR="$dir/target" nice cargo install --locked --quiet --root "$dir" --version "=$version" garage >&2
    rm -rf "$dir/target"
    echo "build-garage: built in $((SECONDS - start)) s" >&2
fi
ln -sf "$dir/bin/garage" "$bin_dir/garage"
