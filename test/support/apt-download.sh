# shellcheck shell=bash
# Sourced by the validator installers. apt_download_here PACKAGE...: makes a temporary work
# directory (removed when the script exits), enters it and downloads the packages' .deb files
# there, installing nothing.
apt_download_here() {
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # `apt-get download` writes into the current directory; _apt must be able to write there.
    chmod 0777 "$work"
    cd "$work" || exit 1
    # A fresh CI image may have empty package lists; refreshing them is only worth it when needed.
    if ! apt-get download -qq "$@"; then
        apt-get update -qq
        apt-get download -qq "$@"
    fi
}
