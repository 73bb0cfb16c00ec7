/**
 * The database's backups and restore, pure: pgBackRest's configuration, the WAL archiving Patroni
 * sets up, the TLS bridge each member runs to blob storage, the scheduled backup and the restore
 * steps. The component (`database.ts`) deploys them.
 *
 * pgBackRest speaks S3 over TLS only (plain HTTP arrived in 2.58; Debian's 2.45 has none), and
 * Garage serves S3 in plain HTTP on the LAN, as it does to every client. So each member's
 * container runs a TLS bridge on loopback (socat, a certificate made at each start) that passes
 * the bytes on to the blob tier unchanged. S3's signatures (SigV4) never carry the key's secret,
 * and pgBackRest checksums every file it stores.
 *
 * A restore takes the whole cluster back to one moment: every member stops and its data is set
 * aside on its Pi; the cluster's state leaves etcd; the first member starts with Patroni's
 * bootstrap method `picloud_restore` (pgBackRest restores the newest backup before the moment,
 * PostgreSQL replays the archived WAL up to it and is promoted); the others copy from it. Each
 * step leaves a marker on its Pi, so a step that runs again (its inputs changed, it was replaced,
 * or an `up` resumes after a failure) does not restore twice.
 */
import { createHash } from "node:crypto";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";
import type { ReplicaIdentity } from "../../runtime/workload";
import type { DatabaseConfig } from "./config";
import { WEEKDAYS } from "./config";
import { localRestUrl, restAnswers } from "./patroniRest";

/** Backups as configured (`picloud:tiers.database.backup`). */
export type BackupOptions = NonNullable<DatabaseConfig["backup"]>;

/** pgBackRest's stanza: one per cluster; stacks sharing a bucket are kept apart by the repository path. */
export const STANZA = "picloud";
/** pgBackRest's configuration in each member's container (its default place). */
export const PGBACKREST_CONFIG_IN_CONTAINER = "/etc/pgbackrest/pgbackrest.conf";
/** The member's entrypoint in the image: the TLS bridge when backups are on, then Patroni. */
export const MEMBER_ENTRYPOINT = "/usr/local/bin/picloud-member";
/** The entrypoint's environment: the bridge's loopback port and where it passes the bytes on. */
export const BRIDGE_ENV = { port: "PICLOUD_BACKUP_BRIDGE_PORT", upstream: "PICLOUD_BACKUP_UPSTREAM" } as const;
/** pgBackRest reads the key from its environment, never from a file. */
export const KEY_ENV = { id: "PGBACKREST_REPO1_S3_KEY", secret: "PGBACKREST_REPO1_S3_KEY_SECRET" } as const;
/** The backup timer's name: `picloud-backup-database`, and the `backup` label of its metric. */
export const BACKUP_NAME = "database";
/** Patroni's bootstrap method for a restore. */
export const RESTORE_METHOD = "picloud_restore";
/** Where each restore step leaves its marker on its Pi. */
export const RESTORE_MARKERS_DIR = "/var/lib/picloud/database-restore";

/** Where blob storage's S3 is, as the bridge reaches it. */
export interface S3Target {
    readonly host: string;
    readonly port: number;
    readonly region: string;
}

/** The S3 target of blob storage's endpoint (`http://host:port`). */
export function s3Target(endpoint: string, region: string): S3Target {
    const url = new URL(endpoint);
    return { host: url.hostname, port: Number(url.port || 80), region };
}

/** The archive command PostgreSQL runs for each WAL segment: pgBackRest, or nothing to keep when backups are off. */
export function archiveCommand(backup: BackupOptions | undefined): string {
    // archive_mode stays on either way: turning it on later would need every member restarted.
    return backup ? `pgbackrest --stanza=${STANZA} archive-push "%p"` : "/bin/true";
}

/** How a standby or a restore fetches archived WAL. */
export const RESTORE_COMMAND = `pgbackrest --stanza=${STANZA} archive-get %f "%p"`;

/** What pgBackRest is told about the member's own files. */
export interface PgbackrestPaths {
    readonly dataDir: string;
    readonly socketDir: string;
}

/**
 * pgBackRest's configuration on a member: the repository in the bucket (under the stack's own
 * path), reached through the member's TLS bridge on loopback but signed for blob storage's host;
 * the newest `keepFull` full backups kept; zstd; PostgreSQL over its socket. No secret: the key
 * comes from the environment ({@link KEY_ENV}).
 */
