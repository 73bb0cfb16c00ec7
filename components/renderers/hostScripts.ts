/**
 * The scripts PiHost runs on a Pi over SSH, as pure functions of typed input. Every input value
 * sits in a single-quoted `readonly` shell variable at the top; the logic below only refers to it.
 */
import { NFTABLES_FILES, NFTABLES_TABLE } from "./firewallFiles";
import { FAIL2BAN_JAIL_FILE, HARDENING_PACKAGES, SSHD_HARDENING_FILE, SSH_AUDIT_POLICY_FILE, SSH_MODULI_MIN_SIZE_FIELD, SSH_RSA_HOST_KEY_BITS, SYSCTL_HARDENING_FILE } from "./hardening";
import { SCRIPT_HELPERS, shellQuote } from "./shellSteps";

export { shellQuote };

/** What the bootstrap needs to know about one Pi. */
export interface BootstrapInput {
    /** Hostname to set (already validated: ^[a-z][a-z0-9-]{0,62}$). */
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
    /** The hardening files (see renderers/hardening.ts); without them those steps are skipped. */
    readonly hardening?: HostHardening;
    /** Where the Pi's journal goes; without it nowhere, and shipping set up before is taken down. */
    readonly logShipping?: LogShipping;
}

/** Where a Pi's systemd-journal-upload sends its journal. */
export interface LogShipping {
    /** The receiver's journald URL, port included (journal-upload appends `/upload`). */
    readonly url: string;
}

/**
 * node_exporter's textfile directory on every Pi: host-level agents (keepalived's notify hook,
 * backup timers, the log heartbeat) drop `*.prom` files there and they are scraped with the
 * host's metrics.
 */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/picloud/textfile";

/**
 * The gauge each shipping Pi's heartbeat exports through node_exporter: when systemd-journal-upload
 * last saved its cursor, which it does after every upload the receiver accepted; before the first,
 * when shipping was set up or the Pi booted, whichever came later.
 */
export const JOURNAL_UPLOAD_METRIC = "picloud_journal_upload_last_success_timestamp_seconds";

/** The files and units of log shipping on a Pi. */
export const LOG_SHIPPING_FILES = {
    uploadConfig: "/etc/systemd/journal-upload.conf.d/picloud.conf",
    uploadDropIn: "/etc/systemd/system/systemd-journal-upload.service.d/picloud.conf",
    heartbeatScript: "/usr/local/libexec/picloud-log-heartbeat",
    heartbeatService: "/etc/systemd/system/picloud-log-heartbeat.service",
    heartbeatTimer: "/etc/systemd/system/picloud-log-heartbeat.timer",
    /** journal-upload's cursor (`--save-state`), in RAM: kept across its restarts, not across a reboot (nor is the journal). */
    uploadState: "/run/systemd/journal-upload/state",
    /** The heartbeat's file in the textfile folder. */
    metricFile: "journal_upload.prom",
} as const;

/** What the bootstrap writes to harden a Pi, each file already rendered (the firewall is a script of its own: {@link renderFirewallScript}). */
export interface HostHardening {
    /** sshd drop-in ({@link renderSshdHardening}). */
    readonly sshd: string;
    /** ssh-audit policy the sshd must pass ({@link renderSshAuditPolicy}). */
    readonly sshAuditPolicy: string;
    /** sysctl file ({@link renderSysctlHardening}). */
    readonly sysctl: string;
    /** fail2ban sshd jail ({@link renderFail2banJail}). */
    readonly fail2banJail: string;
}

/** The systemd unit that loads the Pi's firewall at boot, before the network comes up. */
export const FIREWALL_UNIT = `[Unit]
Description=picloud firewall (nftables table inet picloud)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f ${NFTABLES_FILES.ruleset}

[Install]
WantedBy=sysinit.target`;

/** Seconds after a changed firewall is loaded (or the Pi boots with it) before it is taken down again unless a new SSH connection confirms it. */
export const FIREWALL_ROLLBACK_SECONDS = 300;

/** The firewall's systemd units, by file name. */
export const FIREWALL_UNITS = {
    load: "picloud-firewall.service",
    rollback: "picloud-firewall-rollback.service",
    rollbackTimer: "picloud-firewall-rollback.timer",
} as const;

/**
 * What the rollback does: takes picloud's table down and keeps it from loading at the next boot,
 * so a firewall that locked the operator out stays gone until the next `pulumi up` loads it again.
 */
export const FIREWALL_ROLLBACK_SERVICE = `[Unit]
Description=picloud firewall rollback: nobody confirmed the new firewall over SSH in time

[Service]
Type=oneshot
ExecStart=-/usr/sbin/nft delete table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name}
ExecStart=/bin/systemctl disable ${FIREWALL_UNITS.load} ${FIREWALL_UNITS.rollbackTimer}`;

/**
 * The rollback's timer: a unit file, enabled, so it is armed again after a reboot that comes
 * before the confirmation. The confirmation ({@link renderFirewallConfirmScript}) disables it.
 */
