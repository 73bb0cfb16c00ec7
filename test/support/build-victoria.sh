#!/usr/bin/env bash
# Builds VictoriaMetrics single-node from its Go module at the version picloud's image pins
# (MONITORING_IMAGES.victoriaMetrics in components/tiers/monitoring/images.ts), into a cache outside
# the clone keyed by that version, and links it into the validators' directory as `victoria-metrics`
# (go-tool.sh). Reused when present; about a minute of CPU the first time. Its version is stamped
# the way upstream's Makefile does (lib/buildinfo.Version), so `-version` names it. Nothing built
# here is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
go_tool_log=build-victoria
# shellcheck source=test/support/go-tool.sh
source "$here/go-tool.sh"

version=$(grep -o 'victoriametrics/victoria-metrics:v[0-9][0-9.]*' "$repo/components/tiers/monitoring/images.ts" | head -1 | cut -d: -f2 | sed 's/^v//')
[ -n "$version" ] || { echo "build-victoria: no victoriametrics/victoria-metrics:v<version> in components/tiers/monitoring/images.ts" >&2; exit 1; }
module=github.com/VictoriaMetrics/VictoriaMetrics
mkdir -p "$bin_dir"
# Upstream prints `victoria-metrics-<build date>-tags-v<version>-0-g<commit>`; a module has no git
# history, so ours ends at the tag.
go_tool victoria-metrics victoria-metrics "$module" "$module/app/victoria-metrics" "$version" \
    -buildvcs=false -ldflags "-X '$module/lib/buildinfo.Version=victoria-metrics-$(date -u +%Y%m%d-%H%M%S)-tags-v$version'"
