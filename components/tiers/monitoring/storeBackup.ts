/**
 * The resources of VictoriaMetrics' backup into blob storage, on the store's Pi; what they run is
 * rendered in {@link ./metricsBackup}.
 */
import * as pulumi from "@pulumi/pulumi";
import type { PiHost } from "../../host/piHost";
import { rootScriptResourceNames, runRootScript, shipFile, shipSecret } from "../../host/remoteFiles";
import { backupTimerRemoveCommand, backupUnits, renderBackupTimerScript } from "../../renderers/backupTimer";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../../renderers/hostScripts";
import type { BlobEnvironment } from "../blob/garage";
import type { VictoriaMetricsBackupConfig } from "./config";
import type { TierStore } from "./tierStore";
import { VICTORIA_METRICS, VICTORIA_METRICS_WORKLOAD } from "./victoriaMetrics";
import {
    METRICS_BACKUP_CREDENTIALS,
    METRICS_BACKUP_NAME,
    METRICS_BACKUP_RESOLVER,
    METRICS_RESTORE_TOOL,
    MetricsBackupSite,
    metricsBackupDestination,
    renderMetricsBackupCommand,
    renderMetricsBackupResolver,
    renderMetricsRestoreScript,
    renderS3Credentials,
} from "./metricsBackup";

/** The names of the resources that back up store `store` (its component's name), under it. */
function metricsBackupResourceNames(store: string) {
    return { credentials: `${store}-backup-credentials`, resolver: `${store}-backup-resolver`, timer: `${store}-backup`, restoreTool: `${store}-restore-tool` };
}

/** The names {@link backUpVictoriaMetrics} registers under store `store`, for its monitoring to cover before they exist. */
export function victoriaMetricsBackupCovers(store: string): string[] {
    const names = metricsBackupResourceNames(store);
    return [names.credentials, names.resolver, ...rootScriptResourceNames(names.timer), names.restoreTool];
}

/**
 * VictoriaMetrics' backup on its Pi, under its store's component `store`: the
 * key's S3 credentials (root's, 0600), with a nameserver the tools' resolver file, the backup
 * timer (a first backup at once) and the restore tool. Named after the store, not its Pi: should
 * the store move, an Update installs them where it runs now (`connection` is no replacement
 * trigger). The first backup waits for `after` (blob storage, whose bucket and key it needs) and the store's replica.
 */
export function backUpVictoriaMetrics(
    store: TierStore,
    input: {
        readonly host: PiHost;
        readonly backup: VictoriaMetricsBackupConfig;
        readonly key: BlobEnvironment;
        readonly cloudName: string;
        readonly httpPort: number;
        /** Resolve through the Pi's own CoreDNS: the key's endpoint is a name in the registry's zone. */
        readonly viaRegistry: boolean;
        readonly after: readonly pulumi.Resource[];
    },
): void {
    const names = metricsBackupResourceNames(store.storeName);
    const { host, backup, key } = input;
    const { self } = store;
    const site: MetricsBackupSite = {
        container: `${VICTORIA_METRICS_WORKLOAD}-${self.index}`,
        hostDataPath: self.dataPath!,
        storagePath: VICTORIA_METRICS.dataPath,
        httpPort: input.httpPort,
        url: metricsBackupDestination(backup.bucket, input.cloudName),
        endpoint: key.env.AWS_ENDPOINT_URL_S3,
        region: key.env.AWS_REGION,
        ...(input.viaRegistry && { nameserver: self.address }),
    };
    const after = [...input.after, ...(store.replicas[VICTORIA_METRICS_WORKLOAD] ?? []).map((r) => r.resource)];
    const opts = { parent: store, dependsOn: [host.ready] };
    const credentials = shipSecret(
        names.credentials,
        {
            connection: host.connection,
            secret: pulumi.all([key.secretEnv.AWS_ACCESS_KEY_ID, key.secretEnv.AWS_SECRET_ACCESS_KEY]).apply(([id, secret]) => renderS3Credentials(id, secret)),
            remotePath: METRICS_BACKUP_CREDENTIALS,
        },
        opts,
    );
    // With a nameserver, the tools' resolver file; a stack that drops the registry drops it too.
    const resolver =
        site.nameserver === undefined
            ? []
            : [shipFile(names.resolver, { connection: host.connection, text: renderMetricsBackupResolver(site.nameserver), remotePath: METRICS_BACKUP_RESOLVER, owner: "root" }, opts)];
    runRootScript(
        names.timer,
        {
            connection: host.connection,
            scriptName: `backup-${METRICS_BACKUP_NAME}.sh`,
            script: renderBackupTimerScript({ name: METRICS_BACKUP_NAME, onCalendar: backup.onCalendar, command: renderMetricsBackupCommand(site), textfileDir: NODE_EXPORTER_TEXTFILE_DIR }),
            remove: backupTimerRemoveCommand(METRICS_BACKUP_NAME, NODE_EXPORTER_TEXTFILE_DIR),
        },
        { parent: store, dependsOn: [host.ready, credentials, ...resolver, ...after] },
    );
    shipFile(names.restoreTool, { connection: host.connection, text: renderMetricsRestoreScript(site, backupUnits(METRICS_BACKUP_NAME).timer), remotePath: METRICS_RESTORE_TOOL, mode: "0700", owner: "root" }, opts);
}
