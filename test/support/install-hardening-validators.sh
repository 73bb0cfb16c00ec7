#!/usr/bin/env bash
# Unpacks, from Debian 12's own packages, the programs that judge picloud's host hardening files:
# sshd and sftp-server (openssh-server, openssh-sftp-server), ssh-audit, fail2ban and the Python
# systemd bindings its journal backend imports (python3-systemd). They are unpacked with
# `dpkg -x`, never installed: openssh-server's postinst would generate host keys in this machine's
# /etc/ssh and start an sshd, fail2ban's would start its server.
# Result, under <repo>/.cache/validators/hardening (or $PICLOUD_HARDENING_VALIDATORS_DIR):
#   root/                       the unpacked packages (root/etc/fail2ban is Debian's stock tree)
#   bin/sshd, bin/sftp-server   links to the unpacked binaries
#   bin/ssh-audit, bin/fail2ban-client, bin/fail2ban-regex
#                               wrappers that run the unpacked Python programs with their modules
#   versions                    "<package> <version>" per line
# Idempotent: does nothing when every program is already there.
set -euo pipefail
# shellcheck source=test/support/apt-download.sh
source "$(dirname "$0")/apt-download.sh"

repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${PICLOUD_HARDENING_VALIDATORS_DIR:-$repo/.cache/validators/hardening}"
packages=(openssh-server openssh-sftp-server ssh-audit fail2ban python3-systemd)
programs=(sshd sftp-server ssh-audit fail2ban-client fail2ban-regex)

all_present() {
    local p
    for p in "${programs[@]}"; do
        [ -x "$dir/bin/$p" ] || return 1
    done
    [ -s "$dir/versions" ]
}

all_present && exit 0

echo "install-hardening-validators: unpacking ${packages[*]} from Debian into $dir" >&2
apt_download_here "${packages[@]}"

rm -rf "$dir"
mkdir -p "$dir/bin"
: >"$dir/versions"
for deb in ./*.deb; do
    dpkg -x "$deb" "$dir/root"
    # shellcheck disable=SC2016 # dpkg-deb expands ${Package}, not the shell.
    dpkg-deb --showformat='${Package} ${Version}\n' -W "$deb" >>"$dir/versions"
done

ln -s ../root/usr/sbin/sshd "$dir/bin/sshd"
ln -s ../root/usr/lib/openssh/sftp-server "$dir/bin/sftp-server"
for p in ssh-audit fail2ban-client fail2ban-regex; do
    cat >"$dir/bin/$p" <<EOF
#!/bin/sh
# $p from Debian's package, unpacked by install-hardening-validators.sh.
PYTHONPATH='$dir/root/usr/lib/python3/dist-packages' exec python3 '$dir/root/usr/bin/$p' "\$@"
EOF
    chmod 0755 "$dir/bin/$p"
done