export function renderPgbackrestConf(backup: BackupOptions, context: { readonly scope: string; readonly s3: S3Target; readonly port: number; readonly paths: PgbackrestPaths }): string {
    return [
        "# picloud: pgBackRest on a database member; rendered, do not edit",
        "[global]",
        "repo1-type=s3",
        `repo1-path=/${context.scope}`,
        `repo1-s3-bucket=${backup.bucket}`,
        `repo1-s3-endpoint=${context.s3.host}`,
        `repo1-s3-region=${context.s3.region}`,
        "repo1-s3-uri-style=path",
        // The bridge on loopback: its certificate is made at each start, so it cannot be verified; loopback cannot be listened in on.
        "repo1-storage-host=127.0.0.1",
        `repo1-storage-port=${backup.bridgePort}`,
        "repo1-storage-verify-tls=n",
        `repo1-retention-full=${backup.keepFull}`,
        "repo1-retention-full-type=count",
        "compress-type=zst",
        "process-max=1",
        // A backup starts at once (a checkpoint now), not at the next scheduled checkpoint.
        "start-fast=y",
        "log-level-console=info",
        "log-level-file=off",
        "",
        `[${STANZA}]`,
        `pg1-path=${context.paths.dataDir}`,
        `pg1-socket-path=${context.paths.socketDir}`,
        `pg1-port=${context.port}`,
        "",
    ].join("\n");
}

/**
 * The member's entrypoint: when {@link BRIDGE_ENV} is set, a certificate for loopback and socat
 * listening with it on the bridge port, passing each connection on to blob storage; then Patroni
 * (`patroni`, with the entrypoint's arguments) in its place. Nothing of the stack is in it, so
 * the image does not change with the config.
 */
export function renderMemberEntrypoint(patroni: string): string {
    return [
        "#!/bin/sh",
        "# picloud: a database member; rendered, do not edit",
        "set -eu",
        `if [ -n "\${${BRIDGE_ENV.port}:-}" ]; then`,
        '    tls=$(mktemp -d)',
        '    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost -days 3650 -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null',
        `    socat "OPENSSL-LISTEN:\${${BRIDGE_ENV.port}},bind=127.0.0.1,reuseaddr,fork,cert=$tls/cert.pem,key=$tls/key.pem,verify=0" "TCP:\${${BRIDGE_ENV.upstream}}" &`,
        "fi",
        `exec ${shellQuote(patroni)} "$@"`,
        "",
    ].join("\n");
}

/** The bridge's environment for a member: its port and blob storage's host and port. */
export function bridgeEnvironment(backup: BackupOptions, s3: S3Target): Record<string, string> {
    return { [BRIDGE_ENV.port]: String(backup.bridgePort), [BRIDGE_ENV.upstream]: `${s3.host}:${s3.port}` };
}

/** What each member's patroni.yml gains with backups: standbys and restores fetch archived WAL; a restore's bootstrap method. */
export function patroniBackupSections(options: DatabaseConfig, dataDir: string): { recovery_conf?: Record<string, string>; bootstrap?: Record<string, unknown> } {
    if (!options.backup) return {};
    const recovery_conf = { restore_command: RESTORE_COMMAND };
    if (!options.restore) return { recovery_conf };
    return {
        recovery_conf,
        bootstrap: {
            method: RESTORE_METHOD,
            // pgBackRest picks the newest backup before the moment and writes the recovery settings;
            // PostgreSQL replays the archive up to the moment (or all of it) and is promoted.
            [RESTORE_METHOD]: { command: `sh -c ${shellQuote(`mkdir -p -m 0700 ${shellQuote(dataDir)} && exec ${restoreInvocation(options.restore.to)}`)}`, no_params: true, keep_existing_recovery_conf: true },
        },
    };
}

/** pgBackRest's restore to `to`: a time target promotes there; "latest" replays every archived segment. */
export function restoreInvocation(to: string): string {
    return to === "latest" ? `pgbackrest --stanza=${STANZA} --type=default restore` : `pgbackrest --stanza=${STANZA} --type=time ${shellQuote(`--target=${pgbackrestTime(to)}`)} --target-action=promote restore`;
}

/**
 * A moment as pgBackRest takes it to pick the backup and PostgreSQL to stop at: `YYYY-MM-DD
 * HH:MM:SS.mmm+00`, in UTC (pgBackRest refuses ISO 8601's `T` and `Z`). Microseconds are cut to
 * milliseconds: the restore stops at most a millisecond earlier.
 */
