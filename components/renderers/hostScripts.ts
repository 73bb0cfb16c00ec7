/**
 * The scripts PiHost runs on a Pi over SSH, as pure functions of typed input. Every value is put
 * into a `readonly` shell variable at the top, single-quoted; the logic below never splices text.
 */

/** What the bootstrap needs to know about one Pi. */
export interface BootstrapInput {
    /** Hostname to set (a validated DNS label). */
    readonly hostname: string;
    readonly model: "pi4" | "pi5";
    readonly storage: "sd" | "ssd";
    /** The SSH login user; gets added to the docker group. */
    readonly sshUser: string;
    /** IANA timezone, e.g. "Etc/UTC". */
    readonly timezone: string;
    /** NTP servers for systemd-timesyncd. */
    readonly ntpServers: readonly string[];
    /** journald RuntimeMaxUse in MB (logs live in RAM). */
    readonly journalRuntimeMaxMb: number;
}

/** Quotes a value for bash: single quotes, with embedded single quotes closed and escaped. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Fingerprint of Docker's release signing key for its apt repository. */
export const DOCKER_APT_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";

/** The last line of the bootstrap's stdout: how many steps changed and whether a reboot follows. */
export const BOOTSTRAP_SUMMARY = /^picloud-bootstrap: changed=(\d+) reboot=(required|no)$/m;

/**
 * The idempotent bootstrap, run as root (`sudo -n bash`). Each step compares what is with what
 * should be and changes only the difference, printing `picloud: ok|changed|skipped <step>`; a
 * second run prints no `changed` line. Ends with `picloud-bootstrap: changed=N reboot=required|no`.
 */