export function renderFirewallRollbackTimer(seconds: number = FIREWALL_ROLLBACK_SECONDS): string {
    if (!Number.isInteger(seconds) || seconds < 10) throw new RangeError(`the firewall rollback needs a whole number of seconds, at least 10, got ${seconds}`);
    return `[Unit]
Description=picloud firewall rollback unless confirmed over SSH

[Timer]
# Counts from the timer's start: now, or at boot, where timers.target starts it again.
OnActiveSec=${seconds}

[Install]
WantedBy=timers.target`;
}

/** Fingerprint of Docker's release signing key for its apt repository. */
export const DOCKER_APT_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";

/** The last line of the bootstrap's stdout: how many steps changed and whether a reboot follows. */
export const BOOTSTRAP_SUMMARY = /^picloud-bootstrap: changed=(\d+) reboot=(required|no)$/m;

/** The line the host check prints last when Docker answers for the SSH user. */
export const DOCKER_READY_LINE = "picloud-docker-ready=yes";

/** The /etc/fstab line that keeps /var/log in RAM on SD-card Pis. */
const VAR_LOG_TMPFS = "tmpfs /var/log tmpfs defaults,noatime,nosuid,nodev,mode=0755,size=64m 0 0";

/**
 * The idempotent bootstrap, run as root (`sudo -n bash script`). Each step compares what is with
 * what should be and changes only the difference, printing one stdout line per step:
 * `picloud: ok <step>`, `picloud: changed <step>[: <note>]` or `picloud: skipped <step>: <reason>`.
 * A second run prints no `changed` line. The last stdout line is
 * `picloud-bootstrap: changed=<N> reboot=<required|no>` ({@link BOOTSTRAP_SUMMARY}); when a reboot
 * is required it follows within seconds and sshd takes no new connections until then.
 * Tool output goes to stderr. `PICLOUD_SKIP_DOCKER=1` in the environment skips the Docker step.
 */
export function renderBootstrapScript(input: BootstrapInput): string {
    if (!Number.isInteger(input.journalRuntimeMaxMb) || input.journalRuntimeMaxMb < 1) {
        throw new RangeError(`journalRuntimeMaxMb must be a whole number of MB, got ${input.journalRuntimeMaxMb}`);
    }
    const h = input.hardening;
    const pi5 = input.model === "pi5";
    const sd = input.storage === "sd";
    return [
        `#!/usr/bin/env bash
# picloud bootstrap: rendered by picloud, run as root by PiHost. Safe to re-run.
set -euo pipefail

readonly PICLOUD_HOSTNAME=${shellQuote(input.hostname)}
readonly PICLOUD_MODEL=${shellQuote(input.model)}
readonly PICLOUD_SSH_USER=${shellQuote(input.sshUser)}
readonly PICLOUD_TIMEZONE=${shellQuote(input.timezone)}
readonly PICLOUD_NTP_SERVERS=${shellQuote(input.ntpServers.join(" "))}
readonly PICLOUD_JOURNAL_MAX_MB=${shellQuote(String(input.journalRuntimeMaxMb))}
`,
        `readonly PICLOUD_LOGS_URL=${shellQuote(input.logShipping?.url ?? "")}
`,
        sd ? `readonly PICLOUD_VAR_LOG_TMPFS=${shellQuote(VAR_LOG_TMPFS)}\n` : "",
        `readonly DOCKER_KEY_FINGERPRINT=${shellQuote(DOCKER_APT_KEY_FINGERPRINT)}
`,
        h
            ? `# The hardening files are data: their $ and quotes are meant literally.
# shellcheck disable=SC2016
readonly SSHD_HARDENING=${shellQuote(chomp(h.sshd))} \\
    SSH_AUDIT_POLICY=${shellQuote(chomp(h.sshAuditPolicy))} \\
    SYSCTL_HARDENING=${shellQuote(chomp(h.sysctl))} \\
    FAIL2BAN_JAIL=${shellQuote(chomp(h.fail2banJail))}
`
            : "",
        SCRIPT_HELPERS,
        BOOTSTRAP_HELPERS,
        STEP_64BIT,
        STEP_PI_HARDWARE,
        STEP_HOSTNAME,
        STEP_TIME_SYNC,
        STEP_JOURNALD,
        STEP_TOOLS,
        STEP_LOG_SHIPPING,
        sd ? STEP_VAR_LOG_TMPFS : "",
        STEP_MEMORY_CGROUP,
        pi5 ? STEP_PI5_PAGE_SIZE : "",
        STEP_DOCKER,
        h ? STEP_HARDENING : "",
        `
check_64bit
detect_pi_hardware
step_hostname
step_time_sync
step_journald
step_tools
step_log_shipping
`,
        sd ? "step_var_log_tmpfs\n" : "",
        // The boot-partition edits only make sense on a real Pi; elsewhere detect_pi_hardware said so.
        `if [[ $pi_hardware == yes ]]; then
    step_memory_cgroup
`,
        pi5 ? "    step_pi5_page_size\n" : "",
        `fi
step_docker
`,
        h ? "step_ssh_hardening\nstep_sysctl_hardening\nstep_fail2ban\n" : 'skip hardening "no hardening given to this bootstrap"\n',
        FINISH,
    ].join("");
}

const BOOTSTRAP_HELPERS = `
reboot=no
arch=""
pi_hardware=no
`;

