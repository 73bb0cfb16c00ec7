#!/usr/bin/env bash
# Fetches the servers the cache and bus tiers' tests run, and only what is missing:
#  - Debian's redis-server, redis-sentinel, redis-tools and rabbitmq-server, installed while a
#    policy-rc.d forbids starting any service; whatever redis, RabbitMQ or epmd process the
#    install started all the same is stopped (systemd units disabled), and redis-server,
#    redis-sentinel, redis-cli and RabbitMQ's rabbitmq-server, rabbitmqctl and rabbitmq-queues
#    are linked into the validators' directory.
#  - nats-server built from its Go module at the version picloud's image pins (NATS_VERSION in
#    components/tiers/bus/nats.ts; $PICLOUD_NATS_VERSION overrides it), and the NATS CLI
#    (natscli, pinned here), each into a cache outside the clone keyed by version, linked as
#    `nats-server` and `nats`.
#  - pika (the Python AMQP client the RabbitMQ test drives queues with) from PyPI into a venv in
#    the same cache, keyed by version, its python run as `pika-python`.
#  - Not redis_exporter nor prometheus-nats-exporter: the Go module proxy refuses both (403), so
#    the alerts are judged by promtool on series shaped as they serve them.
# Prints one line per thing it fetches; nothing when all is there. Nothing built here is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
# shellcheck source=test/support/apt-download.sh
source "$here/apt-download.sh"
# shellcheck source=test/support/go-tool.sh
source "$here/go-tool.sh"

cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
go_tool_log=install-cache-bus
natscli_version=0.5.0
pika_version=1.3.2
mkdir -p "$bin_dir"

# The PIDs of the processes a redis or RabbitMQ install may start, one a line.
service_pids() {
    ps -eo pid=,comm= | awk '$2 ~ /^(redis-server|redis-sentinel|redis-check-rdb|epmd|beam\.smp|erl_child_setup|inet_gethost)$/ { print $1 }'
}

# stop_started_services PIDS: stops the services an install started despite the policy-rc.d
# (only processes not among PIDS, those that ran before it) and keeps them from starting at boot.
stop_started_services() {
    local before="$1" pid left
    if command -v systemctl >/dev/null; then
        systemctl disable --quiet redis-server.service redis-sentinel.service rabbitmq-server.service epmd.socket epmd.service 2>/dev/null || true
        if [ -d /run/systemd/system ]; then
            systemctl stop redis-server.service redis-sentinel.service rabbitmq-server.service epmd.socket epmd.service 2>/dev/null || true
        fi
    fi
    for pid in $(service_pids); do
        grep -qx "$pid" <<<"$before" && continue
        echo "install-cache-bus: stopping $(ps -o comm= -p "$pid" || true) (pid $pid), started by the install" >&2
        kill "$pid" 2>/dev/null || true
        left="$pid"
    done
    if [ -n "${left:-}" ]; then
        sleep 2
        for pid in $(service_pids); do
            grep -qx "$pid" <<<"$before" || kill -9 "$pid" 2>/dev/null || true
        done
    fi
}

mapfile -t packages < <(missing_commands redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools rabbitmq-server:rabbitmq-server rabbitmqctl:rabbitmq-server | sort -u)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "install-cache-bus: installing ${packages[*]} from Debian (services kept from starting)" >&2
    before=$(service_pids)
    apt_install_without_services "${packages[@]}"
    stop_started_services "$before"
fi
for b in redis-server redis-sentinel redis-cli; do
    [ -x "$bin_dir/$b" ] || ln -sf "$(command -v "$b")" "$bin_dir/$b"
done
# RabbitMQ's own scripts, not /usr/sbin's wrappers (which switch to the rabbitmq user and its
# home); each is called at its own path, where it finds rabbitmq-env, so a script, not a link.
for b in rabbitmq-server rabbitmqctl rabbitmq-queues; do
    rm -f "$bin_dir/$b"
    printf '#!/bin/sh\nexec /usr/lib/rabbitmq/bin/%s "$@"\n' "$b" >"$bin_dir/$b"
    chmod 0755 "$bin_dir/$b"
done

nats_version=${PICLOUD_NATS_VERSION:-}
if [ -z "$nats_version" ]; then
    nats_version=$(grep -o 'NATS_VERSION = "[0-9][0-9.]*"' "$repo/components/tiers/bus/nats.ts" 2>/dev/null | cut -d'"' -f2 || true)
fi
[ -n "$nats_version" ] || { echo "install-cache-bus: no NATS_VERSION = \"<version>\" in components/tiers/bus/nats.ts (or set PICLOUD_NATS_VERSION)" >&2; exit 1; }
go_tool nats-server nats-server github.com/nats-io/nats-server/v2 github.com/nats-io/nats-server/v2 "$nats_version"
go_tool nats natscli github.com/nats-io/natscli github.com/nats-io/natscli/nats "$natscli_version"

pika_dir="$cache/pika-v$pika_version"
if [ ! -x "$pika_dir/bin/python" ] || ! "$pika_dir/bin/python" -c 'import pika' 2>/dev/null; then
    echo "install-cache-bus: installing pika $pika_version from PyPI into $pika_dir" >&2
    rm -rf "$pika_dir"
    /usr/bin/python3 -m venv "$pika_dir"
    "$pika_dir/bin/pip" install --quiet --disable-pip-version-check "pika==$pika_version"
fi
# A script, not a link: Python finds its venv from the path it is started at.
rm -f "$bin_dir/pika-python"
printf '#!/bin/sh\nexec %s "$@"\n' "$pika_dir/bin/python" >"$bin_dir/pika-python"
chmod 0755 "$bin_dir/pika-python"
