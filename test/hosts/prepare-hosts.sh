#!/usr/bin/env bash
# Builds, or finds in the cache, what the host test bed (testbed.ts) boots:
#  - a Debian bookworm rootfs (debootstrap) with systemd, sshd, sudo and the login user `pi`
#    (passwordless sudo, like Raspberry Pi OS), kept as a tarball and unpacked beside it;
#  - a local apt repository of the packages tests install on the hosts, which have no internet:
#    the hosts see it, bind-mounted read-only, as `deb [trusted=yes] file:/srv/picloud-apt ./`.
# Prints `rootfs=<directory>` and `apt_repo=<directory>` on stdout; progress goes to stderr.
# Each is keyed by a hash of its package list and of the function that builds it, so changing
# either rebuilds it (and the apt repository follows its rootfs); older entries are removed.
# Needs root; building also needs debootstrap, apt-ftparchive (apt-utils) and deb.debian.org.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${PICLOUD_HOSTS_CACHE:-$repo/.cache/hosts}"
readonly SUITE=bookworm
readonly MIRROR=http://deb.debian.org/debian
readonly SECURITY_MIRROR=http://deb.debian.org/debian-security
# Where the hosts find the local apt repository (testbed.ts bind-mounts it there).
readonly HOST_APT_DIR=/srv/picloud-apt

# What every host has from the start: what a Raspberry Pi OS Lite image brings that picloud's
# scripts rely on. Dependencies come along; recommends do not.
rootfs_packages=(
    systemd systemd-sysv dbus
    openssh-server sudo
    iproute2 nftables
    curl ca-certificates
    tzdata procps
)

# What tests install on the hosts at run time, with dependencies and recommends.
repo_packages=(
    fail2ban ssh-audit lynis
    keepalived haproxy
    systemd-timesyncd
    jq
    systemd-journal-remote
)

log() { echo "prepare-hosts: $*" >&2; }

die() {
    log "$*"
    exit 1
}

require_build_tools() {
    local tool missing=()
    for tool in debootstrap apt-ftparchive; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "building needs ${missing[*]}: apt-get install debootstrap apt-utils"
}

# build_rootfs DIR: debootstraps the host rootfs into DIR (bookworm's current point release),
# ready to be booted more than once: no machine id, no host keys, no apt lists.
build_rootfs() {
    local dir=$1
    debootstrap --variant=minbase --include="$(
        IFS=,
        echo "${rootfs_packages[*]}"
    )" "$SUITE" "$dir" "$MIRROR" >&2
    chroot "$dir" /bin/bash -euo pipefail -c '
        useradd --create-home --shell /bin/bash pi
        # A known password lets tests prove that password logins are refused.
        echo pi:raspberry | chpasswd
        echo "pi ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/010_pi-nopasswd
        chmod 0440 /etc/sudoers.d/010_pi-nopasswd
        install -d -m 0700 -o pi -g pi /home/pi/.ssh'
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin
    echo "deb [trusted=yes] file:$HOST_APT_DIR ./" >"$dir/etc/apt/sources.list"
    # Each host gets its own host keys (testbed.ts) and its own machine id (systemd, at boot).
    rm -f "$dir"/etc/ssh/ssh_host_*
    : >"$dir/etc/machine-id"
    rm -f "$dir/var/lib/dbus/machine-id"
    # No DNS: the hosts only talk to each other, by address.
    : >"$dir/etc/resolv.conf"
    # Raspberry Pi OS' default name, which picloud's bootstrap replaces.
    echo raspberrypi >"$dir/etc/hostname"
    cat >"$dir/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 raspberrypi
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
EOF
}