const STEP_64BIT = `
check_64bit() {
    arch=$(dpkg --print-architecture)
    # amd64 is accepted so that the script also runs on Debian test hosts.
    if [[ $arch != arm64 && $arch != amd64 ]] || [[ $(getconf LONG_BIT) != 64 ]]; then
        die "picloud needs 64-bit Raspberry Pi OS (bookworm, arm64); this system has a $arch, $(getconf LONG_BIT)-bit userland. Reflash the Pi with the 64-bit image."
    fi
    echo "picloud: ok 64-bit"
}
`;

const STEP_PI_HARDWARE = `
detect_pi_hardware() {
    local model="" generation
    if [[ -r /proc/device-tree/model ]]; then
        model=$(tr -d '\\0' </proc/device-tree/model)
    fi
    case $model in
    "Raspberry Pi 5"* | "Raspberry Pi Compute Module 5"*) generation=pi5 ;;
    "Raspberry Pi 4"* | "Raspberry Pi Compute Module 4"*) generation=pi4 ;;
    "Raspberry Pi"*) die "this is a $model; picloud supports the Raspberry Pi 4 and 5" ;;
    "")
        skip pi-hardware "not a Raspberry Pi (no /proc/device-tree/model)"
        return 0
        ;;
    *)
        skip pi-hardware "not a Raspberry Pi ($model)"
        return 0
        ;;
    esac
    # Placement trusts the declared model (ClickHouse only on a Pi 5), so it must be the real one.
    [[ $generation == "$PICLOUD_MODEL" ]] ||
        die "the stack config says this Pi is a $PICLOUD_MODEL but it is a $model: fix its model in the stack config"
    pi_hardware=yes
    echo "picloud: ok pi-hardware"
}
`;

const STEP_HOSTNAME = `
step_hostname() {
    local hosts
    # /etc/hosts first, so that sudo resolves the new name as soon as it is set.
    hosts=$({ cat /etc/hosts 2>/dev/null || true; } | awk -v line="127.0.1.1 $PICLOUD_HOSTNAME" '
        $1 == "127.0.1.1" { if (!done) print line; done = 1; next }
        { print }
        END { if (!done) print line }')
    write_if_changed /etc/hosts 644 "$hosts"
    if [[ $(cat /etc/hostname 2>/dev/null || true) != "$PICLOUD_HOSTNAME" ||
        $(</proc/sys/kernel/hostname) != "$PICLOUD_HOSTNAME" ]]; then
        # hostnamectl needs systemd-hostnamed over D-Bus; without either, set both names directly.
        if ! hostnamectl set-hostname "$PICLOUD_HOSTNAME" 2>/dev/null; then
            write_if_changed /etc/hostname 644 "$PICLOUD_HOSTNAME"
            printf '%s' "$PICLOUD_HOSTNAME" >/proc/sys/kernel/hostname
        fi
        step_changed=1
    fi
    finish_step hostname
}
`;

const STEP_TIME_SYNC = `
step_time_sync() {
    local current_tz
    # Installing timesyncd replaces another NTP daemon (they conflict): picloud runs one kind.
    if ! is_installed systemd-timesyncd; then
        apt_install systemd-timesyncd
        step_changed=1
    fi
    write_if_changed /etc/systemd/timesyncd.conf.d/picloud.conf 644 "# Written by picloud.
[Time]
NTP=$PICLOUD_NTP_SERVERS"
    if ((wrote)); then
        systemctl try-restart systemd-timesyncd
    fi
    # Only is-enabled: in a container timesyncd is enabled but never started (ConditionVirtualization).
    if ! systemctl is-enabled --quiet systemd-timesyncd; then
        systemctl enable --now systemd-timesyncd >&2
        step_changed=1
    fi
    current_tz=$(readlink /etc/localtime || true)
    if [[ \${current_tz#*zoneinfo/} != "$PICLOUD_TIMEZONE" ]]; then
        [[ -f /usr/share/zoneinfo/$PICLOUD_TIMEZONE ]] ||
            die "unknown timezone '$PICLOUD_TIMEZONE' (no /usr/share/zoneinfo/$PICLOUD_TIMEZONE): fix bootstrap.timezone in the stack config"
        # timedatectl needs systemd-timedated over D-Bus; the symlink is what it would write.
        if ! timedatectl set-timezone "$PICLOUD_TIMEZONE" 2>/dev/null; then
            ln -sfn "/usr/share/zoneinfo/$PICLOUD_TIMEZONE" /etc/localtime
        fi
        step_changed=1
    fi
    write_if_changed /etc/timezone 644 "$PICLOUD_TIMEZONE"
    finish_step time-sync
}
`;

const STEP_JOURNALD = `
step_journald() {
    write_if_changed /etc/systemd/journald.conf.d/picloud.conf 644 "# Written by picloud: the journal lives in RAM, sparing the SD card.
[Journal]
Storage=volatile
RuntimeMaxUse=\${PICLOUD_JOURNAL_MAX_MB}M"
    if ((wrote)); then
        systemctl restart systemd-journald
    fi
    finish_step journald
}
`;

// What picloud's own commands use on the Pi beyond the image's curl: jq reads Prometheus's API
// when an update waits for the monitoring to confirm a component (done means monitored).
const STEP_TOOLS = `
step_tools() {
    if ! is_installed jq; then
        apt_install jq
        step_changed=1
    fi
    finish_step tools
}
`;

