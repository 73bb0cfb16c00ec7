/**
 * keepalived on the load-balancer Pis, as a host package: the scripts it runs (HAProxy's health
 * check, the state-change hook that tells Prometheus who holds the virtual IP) and the idempotent
 * setup script PiHost-style commands run as root. Pure text; the LoadBalancer component ships it.
 */
import { SCRIPT_HELPERS, shellQuote } from "../../renderers/shellSteps";
import { HAPROXY_HEALTH_PATH } from "./renderers";

/** Where keepalived's scripts live: root-owned all the way up, as `enable_script_security` demands. */
export const KEEPALIVED_PATHS = {
    config: "/etc/keepalived/keepalived.conf",
    checkScript: "/usr/local/lib/picloud/haproxy-check.sh",
    notifyScript: "/usr/local/lib/picloud/vrrp-notify.sh",
    /** systemd drop-in restarting keepalived when it dies (Debian's unit does not). */
    restartDropIn: "/etc/systemd/system/keepalived.service.d/picloud-restart.conf",
} as const;

/** The setup script's file name under picloud's scripts folder (`scriptPath`). */
export const KEEPALIVED_SCRIPT_NAME = "keepalived.sh";

/** The gauge the notify script writes: 1 while this Pi holds the virtual IP, else 0. */
export const VRRP_MASTER_METRIC = "picloud_vrrp_master";

/** The file (under node_exporter's textfile directory) the notify script writes. */
export const VRRP_TEXTFILE = "vrrp.prom";

/** The setup script's last stdout line: how many steps changed. */
export const KEEPALIVED_SUMMARY = /^picloud-keepalived: changed=(\d+)$/m;

/** keepalived's check: exits non-zero unless HAProxy on this Pi answers on its health path within a second. */
export function renderHaproxyCheckScript(statsPort: number): string {
    if (!Number.isInteger(statsPort) || statsPort < 1 || statsPort > 65535) throw new RangeError(`statsPort must be a port, got ${statsPort}`);
    return `#!/bin/sh
# Rendered by picloud: keepalived's health check of HAProxy on this Pi. A failure puts the VRRP
# instance in FAULT, which releases the virtual IP to the other load-balancer Pi.
exec curl -fsS --max-time 1 -o /dev/null http://127.0.0.1:${statsPort}${HAPROXY_HEALTH_PATH}
`;
}

/**
 * keepalived's notify hook. keepalived calls it on every state change as
 * `<script> INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>`; it writes
 * `picloud_vrrp_master{vrrp_instance="<name>"}` (1 for MASTER, else 0) into node_exporter's
 * textfile directory, atomically, so Prometheus sees who holds the virtual IP.
 */
export function renderVrrpNotifyScript(textfileDir: string): string {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(textfileDir)) throw new Error(`textfileDir must be an absolute path of letters, digits, '.', '_', '-' and '/', got "${textfileDir}"`);
    return `#!/bin/sh
# Rendered by picloud: keepalived's notify hook. Arguments: INSTANCE <name> <state> <priority>.
set -eu
[ "$1" = INSTANCE ] || exit 0
dir=${shellQuote(textfileDir)}
case $3 in
MASTER) holds=1 ;;
*) holds=0 ;;
esac
mkdir -p "$dir"
tmp=$(mktemp "$dir/.${VRRP_TEXTFILE}.XXXXXX")
{
    echo "# HELP ${VRRP_MASTER_METRIC} 1 while this Pi holds the virtual IP of the VRRP instance, else 0."
    echo "# TYPE ${VRRP_MASTER_METRIC} gauge"
    printf '${VRRP_MASTER_METRIC}{vrrp_instance="%s"} %s\\n' "$2" "$holds"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/${VRRP_TEXTFILE}"
`;
}

/** The systemd drop-in that brings a dead keepalived back within seconds. */
export const KEEPALIVED_RESTART_DROP_IN = `# Rendered by picloud: restart keepalived when it dies.
[Service]
Restart=on-failure
RestartSec=2s`;

