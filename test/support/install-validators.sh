#!/usr/bin/env bash
# Fetches the real programs the unit suite judges rendered files with, from Debian, and only
# what is missing; `npm test` runs it first (test/support/globalSetup.ts), so `npm ci && npm test`
# is the whole setup. Prints one line per thing it fetches; nothing when all is there.
#  - shellcheck, nft (nftables), haproxy and keepalived are installed with apt while a policy-rc.d
#    forbids starting any service (they are linked against shared libraries a bare `dpkg -x`
#    would not bring); haproxy and keepalived are linked into the validators' directory.
#  - promtool, prometheus, amtool, alertmanager and node_exporter are unpacked from Debian's packages with
#    `dpkg -x` into <repo>/.cache/validators/bin, never installed: installing would start
#    services this machine must not run.
#  - etcd and etcdctl likewise, from etcd-server and etcd-client.
#  - dig (dnsutils) with apt; CoreDNS built from its Go module (build-coredns.sh, cached by version).
#  - Garage built from its crate (build-garage.sh, cached by version; AGPL, only run here, never shipped).
#  - Patroni from PyPI and Debian's postgresql-15 (install-patroni.sh, cached by version).
#  - Cassandra's jars from Maven Central and cqlsh from PyPI (install-cassandra.sh, cached by version).
#  - Debian's Redis 7 and RabbitMQ, nats-server and the NATS CLI from their Go modules (install-cache-bus.sh, cached by version).
#  - Redis, Sentinel and RabbitMQ from Debian, nats-server and the NATS CLI built from their Go
#    modules, and the NATS and Redis exporters when the Go module proxy serves them
#    (install-cache-bus.sh, cached by version).
#  - sshd, ssh-audit and fail2ban: install-hardening-validators.sh.
# Idempotent and quick when everything is there. Installing needs root and Debian's mirrors.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=test/support/apt-download.sh
source "$here/apt-download.sh"

repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"

mapfile -t packages < <(missing_commands shellcheck:shellcheck nft:nftables haproxy:haproxy keepalived:keepalived dig:dnsutils jq:jq)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "install-validators: installing ${packages[*]} from Debian (services kept from starting)" >&2
    apt_install_without_services "${packages[@]}"
fi
mkdir -p "$bin_dir"
for b in haproxy keepalived dig; do
    [ -x "$bin_dir/$b" ] || ln -sf "$(command -v "$b")" "$bin_dir/$b"
done

missing=0
for b in promtool prometheus amtool alertmanager node_exporter; do
    [ -x "$bin_dir/$b" ] || missing=1
done
# Debian's Alertmanager reads its notification templates from this folder, compiled in: without them the daemon does not start.
am_templates=/usr/share/prometheus/alertmanager
[ -f "$am_templates/default.tmpl" ] && [ -f "$am_templates/email.tmpl" ] || missing=1
if [ "$missing" -eq 1 ]; then
    echo "install-validators: unpacking prometheus, prometheus-alertmanager and prometheus-node-exporter from Debian into $bin_dir" >&2
    (
        apt_download_here prometheus prometheus-alertmanager prometheus-node-exporter
        for deb in ./*.deb; do
            dpkg -x "$deb" root
        done
        for b in promtool prometheus amtool; do
            install -m 0755 "root/usr/bin/$b" "$bin_dir/$b"
        done
        # Debian renames the Alertmanager daemon and node_exporter; tests look for them under their upstream names.
        install -m 0755 root/usr/bin/prometheus-alertmanager "$bin_dir/alertmanager"
        install -m 0755 root/usr/bin/prometheus-node-exporter "$bin_dir/node_exporter"
        install -d "$am_templates"
        install -m 0644 "root$am_templates"/*.tmpl "$am_templates"
    )
fi

# etcd and etcdctl (Go, static): unpacked likewise, for the service registry's cluster test.
if [ ! -x "$bin_dir/etcd" ] || [ ! -x "$bin_dir/etcdctl" ]; then
    echo "install-validators: unpacking etcd-server and etcd-client from Debian into $bin_dir" >&2
    (
        apt_download_here etcd-server etcd-client
        for deb in ./*.deb; do
            dpkg -x "$deb" root
        done
        install -m 0755 root/usr/bin/etcd "$bin_dir/etcd"
        install -m 0755 root/usr/bin/etcdctl "$bin_dir/etcdctl"
    )
fi

bash "$here/build-coredns.sh"
bash "$here/build-victoria.sh"
bash "$here/build-garage.sh"
bash "$here/install-patroni.sh"
bash "$here/install-cassandra.sh"
bash "$here/install-cache-bus.sh"
bash "$here/install-hardening-validators.sh"