// The journal (Docker's logs are in it) to VictoriaLogs with Debian's systemd-journal-upload: no
// log agent container on any Pi. journal-upload exits whenever the receiver cannot be reached, so
// its drop-in restarts it every 10 s without the start limit; its cursor (--save-state, in /run)
// makes it resume where the receiver last accepted. The heartbeat writes a journal line every minute, so
// even a quiet Pi uploads, and exports when the last upload got through (the cursor file's mtime).
const STEP_LOG_SHIPPING = `
step_log_shipping() {
    local units=0 config=0 state
    if [[ -z $PICLOUD_LOGS_URL ]]; then
        if [[ -e ${LOG_SHIPPING_FILES.uploadConfig} ]]; then
            systemctl disable --now systemd-journal-upload.service picloud-log-heartbeat.timer >/dev/null 2>&1 || true
            rm -f ${LOG_SHIPPING_FILES.uploadConfig} ${LOG_SHIPPING_FILES.uploadDropIn} ${LOG_SHIPPING_FILES.heartbeatScript} \\
                ${LOG_SHIPPING_FILES.heartbeatService} ${LOG_SHIPPING_FILES.heartbeatTimer}
            rm -f ${NODE_EXPORTER_TEXTFILE_DIR}/${LOG_SHIPPING_FILES.metricFile}
            systemctl daemon-reload
            step_changed=1
            finish_step log-shipping "the journal is no longer shipped"
        else
            skip log-shipping "the stack has no log store (picloud:tiers.monitoring.victoriaLogs)"
        fi
        return 0
    fi
    # Configured before the package comes: should its installation start the uploader, it starts right.
    write_if_changed ${LOG_SHIPPING_FILES.uploadConfig} 644 "# Written by picloud: the journal goes to VictoriaLogs.
[Upload]
URL=$PICLOUD_LOGS_URL"
    config=$wrote
    write_if_changed ${LOG_SHIPPING_FILES.uploadDropIn} 644 "# Written by picloud: keep trying while VictoriaLogs cannot be reached, never give up.
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec=10s
# The cursor in RAM, like the journal it points into: no SD-card write per upload, kept across
# restarts, gone with the journal at a reboot, after which the new boot's journal goes from its start.
ExecStart=
ExecStart=/lib/systemd/systemd-journal-upload --save-state=${LOG_SHIPPING_FILES.uploadState}
RuntimeDirectory=systemd/journal-upload
RuntimeDirectoryPreserve=yes"
    units=$wrote
    write_if_changed ${LOG_SHIPPING_FILES.heartbeatScript} 755 "#!/bin/sh
# Written by picloud: the log heartbeat. Exports when systemd-journal-upload last saved its
# cursor (after each accepted upload; before the first, when shipping was set up or the Pi
# booted, whichever came later), then logs a line of its own.
set -eu
last=\\$(stat -L -c %Y ${LOG_SHIPPING_FILES.uploadConfig})
booted=\\$((\\$(date +%s) - \\$(cut -d. -f1 /proc/uptime)))
if [ \\"\\$booted\\" -gt \\"\\$last\\" ]; then last=\\$booted; fi
if [ -e ${LOG_SHIPPING_FILES.uploadState} ]; then last=\\$(stat -L -c %Y ${LOG_SHIPPING_FILES.uploadState}); fi
mkdir -p ${NODE_EXPORTER_TEXTFILE_DIR}
printf '# HELP ${JOURNAL_UPLOAD_METRIC} When systemd-journal-upload last had an upload accepted.\\\\n# TYPE ${JOURNAL_UPLOAD_METRIC} gauge\\\\n${JOURNAL_UPLOAD_METRIC} %s\\\\n' \\"\\$last\\" >${NODE_EXPORTER_TEXTFILE_DIR}/.${LOG_SHIPPING_FILES.metricFile}.tmp
mv -f ${NODE_EXPORTER_TEXTFILE_DIR}/.${LOG_SHIPPING_FILES.metricFile}.tmp ${NODE_EXPORTER_TEXTFILE_DIR}/${LOG_SHIPPING_FILES.metricFile}
echo 'picloud log heartbeat'"
    units=$((units | wrote))
    write_if_changed ${LOG_SHIPPING_FILES.heartbeatService} 644 "[Unit]
Description=picloud log heartbeat: a journal line, and when the last upload got through

[Service]
Type=oneshot
ExecStart=${LOG_SHIPPING_FILES.heartbeatScript}"
    units=$((units | wrote))
    write_if_changed ${LOG_SHIPPING_FILES.heartbeatTimer} 644 "[Unit]
Description=picloud log heartbeat, every minute

[Timer]
OnActiveSec=10s
OnUnitActiveSec=60s
AccuracySec=5s

[Install]
WantedBy=timers.target"
    units=$((units | wrote))
    if ! is_installed systemd-journal-remote; then
        apt_install systemd-journal-remote
        step_changed=1
    fi
    # The package also brings the receiving side; a Pi only sends.
    if systemctl is-enabled --quiet systemd-journal-remote.socket 2>/dev/null; then
        systemctl disable --now systemd-journal-remote.socket >&2
        step_changed=1
    fi
    if ((units)); then
        systemctl daemon-reload
    fi
    if ! systemctl is-enabled --quiet systemd-journal-upload.service || ! systemctl is-enabled --quiet picloud-log-heartbeat.timer; then
        systemctl enable systemd-journal-upload.service picloud-log-heartbeat.timer >&2
        step_changed=1
    fi
    # While VictoriaLogs is down it waits to restart ("activating"): only a stopped one is started.
    state=$(systemctl is-active systemd-journal-upload.service || true)
    if ((config || units)) || [[ $state == inactive || $state == failed ]]; then
        systemctl restart systemd-journal-upload.service
        step_changed=1
    fi
    if ! systemctl is-active --quiet picloud-log-heartbeat.timer; then
        systemctl start picloud-log-heartbeat.timer
        step_changed=1
    fi
    finish_step log-shipping
}
`;

