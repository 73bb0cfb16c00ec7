/**
 * VictoriaMetrics' backups into blob storage, pure: vmbackup from an instant snapshot, each run
 * incremental on the backup before it (only parts not there yet are uploaded, parts gone from the
 * data are deleted from it), under `s3://<bucket>/<cloud>/victoria-metrics`; and vmrestore, which
 * syncs a stopped VictoriaMetrics' data folder back to it. Both programs are one image built on
 * the Pi from VictoriaMetrics' Go module at the version of its image, and run by a backup timer
 * ({@link renderBackupTimerScript}) whose last success the backup-age alert watches.
 */
import { GoProgram, goModuleImageTag, renderGoModuleDockerfile } from "../../renderers/goModuleImage";
import { renderImageBuild } from "../../renderers/remoteCommands";
import { shellQuote } from "../../renderers/shellSteps";
import { MONITORING_IMAGES } from "./images";

/** The backup's name: its timer is `picloud-backup-victoria-metrics`, its metric's `backup` label this. */
export const METRICS_BACKUP_NAME = "victoria-metrics";

const MODULE = "github.com/VictoriaMetrics/VictoriaMetrics";

/** The version of VictoriaMetrics' pinned image, which its backup tools are built at. */
export function victoriaMetricsVersion(image: string = MONITORING_IMAGES.victoriaMetrics): string {
    const version = /^victoriametrics\/victoria-metrics:v([0-9]+\.[0-9]+\.[0-9]+)@/.exec(image)?.[1];
    if (!version) throw new Error(`expected VictoriaMetrics' image as victoriametrics/victoria-metrics:v<x.y.z>@sha256:…, got ${image}`);
    return version;
}

/** vmbackup, with vmrestore beside it in the same image, at VictoriaMetrics' version. */
export const VMBACKUP: GoProgram = { pkg: `${MODULE}/app/vmbackup`, version: victoriaMetricsVersion(), alongside: [`${MODULE}/app/vmrestore`] };

/** The image's Dockerfile and tag. */
export const VMBACKUP_DOCKERFILE = renderGoModuleDockerfile(VMBACKUP);
export const VMBACKUP_IMAGE = goModuleImageTag("vmbackup", VMBACKUP, VMBACKUP_DOCKERFILE);

/** Where the key's S3 credentials are on the store's Pi: root's, 0600; mounted read-only into the tools' container at the same path. */
export const METRICS_BACKUP_DIR = "/etc/picloud/victoria-metrics-backup";
export const METRICS_BACKUP_CREDENTIALS = `${METRICS_BACKUP_DIR}/s3-credentials`;

/** The restore tool picloud installs on the store's Pi (run as root, with `--yes`). */
export const METRICS_RESTORE_TOOL = "/usr/local/sbin/picloud-restore-victoria-metrics";

/** Where a backup goes: the stack's own folder of the bucket, so stacks can share one. */
export function metricsBackupDestination(bucket: string, cloudName: string): string {
    return `s3://${bucket}/${cloudName}/${METRICS_BACKUP_NAME}`;
}

/** What both tools need to reach the backup. */
export interface MetricsBackupStore {
    /** `s3://bucket/path`. */
    readonly url: string;
    /** Blob storage's S3 endpoint, `http://host:port`. */
    readonly endpoint: string;
    /** An AWS shared credentials file ({@link renderS3Credentials}). */
    readonly credentialsFile: string;
}

/**
 * vmbackup's command line: a snapshot made through VictoriaMetrics' API (and deleted after), its
 * parts uploaded where they are not already. Its own metrics listen on a Unix socket, so a run
 * takes no port on the Pi.
 */
export function vmbackupFlags(input: { readonly storagePath: string; readonly snapshotCreateUrl: string; readonly store: MetricsBackupStore; readonly listen: string }): string[] {
    return [
        `-storageDataPath=${input.storagePath}`,
        `-snapshot.createURL=${input.snapshotCreateUrl}`,
        `-dst=${input.store.url}`,
        ...storeFlags(input.store),
        `-httpListenAddr=unix:${input.listen}`,
        "-loggerOutput=stdout",
    ];
}

/** vmrestore's command line: the data folder made the same as the backup (what is not in it is deleted). VictoriaMetrics must be stopped. */
export function vmrestoreFlags(input: { readonly storagePath: string; readonly store: MetricsBackupStore; readonly listen: string }): string[] {
    return [`-src=${input.store.url}`, `-storageDataPath=${input.storagePath}`, ...storeFlags(input.store), `-httpListenAddr=unix:${input.listen}`, "-loggerOutput=stdout"];
}

function storeFlags(store: MetricsBackupStore): string[] {
    // Garage serves buckets by path, which is vmbackup's default; said here so it does not depend on that.
    return [`-customS3Endpoint=${store.endpoint}`, "-s3ForcePathStyle=true", `-credsFilePath=${store.credentialsFile}`];
}

/** The key as an AWS shared credentials file, its default profile. */
export function renderS3Credentials(accessKeyId: string, secretAccessKey: string): string {
    if (!/^[A-Za-z0-9]+$/.test(accessKeyId) || !/^[A-Za-z0-9+/=]+$/.test(secretAccessKey)) throw new Error("expected an S3 access key id and secret of letters and digits");
    return `[default]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`;
}

