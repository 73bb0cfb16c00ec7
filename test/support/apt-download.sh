# shellcheck shell=bash
# Sourced by the tool installers of the test suites.

# apt_download_here PACKAGE...: makes a temporary work directory (removed when the script exits),
# enters it and downloads the packages' .deb files there, installing nothing.
apt_download_here() {
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # `apt-get download` writes into the current directory; _apt must be able to write there.
    chmod 0777 "$work"
    cd "$work" || exit 1
    # A fresh CI image may have empty package lists; refreshing them is only worth it when needed.
    if ! apt-get download -qq "$@" 2>/dev/null; then
        apt-get update -qq
        apt-get download -qq "$@"
    fi
}

# apt_install_without_services PACKAGE...: installs Debian packages while a policy-rc.d forbids
# their maintainer scripts to start any service (this machine must not run them); needs root.
apt_install_without_services() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "installing $* needs root: run the suite as root, or apt-get install $* yourself" >&2
        return 1
    fi
    local policy=/usr/sbin/policy-rc.d created_policy=0 status=0
    if [ ! -e "$policy" ]; then
        # Exit status 101 tells invoke-rc.d that starting services is forbidden.
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
    fi
    (
        export DEBIAN_FRONTEND=noninteractive
        # A fresh CI image may have empty package lists; refreshing them is only worth it when needed.
        if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "$@" >/dev/null
        fi
    ) || status=$?
    # Only remove what this function created: an existing policy-rc.d belongs to the image.
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    return "$status"
}

# missing_commands COMMAND:PACKAGE...: prints the packages of the commands not on PATH, one a line.
missing_commands() {
    local pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || echo "${pair#*:}"
    done
}