const STEP_VAR_LOG_TMPFS = `
step_var_log_tmpfs() {
    local current
    current=$(awk '$1 !~ /^#/ && $2 == "/var/log" { $1 = $1; print }' /etc/fstab)
    if [[ -z $current ]]; then
        # Not mounted now: files open in /var/log would vanish under a running system.
        write_if_changed /etc/fstab 644 "$(cat /etc/fstab)
$PICLOUD_VAR_LOG_TMPFS"
        finish_step var-log-tmpfs "/var/log moves to RAM at the next boot"
    elif [[ $current == "$PICLOUD_VAR_LOG_TMPFS" ]]; then
        finish_step var-log-tmpfs
    else
        skip var-log-tmpfs "/etc/fstab already mounts /var/log ($current)"
    fi
}
`;

const STEP_MEMORY_CGROUP = `
step_memory_cgroup() {
    local cmdline=/boot/firmware/cmdline.txt line arg
    # Without the memory controller Docker cannot enforce container memory limits.
    if [[ " $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || true) " == *" memory "* ]]; then
        finish_step memory-cgroup
        return 0
    fi
    [[ -f $cmdline ]] || die "no $cmdline: picloud needs Raspberry Pi OS bookworm"
    # The firmware reads only the first line, so the arguments must join it.
    line=$(head -n 1 "$cmdline" | sed 's/[[:space:]]*$//')
    for arg in cgroup_enable=memory cgroup_memory=1; do
        if [[ " $line " != *" $arg "* ]]; then
            line+=" $arg"
        fi
    done
    write_if_changed "$cmdline" - "$line"
    reboot=required
    finish_step memory-cgroup "the memory cgroup comes on after the reboot"
}
`;

const STEP_PI5_PAGE_SIZE = `
step_pi5_page_size() {
    local config=/boot/firmware/config.txt
    # The Pi 5's default kernel uses 16 KB pages; jemalloc in many images crashes on them.
    [[ -f $config ]] || die "no $config: picloud needs Raspberry Pi OS bookworm"
    if ! awk '{ sub(/[[:space:]]+$/, "") }
        substr($0, 1, 1) == "[" { section = $0; next }
        $0 == "kernel=kernel8.img" && (section == "" || section == "[all]" || section == "[pi5]") { found = 1 }
        END { exit !found }' "$config"; then
        write_if_changed "$config" - "$(cat "$config")

# picloud: the 4 KB-page kernel (jemalloc-based images crash on 16 KB pages).
[all]
kernel=kernel8.img"
    fi
    if [[ $(getconf PAGESIZE) != 4096 ]]; then
        reboot=required
    fi
    finish_step pi5-4k-pages "the 4 KB-page kernel boots after the reboot"
}
`;