# build_apt_repo ROOTFS WORK DIR: downloads repo_packages into DIR, with whatever they need
# beyond what ROOTFS has installed (and with bookworm's point and security updates), and indexes
# DIR as a flat apt repository. apt runs here, on its own state in WORK, reading only ROOTFS'
# dpkg status and Debian's keyring: neither this machine's apt setup nor ROOTFS is touched.
build_apt_repo() {
    local rootfs=$1 work=$2 dir=$3 keyring suite
    keyring="$rootfs/usr/share/keyrings/debian-archive-keyring.gpg"
    mkdir -p "$work"/etc/apt/{apt.conf.d,preferences.d,sources.list.d} "$work"/var/lib/apt/lists/partial \
        "$work"/var/cache/apt/archives/partial "$dir"
    for suite in "$MIRROR $SUITE" "$MIRROR $SUITE-updates" "$SECURITY_MIRROR $SUITE-security"; do
        echo "deb [signed-by=$keyring] $suite main"
    done >"$work/etc/apt/sources.list"
    cat >"$work/apt.conf" <<EOF
Dir "$work/";
Dir::State::status "$rootfs/var/lib/dpkg/status";
APT::Sandbox::User "root";
EOF
    APT_CONFIG="$work/apt.conf" apt-get -q update >&2
    APT_CONFIG="$work/apt.conf" apt-get -q -y --download-only install "${repo_packages[@]}" >&2
    mv "$work"/var/cache/apt/archives/*.deb "$dir/"
    (
        cd "$dir"
        apt-ftparchive packages . >Packages
        apt-ftparchive release . >Release
    )
    chmod -R a+rX "$dir"
}

key_of() { sha256sum | cut -c1-16; }

# Numeric owners: the rootfs' users (pi) must not be mapped through this machine's user names.
tar_options=(--numeric-owner --xattrs --xattrs-include='*')

[[ $EUID -eq 0 ]] || die "needs root (debootstrap, chroot, and the rootfs' files are root's)"
mkdir -p "$cache"
# One builder at a time: a second test run waits for the first one's build instead of racing it.
exec 9>"$cache/.lock"
flock 9
# What a build that was killed half way left behind.
rm -rf "$cache"/.build-*

rootfs_key=$(printf '%s\n' "$SUITE" "${rootfs_packages[@]}" "$(declare -f build_rootfs)" | key_of)
repo_key=$(printf '%s\n' "$rootfs_key" "${repo_packages[@]}" "$(declare -f build_apt_repo)" | key_of)
# The tarball is what lasts (and what a CI cache would keep); the directory unpacked from it is
# the read-only lower layer every host's overlay shares, so starting a test bed copies nothing.
rootfs_tar="$cache/$SUITE-rootfs-$rootfs_key.tar"
rootfs_dir="$cache/$SUITE-rootfs-$rootfs_key"
apt_repo="$cache/apt-repo-$repo_key"

work=""
trap '[[ -z $work ]] || rm -rf "$work"' EXIT
new_work_dir() {
    [[ -z $work ]] || rm -rf "$work"
    work=$(mktemp -d "$cache/.build-XXXXXX")
}

if [[ ! -f $rootfs_tar ]]; then
    log "building the $SUITE rootfs with debootstrap (about a minute) ..."
    require_build_tools
    new_work_dir
    build_rootfs "$work/rootfs"
    tar --create "${tar_options[@]}" --file="$work/rootfs.tar" --directory="$work/rootfs" .
    rm -rf "$cache/$SUITE"-rootfs-*
    mv "$work/rootfs.tar" "$rootfs_tar"
    mv "$work/rootfs" "$rootfs_dir"
elif [[ ! -d $rootfs_dir ]]; then
    log "unpacking $rootfs_tar ..."
    new_work_dir
    mkdir "$work/rootfs"
    tar --extract "${tar_options[@]}" --file="$rootfs_tar" --directory="$work/rootfs"
    mv "$work/rootfs" "$rootfs_dir"
fi

if [[ ! -f $apt_repo/Packages ]]; then
    log "downloading the packages the hosts install (${repo_packages[*]}) ..."
    require_build_tools
    new_work_dir
    build_apt_repo "$rootfs_dir" "$work/apt" "$work/repo"
    rm -rf "$cache"/apt-repo-*
    mv "$work/repo" "$apt_repo"
fi

echo "rootfs=$rootfs_dir"
echo "apt_repo=$apt_repo"
