#!/usr/bin/env bash
# Builds VictoriaMetrics single-node from its Go module at the version picloud's image pins
# (MONITORING_IMAGES.victoriaMetrics in components/tiers/monitoring/images.ts), into a cache outside
# the clone keyed by that version, and links it into the validators' directory as `victoria-metrics`.
# Reused when present; several minutes of CPU the first time (niced). Its version is stamped the
# way upstream's Makefile does (lib/buildinfo.Version), so `-version` names it. Nothing built here
# is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"

version=$(grep -o 'victoriametrics/victoria-metrics:v[0-9][0-9.]*' "$repo/components/tiers/monitoring/images.ts" | head -1 | cut -d: -f2 | sed 's/^v//')
[ -n "$version" ] || { echo "build-victoria: no victoriametrics/victoria-metrics:v<version> in components/tiers/monitoring/images.ts" >&2; exit 1; }
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
dir="$cache/victoria-metrics-v$version"
module=github.com/VictoriaMetrics/VictoriaMetrics
mkdir -p "$bin_dir"

# Upstream prints `victoria-metrics-<build date>-tags-v<version>-0-g<commit>`; a module has no git
# history, so ours ends at the tag.
if ! { [ -x "$dir/victoria-metrics" ] && "$dir/victoria-metrics" -version 2>/dev/null | grep -qE "^victoria-metrics-[0-9]{8}-[0-9]{6}-tags-v${version//./\\.}\$"; }; then
    command -v go >/dev/null || { echo "build-victoria: VictoriaMetrics is built from its Go module and needs Go: apt-get install golang, or see https://go.dev/doc/install" >&2; exit 1; }
    echo "build-victoria: building VictoriaMetrics $version from $module (several minutes the first time)" >&2
    start=$SECONDS
    mkdir -p "$dir"
    # As upstream's release build (deployment/docker/Makefile, app-via-docker), minus the static link.
    GOBIN="$dir" nice go install -trimpath -buildvcs=false -tags 'netgo osusergo' \
        -ldflags "-X '$module/lib/buildinfo.Version=victoria-metrics-$(date -u +%Y%m%d-%H%M%S)-tags-v$version'" \
        "$module/app/victoria-metrics@v$version" >&2
    echo "build-victoria: built in $((SECONDS - start)) s" >&2
fi
ln -sf "$dir/victoria-metrics" "$bin_dir/victoria-metrics"