const STEP_DOCKER = `
install_docker() {
    local needed=() pkg key gnupg_home fingerprints codename
    for pkg in ca-certificates curl gpg; do
        is_installed "$pkg" || needed+=("$pkg")
    done
    if ((\${#needed[@]})); then
        apt_install "\${needed[@]}"
    fi
    key=$(mktemp)
    gnupg_home=$(mktemp -d)
    curl -fsSL --retry 3 https://download.docker.com/linux/debian/gpg -o "$key" ||
        die "could not download Docker's apt key from https://download.docker.com/linux/debian/gpg: can the Pi reach the internet?"
    # Trust the file only if it holds exactly one primary key, Docker's: signed-by trusts them all.
    fingerprints=$(GNUPGHOME=$gnupg_home gpg --batch --show-keys --with-colons "$key" |
        awk -F: '$1 == "pub" { want = 1; next } $1 == "fpr" && want { print $10; want = 0 }' || true)
    rm -rf "$gnupg_home"
    if [[ $fingerprints != "$DOCKER_KEY_FINGERPRINT" ]]; then
        rm -f "$key"
        die "the key at https://download.docker.com/linux/debian/gpg has fingerprint(s) '\${fingerprints//$'\\n'/ }', expected $DOCKER_KEY_FINGERPRINT: refusing to trust it"
    fi
    install -D -m 644 "$key" /etc/apt/keyrings/docker.asc
    rm -f "$key"
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')
    [[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release: picloud needs Raspberry Pi OS bookworm"
    write_if_changed /etc/apt/sources.list.d/docker.list 644 \\
        "deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian $codename stable"
    apt_get update
    apt_updated=1
    apt_get install -y docker-ce docker-ce-cli containerd.io
}

step_docker() {
    local fresh=0 config_changed
    if [[ \${PICLOUD_SKIP_DOCKER:-} == 1 ]]; then
        skip docker "PICLOUD_SKIP_DOCKER=1 (test host without a Docker engine)"
        return 0
    fi
    # Container logs go to journald, hence to RAM; live-restore keeps containers up across
    # dockerd restarts. Written before any install so a fresh dockerd starts with it.
    write_if_changed /etc/docker/daemon.json 644 '{
  "log-driver": "journald",
  "live-restore": true
}'
    config_changed=$wrote
    if ! command -v docker >/dev/null; then
        install_docker
        fresh=1
        step_changed=1
    fi
    if ((config_changed && !fresh)) && systemctl is-active --quiet docker; then
        systemctl restart docker
    fi
    if ! systemctl is-enabled --quiet docker || ! systemctl is-active --quiet docker; then
        systemctl enable --now docker >&2
        step_changed=1
    fi
    id "$PICLOUD_SSH_USER" >/dev/null 2>&1 || die "the SSH user '$PICLOUD_SSH_USER' does not exist on this host"
    # Membership takes effect at the next login: the host check runs over a new SSH connection.
    if [[ " $(id -nG "$PICLOUD_SSH_USER") " != *" docker "* ]]; then
        usermod -aG docker "$PICLOUD_SSH_USER"
        step_changed=1
    fi
    finish_step docker
}
`;

const chomp = (text: string) => text.replace(/\n$/, "");

const STEP_HARDENING = `
step_ssh_hardening() {
    local reload=0 bits
    # AllowUsers names only this user: without it nobody could log in again.
    id "$PICLOUD_SSH_USER" >/dev/null 2>&1 || die "the SSH user '$PICLOUD_SSH_USER' does not exist: the hardened sshd would let nobody in"
    [[ -f /etc/ssh/ssh_host_ed25519_key ]] || die "no /etc/ssh/ssh_host_ed25519_key: the host key picloud pins is missing"
    # The ssh-audit guide wants a ${SSH_RSA_HOST_KEY_BITS}-bit RSA host key; the ed25519 key picloud pins is kept.
    bits=$(ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub 2>/dev/null | awk '{ print $1 }' || true)
    if [[ \${bits:-0} -lt ${SSH_RSA_HOST_KEY_BITS} ]]; then
        rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub
        ssh-keygen -q -t rsa -b ${SSH_RSA_HOST_KEY_BITS} -N '' -f /etc/ssh/ssh_host_rsa_key
        step_changed=1
        reload=1
    fi
    # Diffie-Hellman group exchange only with moduli of 3072 bits and more.
    if awk '$5 ~ /^[0-9]+$/ && $5 < ${SSH_MODULI_MIN_SIZE_FIELD} { found = 1 } END { exit !found }' /etc/ssh/moduli; then
        awk '$5 !~ /^[0-9]+$/ || $5 >= ${SSH_MODULI_MIN_SIZE_FIELD}' /etc/ssh/moduli >/etc/ssh/moduli.picloud
        mv -f /etc/ssh/moduli.picloud /etc/ssh/moduli
        step_changed=1
        reload=1
    fi
    write_checked ${SSHD_HARDENING_FILE.path} ${SSHD_HARDENING_FILE.mode} "$SSHD_HARDENING" sshd -t
    reload=$((reload | wrote))
    write_if_changed ${SSH_AUDIT_POLICY_FILE.path} ${SSH_AUDIT_POLICY_FILE.mode} "$SSH_AUDIT_POLICY"
    if ((reload)); then
        # A reload keeps open sessions, this one included; the next connection meets the new sshd.
        systemctl reload ssh >&2
    fi
    finish_step ssh-hardening
}

step_sysctl_hardening() {
    write_if_changed ${SYSCTL_HARDENING_FILE.path} ${SYSCTL_HARDENING_FILE.mode} "$SYSCTL_HARDENING"
    if ((wrote)); then
        ${SYSCTL_HARDENING_FILE.apply} >&2
    fi
    finish_step sysctl-hardening
}

step_fail2ban() {
    local needed=() jail
    # Before the package: its first start then already reads sshd's journal (no auth.log here).
    write_if_changed ${FAIL2BAN_JAIL_FILE.path} ${FAIL2BAN_JAIL_FILE.mode} "$FAIL2BAN_JAIL"
    jail=$wrote
    for pkg in ${HARDENING_PACKAGES.join(" ")}; do
        is_installed "$pkg" || needed+=("$pkg")
    done
    if ((\${#needed[@]})); then
        apt_install "\${needed[@]}"
        step_changed=1
    fi
    ${FAIL2BAN_JAIL_FILE.check} >&2 || die "fail2ban refuses ${FAIL2BAN_JAIL_FILE.path} (fail2ban-client -t)"
    if ! systemctl is-enabled --quiet fail2ban || ! systemctl is-active --quiet fail2ban; then
        systemctl enable --now fail2ban >&2
        step_changed=1
    elif ((jail)); then
        ${FAIL2BAN_JAIL_FILE.apply} >&2
    fi
    finish_step fail2ban
}
`;

