/**
 * Backups as timers: a systemd service that runs a backup command on a Pi and, when it succeeds,
 * records the time in node_exporter's textfile folder, and a timer that runs it on a schedule. The
 * monitoring contract's `backupAgeRule` alerts on that metric, so a backup that stops is noticed.
 * A command that has nothing to back up on this Pi right now (a database standby: only the
 * primary backs up) exits {@link BACKUP_SKIPPED}: the run succeeds and records nothing.
 */
import { shellQuote } from "./shellSteps";

/** The metric a successful backup writes: `picloud_backup_last_success_timestamp_seconds{backup="<name>"}`. */
export const BACKUP_METRIC = "picloud_backup_last_success_timestamp_seconds";

/** The exit status of a backup command that has nothing to back up on this Pi now: not a failure, and no success recorded. */
export const BACKUP_SKIPPED = 75;

/** What {@link renderBackupTimerScript} installs. */
export interface BackupTimerInput {
    /** Lowercase name: the unit is `picloud-backup-<name>`, the metric's `backup` label `<name>`. */
    readonly name: string;
    /** systemd OnCalendar expression, e.g. "daily". */
    readonly onCalendar: string;
    /** The backup itself, run as root by bash with -euo pipefail (stdin is not its own); with `local`, it writes into `$BACKUP_DIR` (a fresh folder per run). */
    readonly command: string;
    /**
     * Backups kept on the Pi: in `directory`, one folder per run, the newest `keep` kept. Without
     * it the command stores and expires its backups itself (pgBackRest into blob storage).
     */
    readonly local?: { readonly directory: string; readonly keep: number };
    /** node_exporter's textfile folder. */
    readonly textfileDir: string;
}

const NAME = /^[a-z][a-z0-9-]{0,40}$/;

/** The unit names of a backup. */
export function backupUnits(name: string): { service: string; timer: string } {
    if (!NAME.test(name)) throw new Error(`a backup name must be a lowercase word (a-z, 0-9, '-'), got "${name}"`);
    return { service: `picloud-backup-${name}.service`, timer: `picloud-backup-${name}.timer` };
}

/**
 * A root script that installs (idempotently) the backup's runner, service and timer, enables the
 * timer and runs one backup at once, so the backup-age alert has a first value to watch.
 */
export function renderBackupTimerScript(input: BackupTimerInput): string {
    const units = backupUnits(input.name);
    if (input.local && (!Number.isInteger(input.local.keep) || input.local.keep < 1)) throw new RangeError(`keep must be a whole number of at least 1, got ${input.local.keep}`);
    if (!/^[A-Za-z0-9*:,./ -]{1,64}$/.test(input.onCalendar)) throw new Error(`onCalendar must be a systemd calendar expression, got "${input.onCalendar}"`);
    const runner = backupRunnerPath(input.name);
    const service = ["[Unit]", `Description=picloud backup ${input.name}`, "[Service]", "Type=oneshot", `ExecStart=${runner}`].join("\n");
    const timer = ["[Unit]", `Description=picloud backup ${input.name}, on schedule`, "[Timer]", `OnCalendar=${input.onCalendar}`, "Persistent=true", "RandomizedDelaySec=300", "[Install]", "WantedBy=timers.target"].join("\n");
    // Each file comes in a quoted heredoc: written as it is, never expanded here.
    const put = (mode: string, path: string, text: string) => `put ${mode} ${shellQuote(path)} <<'PICLOUD_FILE'\n${text}\nPICLOUD_FILE`;
    return [
        "#!/usr/bin/env bash",
        `# Installs picloud's backup "${input.name}": ${units.service} run by ${units.timer} (${input.onCalendar}).`,
        "set -euo pipefail",
        "changed=0",
        "# put <mode> <path>: the file from stdin, written only when it differs.",
        'put() { local text; text=$(cat); if ! printf \'%s\\n\' "$text" | cmp -s - "$2" 2>/dev/null; then printf \'%s\\n\' "$text" | install -D -m "$1" /dev/stdin "$2"; changed=1; fi; }',
        put("0755", runner, renderBackupRunner(input)),
        put("0644", `/etc/systemd/system/${units.service}`, service),
        put("0644", `/etc/systemd/system/${units.timer}`, timer),
        ...(input.local ? [`install -d -m 0700 ${shellQuote(input.local.directory)}`] : []),
        "if ((changed)); then systemctl daemon-reload; fi",
        `systemctl enable --now ${units.timer} >/dev/null`,
        `systemctl start ${units.service}`,
        `if ((changed)); then echo "picloud backup ${input.name}: changed"; else echo "picloud backup ${input.name}: ok"; fi`,
        "",
    ].join("\n");
}

