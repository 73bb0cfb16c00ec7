#!/usr/bin/env bash
# Installs, from Debian, what the host test bed needs on this machine and only what is missing:
# systemd-nspawn (systemd-container), debootstrap, apt-ftparchive (apt-utils), ssh and ssh-keygen
# (openssh-client), ip (iproute2). `npm run test:hosts` runs it first (globalSetup.ts). Prints one
# line when it installs something; needs root and Debian's mirrors then.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=test/support/apt-download.sh
source "$here/../support/apt-download.sh"

mapfile -t packages < <(missing_commands systemd-nspawn:systemd-container debootstrap:debootstrap apt-ftparchive:apt-utils ssh:openssh-client ssh-keygen:openssh-client ip:iproute2 | sort -u)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "install-host-tools: installing ${packages[*]} from Debian (services kept from starting)" >&2
    apt_install_without_services "${packages[@]}"
fi