export function renderBootstrapScript(input: BootstrapInput): string {
    return `#!/usr/bin/env bash
# picloud bootstrap for ${input.hostname}: rendered by picloud, run by PiHost as root.
set -euo pipefail

readonly PICLOUD_HOSTNAME=${shellQuote(input.hostname)}
readonly PICLOUD_MODEL=${shellQuote(input.model)}
readonly PICLOUD_STORAGE=${shellQuote(input.storage)}
readonly PICLOUD_SSH_USER=${shellQuote(input.sshUser)}
readonly PICLOUD_TIMEZONE=${shellQuote(input.timezone)}
readonly PICLOUD_NTP_SERVERS=${shellQuote(input.ntpServers.join(" "))}
readonly PICLOUD_JOURNAL_MAX_MB=${shellQuote(String(input.journalRuntimeMaxMb))}
readonly DOCKER_KEY_FINGERPRINT=${shellQuote(DOCKER_APT_KEY_FINGERPRINT)}
readonly BOOT=/boot/firmware

export DEBIAN_FRONTEND=noninteractive
changed=0
reboot=no

ok() { echo "picloud: ok $1"; }
did() { echo "picloud: changed $1"; changed=$((changed + 1)); }
skip() { echo "picloud: skipped $1: $2"; }
die() { echo "picloud: error: $*" >&2; exit 1; }

# write_if_changed PATH MODE CONTENT: writes only when the content differs; returns 0 if it wrote.
write_if_changed() {
    local path=$1 mode=$2 content=$3 tmp
    tmp=$(mktemp)
    printf '%s\\n' "$content" >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    mkdir -p "$(dirname "$path")"
    install -m "$mode" "$tmp" "$path"
    rm -f "$tmp"
    return 0
}

installed() { dpkg-query -W -f='\${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {
    apt-get -o Dpkg::Options::=--force-confold install -y --no-install-recommends "$@"
}

# --- 64-bit userland: picloud's images are arm64 only ---------------------------------------
arch=$(dpkg --print-architecture)
case "$arch" in
    arm64 | amd64) ;;
    *) die "picloud needs 64-bit Raspberry Pi OS (arm64); this system's userland is $arch. Reflash with the 64-bit image." ;;
esac
[ "$(getconf LONG_BIT)" = 64 ] || die "picloud needs a 64-bit userland; getconf LONG_BIT says $(getconf LONG_BIT)"
ok "64-bit ($arch)"

pi_hardware=no
if [ -r /proc/device-tree/model ] && tr -d '\\0' </proc/device-tree/model | grep -q "Raspberry Pi"; then
    pi_hardware=yes
else
    skip pi-hardware "not a Raspberry Pi ($(tr -d '\\0' </proc/device-tree/model 2>/dev/null || echo 'no /proc/device-tree/model')); boot settings left alone"
fi

# --- hostname ------------------------------------------------------------------------------
if [ "$(hostname)" != "$PICLOUD_HOSTNAME" ]; then
    if command -v hostnamectl >/dev/null && hostnamectl set-hostname "$PICLOUD_HOSTNAME" 2>/dev/null; then :; else
        printf '%s\\n' "$PICLOUD_HOSTNAME" >/etc/hostname
        hostname "$PICLOUD_HOSTNAME" 2>/dev/null || true
    fi
    did hostname
else
    ok hostname
fi
hosts_line="127.0.1.1	$PICLOUD_HOSTNAME"
if grep -qxF "$hosts_line" /etc/hosts; then
    ok /etc/hosts
else
    if grep -q '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then
        sed -i "s/^127\\.0\\.1\\.1[[:space:]].*/$hosts_line/" /etc/hosts
    else
        printf '%s\\n' "$hosts_line" >>/etc/hosts
    fi
    did /etc/hosts
fi

# --- time: the Pi has no RTC battery by default, so NTP must work from boot ------------------
if installed systemd-timesyncd; then ok systemd-timesyncd; else apt-get update -qq; apt_install systemd-timesyncd; did systemd-timesyncd; fi
if write_if_changed /etc/systemd/timesyncd.conf.d/picloud.conf 0644 "[Time]
NTP=$PICLOUD_NTP_SERVERS"; then
    systemctl restart systemd-timesyncd
    did timesyncd.conf
else
    ok timesyncd.conf
fi
if systemctl is-enabled --quiet systemd-timesyncd 2>/dev/null; then ok timesyncd-enabled; else systemctl enable --now systemd-timesyncd; did timesyncd-enabled; fi
if [ "$(readlink -f /etc/localtime)" = "/usr/share/zoneinfo/$PICLOUD_TIMEZONE" ]; then
    ok timezone
else
    [ -f "/usr/share/zoneinfo/$PICLOUD_TIMEZONE" ] || die "unknown timezone $PICLOUD_TIMEZONE (no /usr/share/zoneinfo/$PICLOUD_TIMEZONE)"
    if ! timedatectl set-timezone "$PICLOUD_TIMEZONE" 2>/dev/null; then
        ln -sf "/usr/share/zoneinfo/$PICLOUD_TIMEZONE" /etc/localtime
        printf '%s\\n' "$PICLOUD_TIMEZONE" >/etc/timezone
    fi
    did timezone
fi

# --- logs off the SD card: journald in RAM, container logs into journald ---------------------
if write_if_changed /etc/systemd/journald.conf.d/picloud.conf 0644 "[Journal]
Storage=volatile
RuntimeMaxUse=\${PICLOUD_JOURNAL_MAX_MB}M"; then
    systemctl restart systemd-journald
    did journald-volatile
else
    ok journald-volatile
fi
if [ "$PICLOUD_STORAGE" = sd ]; then
    tmpfs_line="tmpfs /var/log tmpfs defaults,noatime,nosuid,nodev,mode=0755,size=64m 0 0"
    if grep -qxF "$tmpfs_line" /etc/fstab; then
        ok var-log-tmpfs
    else
        printf '%s\\n' "$tmpfs_line" >>/etc/fstab
        did "var-log-tmpfs (takes effect at next boot)"
    fi
fi

# --- boot settings: memory cgroup (containers' memory limits), 4 KB pages on a Pi 5 ----------
if [ "$pi_hardware" = yes ]; then
    if grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        ok memory-cgroup
    else
        if ! grep -q 'cgroup_enable=memory' "$BOOT/cmdline.txt"; then
            sed -i '1 s/$/ cgroup_enable=memory cgroup_memory=1/' "$BOOT/cmdline.txt"
            did "memory-cgroup (cmdline.txt)"
        fi
        reboot=required
    fi
    if [ "$PICLOUD_MODEL" = pi5 ]; then
        # The Pi 5 kernel uses 16 KB pages; jemalloc-based images crash on it.
        if grep -qx 'kernel=kernel8.img' "$BOOT/config.txt"; then ok kernel8; else printf '%s\\n' 'kernel=kernel8.img' >>"$BOOT/config.txt"; did kernel8; fi
        [ "$(getconf PAGESIZE)" = 4096 ] || reboot=required
    fi
else
    skip memory-cgroup "no Raspberry Pi boot partition to edit"
fi

# --- Docker Engine, from Docker's apt repository with its signing key checked -----------------
if [ "\${PICLOUD_SKIP_DOCKER:-0}" = 1 ]; then
    skip docker "PICLOUD_SKIP_DOCKER=1 (test host without a Docker engine)"
else
    if command -v docker >/dev/null; then
        ok docker-installed
    else
        apt-get update -qq
        apt_install ca-certificates curl gnupg
        install -d -m 0755 /etc/apt/keyrings
        curl -fsSL https://download.docker.com/linux/debian/gpg -o /etc/apt/keyrings/docker.asc
        fingerprint=$(gpg --show-keys --with-colons /etc/apt/keyrings/docker.asc | awk -F: '$1 == "fpr" { print $10; exit }')
        [ "$fingerprint" = "$DOCKER_KEY_FINGERPRINT" ] || die "Docker's apt key has fingerprint '$fingerprint', expected $DOCKER_KEY_FINGERPRINT; refusing to trust it"
        # shellcheck source=/dev/null
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian %s stable\\n' "$arch" "$codename" >/etc/apt/sources.list.d/docker.list
        apt-get update -qq
        apt_install docker-ce docker-ce-cli containerd.io
        did docker-installed
    fi
    if write_if_changed /etc/docker/daemon.json 0644 '{
  "log-driver": "journald",
  "live-restore": true
}'; then
        if systemctl is-active --quiet docker; then systemctl restart docker; fi
        did daemon.json
    else
        ok daemon.json
    fi
    if systemctl is-enabled --quiet docker && systemctl is-active --quiet docker; then ok docker-running; else systemctl enable --now docker; did docker-running; fi
    if id -nG "$PICLOUD_SSH_USER" | tr ' ' '\\n' | grep -qx docker; then ok docker-group; else usermod -aG docker "$PICLOUD_SSH_USER"; did docker-group; fi
fi

echo "picloud-bootstrap: changed=$changed reboot=$reboot"

if [ "$reboot" = required ]; then
    # Reboot shortly, and stop taking new SSH connections now: PiHost's next command can then only
    # connect after the reboot. Debian's ssh.service uses KillMode=process, so this session survives.
    systemd-run --on-active=5 --unit=picloud-reboot systemctl reboot >/dev/null
    systemd-run --on-active=180 --unit=picloud-ssh-safety systemctl start ssh >/dev/null
    systemctl stop ssh.socket 2>/dev/null || true
    systemctl stop ssh
fi
`;
}