/** Where the runner of a backup lives on the Pi. */
export function backupRunnerPath(name: string): string {
    backupUnits(name);
    return `/usr/local/lib/picloud/backup-${name}.sh`;
}

/**
 * One backup run: with `local`, into a folder of its own and the oldest beyond `keep` removed;
 * success recorded for Prometheus; a skipped run ({@link BACKUP_SKIPPED}) records nothing.
 */
export function renderBackupRunner(input: BackupTimerInput): string {
    const { local } = input;
    const failed = `echo "picloud backup ${input.name}: failed" >&2; exit 1`;
    return [
        "#!/usr/bin/env bash",
        `# picloud backup "${input.name}": one run${local ? `, into a folder of its own, the oldest beyond ${local.keep} removed` : ""}, success recorded for Prometheus.`,
        "set -euo pipefail",
        ...(local
            ? [
                  `root=${shellQuote(local.directory)}`,
                  'BACKUP_DIR="$root/$(date -u +%Y%m%dT%H%M%S.%NZ)"',
                  "export BACKUP_DIR",
                  'mkdir -p "$BACKUP_DIR"',
              ]
            : []),
        "status=0",
        // In a shell of its own, so every line of a longer command stops it when it fails.
        "bash -euo pipefail <<'PICLOUD_BACKUP' || status=$?",
        input.command,
        "PICLOUD_BACKUP",
        `if [ "$status" -eq ${BACKUP_SKIPPED} ]; then ${local ? 'rm -rf "$BACKUP_DIR"; ' : ""}echo "picloud backup ${input.name}: nothing to back up on this Pi now"; exit 0; fi`,
        `if [ "$status" -ne 0 ]; then ${local ? 'rm -rf "$BACKUP_DIR"; ' : ""}${failed}; fi`,
        ...(local ? [`find "$root" -mindepth 1 -maxdepth 1 -type d | sort | head -n -${local.keep} | xargs -r rm -rf`] : []),
        // node_exporter's container makes its folder when it starts; a backup may come first.
        `mkdir -p ${shellQuote(input.textfileDir)}`,
        `metrics=${shellQuote(`${input.textfileDir}/backup-${input.name}.prom`)}`,
        'tmp="$metrics.$$"',
        `printf '# HELP ${BACKUP_METRIC} When the backup last succeeded.\\n# TYPE ${BACKUP_METRIC} gauge\\n${BACKUP_METRIC}{backup="${input.name}"} %s\\n' "$(date +%s)" >"$tmp"`,
        'mv -f "$tmp" "$metrics"',
    ].join("\n");
}

/** Removes the backup's units and runner, and its metric; the backups themselves are kept. */
export function backupTimerRemoveCommand(name: string, textfileDir: string): string {
    const units = backupUnits(name);
    return [
        `sudo -n systemctl disable --now ${units.timer} 2>/dev/null || true`,
        `sudo -n rm -f /etc/systemd/system/${units.timer} /etc/systemd/system/${units.service} ${backupRunnerPath(name)} ${shellQuote(`${textfileDir}/backup-${name}.prom`)}`,
        "sudo -n systemctl daemon-reload",
    ].join(" && ");
}