export function pgbackrestTime(iso: string): string {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) throw new RangeError(`picloud:tiers.database.restore.to: expected an ISO 8601 time, got "${iso}"`);
    return new Date(ms).toISOString().replace("T", " ").replace("Z", "+00");
}

/** The recovery settings pgBackRest's restore wrote, taken away once the member is promoted: a standby must never stop at the restore's moment. */
export const RECOVERY_SETTINGS = ["restore_command", "recovery_target_time", "recovery_target_action"] as const;

/** The backup's type on a day: full on `fullOn`, else differential (pgBackRest takes a full one when there is none yet). */
export function backupTypeLine(backup: BackupOptions): string {
    const day = WEEKDAYS.indexOf(backup.fullOn) + 1;
    // `date +%u` is 1 (Monday) to 7 (Sunday) in every locale.
    return `if [ "$(date +%u)" = ${day} ]; then type="full"; else type="diff"; fi`;
}

/** How a step reaches a member: pgBackRest and psql in its container, and how it stops and starts. */
export interface MemberAccess {
    /** Runs a command as the postgres user where the member's pgBackRest is (`docker exec postgres-N`). */
    readonly exec: readonly string[];
    /** Stops the member (Patroni and PostgreSQL) and waits until it has. */
    readonly stop: string;
    /** Starts the member again. */
    readonly start: string;
    /** Succeeds while the member runs. */
    readonly running: string;
    /** The member's socket folder, for psql as the postgres user. */
    readonly socketDir: string;
}

const run = (access: Pick<MemberAccess, "exec">) => access.exec.map(shellQuote).join(" ");
const isPrimary = (options: DatabaseConfig) => restAnswers(localRestUrl(options, "/primary"));

/**
 * One scheduled backup on a member's Pi (the body of the backup timer): on the primary only
 * (a standby skips, {@link BACKUP_SKIPPED}), the stanza made when missing, then a full or
 * differential backup; pgBackRest expires what is beyond the retention.
 */
export function renderBackupCommand(options: DatabaseConfig, backup: BackupOptions, exec: readonly string[], skipped: number): string {
    const run = exec.map(shellQuote).join(" ");
    return [
        `if ! ${isPrimary(options)}; then echo "picloud: this member is not the primary: the primary backs up"; exit ${skipped}; fi`,
        `${run} pgbackrest --stanza=${STANZA} stanza-create`,
        backupTypeLine(backup),
        `${run} pgbackrest --stanza=${STANZA} --type="$type" backup`,
    ].join("\n");
}

/** The id of a restore: the same moment is one restore, however often its steps run. */
export function restoreId(to: string): string {
    return createHash("sha256").update(to).digest("hex").slice(0, 12);
}

/** A restore as its steps take it: the moment, and where the steps' markers are on the Pi (default {@link RESTORE_MARKERS_DIR}). */
export interface RestoreTarget {
    readonly to: string;
    readonly markersDir?: string;
}

/** The marker a restore step leaves on its Pi. */
function marker(restore: RestoreTarget, step: string): string {
    return shellQuote(`${restore.markersDir ?? RESTORE_MARKERS_DIR}/${restoreId(restore.to)}.${step}`);
}
const once = (restore: RestoreTarget, step: string, what: string) => [`if [ -e ${marker(restore, step)} ]; then echo "picloud: ${what} already done for the restore to ${restore.to}"; exit 0; fi`];
const done = (restore: RestoreTarget, step: string) => [`mkdir -p ${shellQuote(restore.markersDir ?? RESTORE_MARKERS_DIR)}`, `touch ${marker(restore, step)}`];

/**
 * Restore, on every member's Pi first: the member stops and its data folder is set aside beside
 * it (`pgdata.before-restore-<id>`), never deleted: what the restore replaces stays until you
 * remove it.
 */
export function renderRestoreStop(self: Pick<ReplicaIdentity, "index">, restore: RestoreTarget, access: MemberAccess, dataDir: string): string {
    const { to } = restore;
    const aside = `${dataDir}.before-restore-${restoreId(to)}`;
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        ...once(restore, "stopped", `postgres-${self.index}'s stop`),
        access.stop,
        `if [ -d ${shellQuote(dataDir)} ] && [ ! -e ${shellQuote(aside)} ]; then mv ${shellQuote(dataDir)} ${shellQuote(aside)}; echo "picloud: postgres-${self.index}'s data set aside in ${aside}"; fi`,
        ...done(restore, "stopped"),
        `echo "picloud: postgres-${self.index} stopped for the restore to ${to}"`,
        "",
    ].join("\n");
}