const FINISH = `
echo "picloud-bootstrap: changed=$changed reboot=$reboot"

if [[ $reboot == required ]]; then
    # PiHost's next command must run after the reboot, not in the seconds before it, so sshd
    # stops taking new connections now (Debian's ssh.service has KillMode=process: this session
    # survives). Should the reboot never come, sshd comes back after 3 minutes.
    systemd-run --collect --on-active=180 --unit=picloud-ssh-safety systemctl start ssh >&2
    systemd-run --collect --on-active=5 --unit=picloud-reboot systemctl reboot >&2
    systemctl stop ssh.socket 2>/dev/null || true
    systemctl stop ssh
fi
`;

/** The firewall script's last stdout line: whether it changed the ruleset (1) or found it in place (0). */
export const FIREWALL_SUMMARY = /^picloud-firewall: changed=(\d+)$/m;

/**
 * The Pi's firewall, run as root after the host check: checks the ruleset with `nft -c`, writes
 * it and the units that load it at boot, and, when the ruleset is new or not loaded, loads it with
 * the rollback armed: unless {@link renderFirewallConfirmScript} disarms it from a new SSH
 * connection within `rollbackSeconds`, the table comes down again, so a ruleset that locks the
 * operator out does not stay. Idempotent; the last stdout line matches {@link FIREWALL_SUMMARY}.
 */
export function renderFirewallScript(input: { readonly ruleset: string; readonly rollbackSeconds?: number }): string {
    if (input.ruleset.trim() === "") throw new Error("the firewall script needs a ruleset");
    return `#!/usr/bin/env bash
# picloud firewall: rendered by picloud, run as root by PiHost after the host check. Safe to re-run.
set -euo pipefail

# The ruleset and units are data: their $ and quotes are meant literally.
# shellcheck disable=SC2016
readonly FIREWALL=${shellQuote(chomp(input.ruleset))} \\
    FIREWALL_UNIT=${shellQuote(FIREWALL_UNIT)} \\
    ROLLBACK_SERVICE=${shellQuote(FIREWALL_ROLLBACK_SERVICE)} \\
    ROLLBACK_TIMER=${shellQuote(renderFirewallRollbackTimer(input.rollbackSeconds))}
${SCRIPT_HELPERS}
step_firewall() {
    local rules units=0
    write_checked ${NFTABLES_FILES.ruleset} 600 "$FIREWALL" ${NFTABLES_FILES.check}
    rules=$wrote
    write_if_changed /etc/systemd/system/${FIREWALL_UNITS.load} 644 "$FIREWALL_UNIT"
    units=$((units | wrote))
    write_if_changed /etc/systemd/system/${FIREWALL_UNITS.rollback} 644 "$ROLLBACK_SERVICE"
    units=$((units | wrote))
    write_if_changed /etc/systemd/system/${FIREWALL_UNITS.rollbackTimer} 644 "$ROLLBACK_TIMER"
    units=$((units | wrote))
    if ((units)); then
        systemctl daemon-reload
    fi
    if ! systemctl is-enabled --quiet ${FIREWALL_UNITS.load}; then
        systemctl enable ${FIREWALL_UNITS.load} >&2
        step_changed=1
    fi
    if ((rules)) || ! nft list table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name} >/dev/null 2>&1; then
        # Should the new rules lock the operator out, they come down again unless the
        # confirmation (a new SSH connection, after this script) disables this timer; it is
        # enabled, so a reboot before then arms it again.
        systemctl enable ${FIREWALL_UNITS.rollbackTimer} >&2
        systemctl restart ${FIREWALL_UNITS.rollbackTimer}
        ${NFTABLES_FILES.load}
        step_changed=1
    fi
    finish_step firewall
}

step_firewall
echo "picloud-firewall: changed=$changed"
`;
}

/**
 * The firewall's confirmation, run as the SSH user over a new SSH connection after
 * {@link renderFirewallScript}: that it connected at all proves the new ruleset lets the operator
 * in, so the rollback is called off; then the table must really be loaded. Fails naming the fix
 * when the rollback already took it down.
 */
export function renderFirewallConfirmScript(): string {
    return `#!/usr/bin/env bash
# picloud firewall confirmation: this connection got through the new ruleset, so it stays.
set -euo pipefail
sudo -n systemctl disable --now ${FIREWALL_UNITS.rollbackTimer} 2>/dev/null
if ! sudo -n nft list table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name} >/dev/null 2>&1; then
    echo "picloud-firewall: the firewall (table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name}) is not loaded: it was rolled back because no SSH connection confirmed it in time; check picloud:network.mgmt lets the operator in, then run pulumi up again" >&2
    exit 1
fi
echo "picloud-firewall: confirmed"
`;
}

/**
 * What leaving the stack does to a Pi's firewall: picloud's table comes down, and its ruleset
 * and units go. The Pi is left with whatever firewall it had before picloud.
 */