/** Where the backup runs: the store's replica on its Pi. */
export interface MetricsBackupSite {
    /** The replica's container, e.g. `victoria-metrics-0`. */
    readonly container: string;
    /** Its data folder on the Pi. */
    readonly hostDataPath: string;
    /** The folder inside its container (`-storageDataPath`); the tools see the data there too. */
    readonly storagePath: string;
    /** Its HTTP port, published on the Pi. */
    readonly httpPort: number;
    /** The bucket's `s3://` URL and blob storage's endpoint and region. */
    readonly url: string;
    readonly endpoint: string;
    readonly region: string;
    /**
     * The Pi's own CoreDNS (its address), when the stack has the service registry: blob storage's
     * name is in its zone, which the Pi's own resolver does not know. The tools then resolve
     * through it, and it forwards every other name.
     */
    readonly nameserver?: string;
}

/** The resolver file the tools get with a {@link MetricsBackupSite.nameserver} ({@link renderMetricsBackupResolver}, shipped beside the credentials), mounted over their /etc/resolv.conf. */
export const METRICS_BACKUP_RESOLVER = `${METRICS_BACKUP_DIR}/resolv.conf`;

/** The image, built on the Pi unless it is there (a pruned image comes back on the next run). */
function ensureImage(): string {
    return `{ ${renderImageBuild(VMBACKUP_IMAGE)}; } >/dev/null <<'PICLOUD_DOCKERFILE'\n${VMBACKUP_DOCKERFILE}PICLOUD_DOCKERFILE`;
}

/** The tools' resolver file: the Pi's own CoreDNS alone. */
export function renderMetricsBackupResolver(nameserver: string): string {
    if (!/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(nameserver)) throw new Error(`expected the Pi's IPv4 address as the tools' nameserver, got ${nameserver}`);
    return `nameserver ${nameserver}\n`;
}

/**
 * `docker run` of one of the tools on the Pi's network, the data folder mounted where
 * VictoriaMetrics has it (read-only for a backup), the credentials read-only, and with a
 * nameserver, the resolver file over the container's own.
 */
function runTool(site: MetricsBackupSite, tool: "vmbackup" | "vmrestore", args: readonly string[]): string {
    return [
        "docker run --rm --network host",
        `-v ${shellQuote(`${site.hostDataPath}:${site.storagePath}${tool === "vmbackup" ? ":ro" : ""}`)}`,
        `-v ${METRICS_BACKUP_DIR}:${METRICS_BACKUP_DIR}:ro`,
        ...(site.nameserver === undefined ? [] : [`-v ${METRICS_BACKUP_RESOLVER}:/etc/resolv.conf:ro`]),
        `-e AWS_REGION=${shellQuote(site.region)}`,
        ...(tool === "vmbackup" ? [] : ["--entrypoint /vmrestore"]),
        shellQuote(VMBACKUP_IMAGE),
        ...args.map(shellQuote),
    ].join(" ");
}

function store(site: MetricsBackupSite): MetricsBackupStore {
    return { url: site.url, endpoint: site.endpoint, credentialsFile: METRICS_BACKUP_CREDENTIALS };
}

/** One backup run, as the backup timer's command: vmbackup against the replica's published port on the Pi. */
export function renderMetricsBackupCommand(site: MetricsBackupSite): string {
    const flags = vmbackupFlags({ storagePath: site.storagePath, snapshotCreateUrl: `http://127.0.0.1:${site.httpPort}/snapshot/create`, store: store(site), listen: "/vmbackup.sock" });
    return [ensureImage(), runTool(site, "vmbackup", flags)].join("\n");
}

/**
 * The restore tool: stops the backup timer and the replica's container, syncs the data folder to
 * the backup with vmrestore, starts both again however it ends (a failed restore leaves what
 * vmrestore left, and the tool says so). Asks for `--yes`: what was written since the backup
 * is lost.
 */
export function renderMetricsRestoreScript(site: MetricsBackupSite, timer: string): string {
    const flags = vmrestoreFlags({ storagePath: site.storagePath, store: store(site), listen: "/vmrestore.sock" });
    const c = shellQuote(site.container);
    return [
        "#!/usr/bin/env bash",
        `# picloud: restores ${site.container} on this Pi from its backup at ${site.url}; rendered, do not edit.`,
        "set -euo pipefail",
        `if [ "\${1:-}" != --yes ]; then`,
        `    echo "usage: $0 --yes: stops ${site.container}, makes its data (${site.hostDataPath}) the backup at ${site.url} and starts it again; what it stored since that backup is lost" >&2`,
        "    exit 2",
        "fi",
        ensureImage(),
        `systemctl stop ${timer}`,
        // Whatever happens from here on, the store and its backups run again when the tool ends.
        `trap 'docker start ${c} >/dev/null || echo "picloud: could not start ${site.container}" >&2; systemctl start ${timer} || echo "picloud: could not start ${timer}" >&2' EXIT`,
        `docker stop -t 60 ${c} >/dev/null`,
        "status=0",
        `${runTool(site, "vmrestore", flags)} || status=$?`,
        `if [ "$status" -ne 0 ]; then echo "picloud: vmrestore failed (exit $status): ${site.container} runs on what it left in ${site.hostDataPath}" >&2; exit "$status"; fi`,
        `echo "picloud: ${site.container} restored from ${site.url}"`,
        "",
    ].join("\n");
}
