#!/usr/bin/env bash
# Installs Patroni from PyPI at the version picloud's image pins (PATRONI_VERSION in
# components/tiers/database/postgres.ts), with its etcd3 extra and psycopg2, into a virtualenv in a
# cache outside the clone keyed by that version, and links `patroni` and `patronictl` into the
# validators' directory. The cache is a system one (/var/cache/picloud-tools unless
# $PICLOUD_SYSTEM_TOOLS_CACHE says otherwise): Patroni runs as the postgres user, who cannot reach
# root's home. PostgreSQL itself is Debian's postgresql-15 (bookworm has no 17; the image
# runs 17), installed with its services kept from starting when it is missing, with Debian's
# pgBackRest (2.45; the image gets the PostgreSQL archive's) and socat for the backups' TLS bridge.
# Quick when all is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
# shellcheck source=test/support/apt-download.sh
source "$here/apt-download.sh"

version=$(grep -o 'PATRONI_VERSION = "[0-9][0-9.]*"' "$repo/components/tiers/database/postgres.ts" | cut -d'"' -f2)
[ -n "$version" ] || { echo "install-patroni: no PATRONI_VERSION in components/tiers/database/postgres.ts" >&2; exit 1; }
cache=${PICLOUD_SYSTEM_TOOLS_CACHE:-/var/cache/picloud-tools}
dir="$cache/patroni-$version"
mkdir -p "$bin_dir"

if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v psql >/dev/null || ! command -v pgbackrest >/dev/null || ! command -v socat >/dev/null || [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    echo "install-patroni: installing postgresql-15, pgbackrest, socat and python3-venv from Debian (services kept from starting)" >&2
    apt_install_without_services postgresql-15 postgresql-client-15 pgbackrest socat python3-venv
fi
if ! { [ -x "$dir/bin/patroni" ] && [ "$("$dir/bin/patroni" --version 2>/dev/null)" = "patroni $version" ]; }; then
    echo "install-patroni: installing Patroni $version from PyPI into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$cache"
    chmod 0755 "$cache"
    # Debian's Python, which every user may run (a pyenv one may live in root's home).
    /usr/bin/python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "patroni[etcd3]==$version" "psycopg2-binary==2.9.13"
fi
chmod -R a+rX "$dir"
ln -sf "$dir/bin/patroni" "$bin_dir/patroni"
ln -sf "$dir/bin/patronictl" "$bin_dir/patronictl"
