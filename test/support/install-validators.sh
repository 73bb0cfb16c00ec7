#!/usr/bin/env bash
# Puts Prometheus' and Alertmanager's binaries (promtool, prometheus, amtool, alertmanager) from
# Debian into <repo>/.cache/validators/bin, so tests can judge rendered config with the real
# programs and run them for real. Those packages are unpacked with `dpkg -x`, never installed:
# installing would start system services this machine must not run.
# HAProxy and keepalived are linked against shared libraries (lua, pcre2, libnl, ...) that a bare
# `dpkg -x` would not bring, so they are installed with apt while a policy-rc.d forbids starting
# any service, then linked into the same directory.
# Idempotent: each part does nothing when its binaries are already there.
set -euo pipefail
# shellcheck source=test/support/apt-download.sh
source "$(dirname "$0")/apt-download.sh"

repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
binaries=(promtool prometheus amtool alertmanager)
packages=(prometheus prometheus-alertmanager)


# True when any of the named binaries is not yet an executable in $bin_dir.
any_missing() {
    local b
    for b in "$@"; do
        [ -x "$bin_dir/$b" ] || return 0
    done
    return 1
}

install_load_balancer_validators() {
    any_missing haproxy keepalived || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-validators: installing haproxy and keepalived needs root (apt-get install)" >&2
        return 1
    fi
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        # Exit status 101 tells invoke-rc.d that starting services is forbidden: the packages'
        # postinst scripts would otherwise start daemons this machine must not run.
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
    fi
    local status=0
    (
        export DEBIAN_FRONTEND=noninteractive
        # A fresh CI image may have empty package lists; refreshing them is only worth it when needed.
        if ! apt-get install -y -qq --no-install-recommends haproxy keepalived >/dev/null; then
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends haproxy keepalived >/dev/null
        fi
    ) || status=$?
    # Only remove what this script created: an existing policy-rc.d belongs to the image.
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    [ "$status" -eq 0 ] || return "$status"
    mkdir -p "$bin_dir"
    ln -sf /usr/sbin/haproxy "$bin_dir/haproxy"
    ln -sf /usr/sbin/keepalived "$bin_dir/keepalived"
}

install_load_balancer_validators

any_missing "${binaries[@]}" || exit 0

apt_download_here "${packages[@]}"

for deb in ./*.deb; do
    dpkg -x "$deb" root
done

mkdir -p "$bin_dir"
for b in promtool prometheus amtool; do
    install -m 0755 "root/usr/bin/$b" "$bin_dir/$b"
done
# Debian renames the Alertmanager daemon; tests look for it under its upstream name.
install -m 0755 root/usr/bin/prometheus-alertmanager "$bin_dir/alertmanager"