/** What the keepalived setup script installs. */
export interface KeepalivedSetupInput {
    /** This Pi's rendered keepalived.conf. */
    readonly config: string;
    readonly checkScript: string;
    readonly notifyScript: string;
}

/**
 * Installs keepalived from the Pi's apt sources, writes its config and scripts, and keeps the
 * service enabled and running, reloading it only when its config or scripts changed. Idempotent:
 * a second run prints no `changed` line. Run as root (`sudo -n bash script`); the last stdout line
 * matches {@link KEEPALIVED_SUMMARY}.
 */
export function renderKeepalivedSetupScript(input: KeepalivedSetupInput): string {
    return `#!/usr/bin/env bash
# picloud keepalived setup: rendered by picloud, run as root by the LoadBalancer. Safe to re-run.
set -euo pipefail

# The three files are data: their $ and quotes are meant literally.
# shellcheck disable=SC2016
readonly KEEPALIVED_CONF=${shellQuote(input.config.replace(/\n$/, ""))} \\
    CHECK_SCRIPT=${shellQuote(input.checkScript.replace(/\n$/, ""))} \\
    NOTIFY_SCRIPT=${shellQuote(input.notifyScript.replace(/\n$/, ""))} \\
    RESTART_DROP_IN=${shellQuote(KEEPALIVED_RESTART_DROP_IN)}
${SCRIPT_HELPERS}
step_package() {
    local needed=()
    for pkg in keepalived curl; do
        is_installed "$pkg" || needed+=("$pkg")
    done
    if ((\${#needed[@]})); then
        # The package's own start would run with its empty default config; picloud starts it below.
        apt_install "\${needed[@]}"
        step_changed=1
    fi
    finish_step keepalived-package
}

step_files() {
    local any=0
    install -d -m 0755 -o root -g root /usr/local/lib/picloud
    write_if_changed ${KEEPALIVED_PATHS.checkScript} 755 "$CHECK_SCRIPT"
    any=$((any | wrote))
    write_if_changed ${KEEPALIVED_PATHS.notifyScript} 755 "$NOTIFY_SCRIPT"
    any=$((any | wrote))
    write_if_changed ${KEEPALIVED_PATHS.config} 644 "$KEEPALIVED_CONF"
    any=$((any | wrote))
    files_changed=$any
    # A keepalived that died would leave the address on this Pi and its gauge at 1 while the
    # other Pi takes over: both would hold it. Debian's unit has no Restart=; this adds one.
    write_if_changed ${KEEPALIVED_PATHS.restartDropIn} 644 "$RESTART_DROP_IN"
    if ((wrote)); then
        systemctl daemon-reload
    fi
    finish_step keepalived-config
}

step_service() {
    if ! systemctl is-enabled --quiet keepalived; then
        systemctl enable keepalived >&2
        step_changed=1
    fi
    if ! systemctl is-active --quiet keepalived; then
        systemctl start keepalived >&2
        step_changed=1
    elif ((files_changed)); then
        # A reload keeps the virtual IP where it is unless the new config says otherwise.
        systemctl reload keepalived >&2
        step_changed=1
    fi
    finish_step keepalived-service
}

files_changed=0
step_package
step_files
step_service
echo "picloud-keepalived: changed=$changed"
`;
}

/**
 * The command that stops keepalived and removes what the setup script and the notify hook wrote
 * (the package stays), so a Pi that leaves the load balancer stops claiming the virtual IP.
 */
export function keepalivedRemoveCommand(textfileDir: string): string {
    return [
        "{ sudo -n systemctl disable --now keepalived 2>/dev/null || true; }",
        `sudo -n rm -f ${KEEPALIVED_PATHS.config} ${KEEPALIVED_PATHS.checkScript} ${KEEPALIVED_PATHS.notifyScript} ${KEEPALIVED_PATHS.restartDropIn} ${shellQuote(`${textfileDir}/${VRRP_TEXTFILE}`)}`,
        "sudo -n systemctl daemon-reload",
    ].join(" && ");
}