/**
 * Readiness poll, run as the SSH user before anything else: waits up to 5 minutes for systemd to
 * finish booting. "degraded" counts as booted: one failed unit must not block the bootstrap.
 */
export function renderReadinessScript(): string {
    return `#!/usr/bin/env bash
set -euo pipefail
state=unknown
for _ in $(seq 1 60); do
    state=$(systemctl is-system-running 2>/dev/null || true)
    case "$state" in
        running | degraded) echo "picloud: booted ($state)"; exit 0 ;;
    esac
    sleep 5
done
echo "picloud: error: system still '$state' after 300 s; check 'systemctl list-jobs' on the Pi" >&2
exit 1
`;
}

/** The line the host check prints last when Docker answers for the SSH user. */
export const DOCKER_READY_LINE = "picloud-docker-ready=yes";

/**
 * Post-bootstrap check, run as the SSH user after the bootstrap and any reboot. Its last line is
 * exactly `picloud-docker-ready=yes` when the Pi is ready for workloads.
 */
export function renderHostCheckScript(): string {
    return `#!/usr/bin/env bash
set -euo pipefail
[ "$(getconf LONG_BIT)" = 64 ] || { echo "picloud: error: 32-bit userland; reflash with 64-bit Raspberry Pi OS" >&2; exit 1; }
grep -qw memory /sys/fs/cgroup/cgroup.controllers || {
    echo "picloud: error: memory cgroup is off; add 'cgroup_enable=memory cgroup_memory=1' to /boot/firmware/cmdline.txt and reboot" >&2
    exit 1
}
version=$(docker version --format '{{.Server.Version}}' 2>&1) || {
    echo "picloud: error: Docker does not answer for $(id -un): $version (is the user in the docker group and docker.service running?)" >&2
    exit 1
}
echo "picloud: docker $version"
echo ${shellQuote(DOCKER_READY_LINE)}
`;
}