export const FIREWALL_REMOVE_COMMAND = [
    `sudo -n systemctl disable --now ${FIREWALL_UNITS.rollbackTimer} ${FIREWALL_UNITS.load} 2>/dev/null || true`,
    `sudo -n nft delete table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name} 2>/dev/null || true`,
    `sudo -n rm -f ${NFTABLES_FILES.ruleset} ${Object.values(FIREWALL_UNITS).map((u) => `/etc/systemd/system/${u}`).join(" ")}`,
    "sudo -n systemctl daemon-reload",
].join(" && ");

/**
 * Readiness poll, run as the SSH user before anything else: waits up to 300 s for systemd to
 * finish booting (`systemctl is-system-running --wait`), accepting "running" and "degraded" (one
 * failed unit must not block the bootstrap). Exits non-zero with a message on timeout, and at
 * once if the system is in maintenance mode or not run by systemd.
 */
export function renderReadinessScript(): string {
    return `#!/usr/bin/env bash
# picloud readiness poll: waits for the Pi to finish booting before PiHost does anything else.
set -euo pipefail

readonly TIMEOUT_SECONDS=300
readonly DEADLINE=$((SECONDS + TIMEOUT_SECONDS))

# A normal user's systemctl asks over D-Bus, which may not be up yet (or absent on a minimal
# system); root asks systemd directly, so fall back to passwordless sudo when D-Bus is silent.
system_state() {
    local remaining=$((DEADLINE - SECONDS)) state
    ((remaining > 0)) || return 0
    state=$(timeout "$remaining" systemctl is-system-running --wait 2>/dev/null || true)
    remaining=$((DEADLINE - SECONDS))
    if [[ -z $state ]] && ((remaining > 0)) && sudo -n true 2>/dev/null; then
        state=$(timeout "$remaining" sudo -n systemctl is-system-running --wait 2>/dev/null || true)
    fi
    echo "$state"
}

state=""
while ((SECONDS < DEADLINE)); do
    state=$(system_state)
    case $state in
    running | degraded)
        echo "picloud: booted ($state)"
        exit 0
        ;;
    maintenance)
        echo "picloud: error: $(hostname) is in rescue/emergency mode; fix it at its console ('systemctl --failed', 'journalctl -xb')" >&2
        exit 1
        ;;
    offline)
        echo "picloud: error: systemd is not running this system (is-system-running: offline); picloud needs Raspberry Pi OS" >&2
        exit 1
        ;;
    esac
    # Still initializing/starting, shutting down, or D-Bus not answering yet.
    sleep 5
done
echo "picloud: error: $(hostname) has not finished booting after $TIMEOUT_SECONDS s (systemd state: \${state:-no answer}); see 'systemctl list-jobs' and 'systemctl --failed' on the Pi" >&2
exit 1
`;
}

/**
 * Post-bootstrap check, run as the SSH user (not root) after the bootstrap and any reboot:
 * 64-bit userland, 4 KB pages, the memory cgroup controller, and `docker version` answering for
 * this user. Each failure exits non-zero naming what is wrong and how to fix it; on success the
 * last stdout line is exactly {@link DOCKER_READY_LINE}.
 */
export function renderHostCheckScript(): string {
    return `#!/usr/bin/env bash
# picloud host check: can this Pi run picloud's containers, for the SSH user?
set -euo pipefail

readonly READY_LINE=${shellQuote(DOCKER_READY_LINE)}

fail() {
    echo "picloud-host-check: $*" >&2
    exit 1
}

arch=$(dpkg --print-architecture)
[[ ($arch == arm64 || $arch == amd64) && $(getconf LONG_BIT) == 64 ]] ||
    fail "the userland is $arch, $(getconf LONG_BIT)-bit; picloud needs 64-bit Raspberry Pi OS (arm64): reflash the Pi with the 64-bit image"

page_size=$(getconf PAGESIZE)
[[ $page_size == 4096 ]] ||
    fail "the kernel uses $page_size-byte pages and jemalloc-based images crash on them: put kernel=kernel8.img in /boot/firmware/config.txt and reboot (the picloud bootstrap does this on a Pi 5; did the reboot happen?)"

# cgroup2 (Raspberry Pi OS bookworm) lists its controllers; a cgroup v1 or hybrid system has a
# memory hierarchy when the kernel enabled it (/proc/cgroups). Either way Docker can enforce limits.
memory_cgroup_on() {
    local controllers
    if controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null); then
        [[ " $controllers " == *" memory "* ]]
    else
        awk '$1 == "memory" && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups 2>/dev/null
    fi
}
memory_cgroup_on ||
    fail "the memory cgroup controller is off (not in /sys/fs/cgroup/cgroup.controllers), so container memory limits cannot work: add 'cgroup_enable=memory cgroup_memory=1' to /boot/firmware/cmdline.txt and reboot (the picloud bootstrap does this; did the reboot happen?)"

command -v docker >/dev/null ||
    fail "docker is not installed: run the picloud bootstrap again (pulumi up)"
if ! server=$(docker version --format '{{.Server.Version}}' 2>&1); then
    fail "docker does not answer for $(id -un): $server. On 'permission denied': sudo usermod -aG docker $(id -un), then log in again; if the daemon is down: sudo systemctl enable --now docker"
fi

echo "picloud-host-check: $arch, 64-bit, 4 KB pages, memory cgroup on, docker $server"
echo "$READY_LINE"
`;
}
