#!/usr/bin/env bash
# Builds VictoriaMetrics single-node, its vmbackup and vmrestore, and VictoriaLogs from their Go
# modules at the versions picloud's images pin (MONITORING_IMAGES in
# components/tiers/monitoring/images.ts; vmbackup is built on the Pis at the VictoriaMetrics
# version), into a cache outside the clone keyed by version, and links them into the validators'
# directory under their own names (go-tool.sh). Reused when present; about a minute of CPU each the first time.
# Their versions are stamped the way upstream's Makefiles do (lib/buildinfo.Version), so `-version`
# names them. Nothing built here is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
go_tool_log=build-victoria
# shellcheck source=test/support/go-tool.sh
source "$here/go-tool.sh"

# image_version NAME: the version MONITORING_IMAGES pins for victoriametrics/NAME.
image_version() {
    local v
    v=$(grep -o "victoriametrics/$1:v[0-9][0-9.]*" "$repo/components/tiers/monitoring/images.ts" | head -1 | cut -d: -f2 | sed 's/^v//')
    [ -n "$v" ] || { echo "build-victoria: no victoriametrics/$1:v<version> in components/tiers/monitoring/images.ts" >&2; return 1; }
    echo "$v"
}
version=$(image_version victoria-metrics)
module=github.com/VictoriaMetrics/VictoriaMetrics
mkdir -p "$bin_dir"
# Upstream prints `victoria-metrics-<build date>-tags-v<version>-0-g<commit>`; a module has no git
# history, so ours ends at the tag.
go_tool victoria-metrics victoria-metrics "$module" "$module/app/victoria-metrics" "$version" \
    -buildvcs=false -ldflags "-X '$module/lib/buildinfo.Version=victoria-metrics-$(date -u +%Y%m%d-%H%M%S)-tags-v$version'"
for tool in vmbackup vmrestore; do
    go_tool "$tool" "$tool" "$module" "$module/app/$tool" "$version" -buildvcs=false
done

# The Go module proxy refuses VictoriaLogs' v1.52.0 (403, "not available") and serves v1.52.1 and
# v1.52.2, whose changelog ends at v1.52.0 with nothing after it: the image's release is built from
# v1.52.2. Any other pinned version is built as it is.
logs_image=$(image_version victoria-logs)
case $logs_image in
1.52.0) logs_version=1.52.2 ;;
*) logs_version=$logs_image ;;
esac
logs_module=github.com/VictoriaMetrics/VictoriaLogs
go_tool victoria-logs victoria-logs "$logs_module" "$logs_module/app/victoria-logs" "$logs_version" \
    -buildvcs=false -ldflags "-X '$module/lib/buildinfo.Version=victoria-logs-$(date -u +%Y%m%d-%H%M%S)-tags-v$logs_version'"
