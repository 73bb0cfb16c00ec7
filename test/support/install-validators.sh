#!/usr/bin/env bash
# Puts Prometheus' and Alertmanager's binaries (promtool, prometheus, amtool, alertmanager) from
# Debian into <repo>/.cache/validators/bin, so tests can judge rendered config with the real
# programs and run them for real. Packages are unpacked with `dpkg -x`, never installed: installing
# would start system services this machine must not run. Idempotent: does nothing when all
# binaries are already there.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
binaries=(promtool prometheus amtool alertmanager)
packages=(prometheus prometheus-alertmanager)

missing=0
for b in "${binaries[@]}"; do
    [ -x "$bin_dir/$b" ] || missing=1
done
if [ "$missing" -eq 0 ]; then
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# `apt-get download` writes into the current directory; _apt must be able to write there.
chmod 0777 "$work"
cd "$work"
# A fresh CI image may have empty package lists; refreshing them is only worth it when needed.
if ! apt-get download -qq "${packages[@]}"; then
    apt-get update -qq
    apt-get download -qq "${packages[@]}"
fi

for deb in ./*.deb; do
    dpkg -x "$deb" root
done

mkdir -p "$bin_dir"
for b in promtool prometheus amtool; do
    install -m 0755 "root/usr/bin/$b" "$bin_dir/$b"
done
# Debian renames the Alertmanager daemon; tests look for it under its upstream name.
install -m 0755 root/usr/bin/prometheus-alertmanager "$bin_dir/alertmanager"