/**
 * Then on the first member's Pi: the cluster's state (leader, members, the `initialize` key) is
 * deleted from etcd, so the next member to start bootstraps the cluster anew, by the restore.
 */
export function renderRestoreReset(scope: string, etcd: readonly string[], restore: RestoreTarget): string {
    const { to } = restore;
    const prefix = `/picloud/patroni/${scope}/`;
    // etcd's range end for a prefix: the prefix with its last byte plus one.
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const body = JSON.stringify({ key: Buffer.from(prefix).toString("base64"), range_end: Buffer.from(end).toString("base64") });
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        ...once(restore, "reset", "the cluster's reset"),
        "deleted=''",
        ...etcd.map((e) => `if [ -z "$deleted" ] && curl -fsS --max-time 10 -X POST -d ${shellQuote(body)} ${shellQuote(`http://${e}/v3/kv/deleterange`)} >/dev/null; then deleted=${shellQuote(e)}; fi`),
        `if [ -z "$deleted" ]; then echo "picloud: no etcd member answered: the cluster's state is left in etcd" >&2; exit 1; fi`,
        ...done(restore, "reset"),
        `echo "picloud: the cluster's state in etcd is reset (through $deleted) for the restore to ${to}"`,
        "",
    ].join("\n");
}

/**
 * Then on the first member's Pi: it starts and bootstraps by the restore; the step waits until it
 * is the primary, then takes a full backup, the first of the restored cluster's new timeline.
 */
export function renderRestoreRun(options: DatabaseConfig, restore: RestoreTarget, access: MemberAccess, waitSeconds = 3600): string {
    const { to } = restore;
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        ...once(restore, "restored", "the restore"),
        access.start,
        // Until it is the primary, or has stopped (a restore that failed: Patroni gives up).
        ...waitUntilLines(`${isPrimary(options)} || ! ${access.running}`, waitSeconds, (s) => `picloud: the restored member is not the primary after ${s} s: docker logs on this Pi says why; pulumi up again waits on`),
        `if ! ${isPrimary(options)}; then echo "picloud: the member stopped while restoring to ${to}: docker logs on this Pi says why" >&2; exit 1; fi`,
        ...RECOVERY_SETTINGS.map((setting) => `${run(access)} psql -X -q -v ON_ERROR_STOP=1 -h ${shellQuote(access.socketDir)} -p ${options.port} -d postgres -c ${shellQuote(`ALTER SYSTEM RESET ${setting}`)}`),
        `${run(access)} psql -X -q -t -h ${shellQuote(access.socketDir)} -p ${options.port} -d postgres -c 'SELECT pg_reload_conf()' >/dev/null`,
        `${run(access)} pgbackrest --stanza=${STANZA} --type=full backup`,
        ...done(restore, "restored"),
        `echo "picloud: restored to ${to}; a full backup of the restored cluster is taken"`,
        "",
    ].join("\n");
}

/** Last on each other member's Pi: it starts with no data and copies the restored primary, as a new standby does. */
export function renderRestoreRejoin(self: Pick<ReplicaIdentity, "index">, options: DatabaseConfig, restore: RestoreTarget, access: MemberAccess, waitSeconds = 3600): string {
    return [
        "#!/usr/bin/env bash",
        "set -euo pipefail",
        ...once(restore, "rejoined", `postgres-${self.index}'s rejoin`),
        access.start,
        ...waitUntilLines(restAnswers(localRestUrl(options, "/replica")), waitSeconds, (s) => `picloud: postgres-${self.index} does not stream from the restored primary after ${s} s`),
        ...done(restore, "rejoined"),
        `echo "picloud: postgres-${self.index} streams from the restored primary (restored to ${restore.to})"`,
        "",
    ].join("\n");
}

/**
 * Removes the restore's markers, run once the restore leaves the config (a command that exists
 * only while there is none), so the next restore, even to the same moment, runs. Never a step's
 * delete: a step replaced is created anew before the old one's delete runs.
 */
export const RESTORE_MARKERS_REMOVE = `sudo -n rm -rf ${RESTORE_MARKERS_DIR}`;
