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
import {
    METRICS_BACKUP_CREDENTIALS,
    METRICS_BACKUP_NAME,
    METRICS_BACKUP_RESOLVER,
    METRICS_RESTORE_TOOL,
    MetricsBackupSite,
    metricsBackupDestination,
    metricsBackupResourceNames,
    renderMetricsBackupCommand,
    renderMetricsBackupResolver,
    renderMetricsRestoreScript,
    renderS3Credentials,
} from "./metricsBackup";

/** The names {@link backUpVictoriaMetrics} registers under store `store`, for its monitoring to cover. */
export function victoriaMetricsBackupCovers(store: string): string[] {
    const names = metricsBackupResourceNames(store);
    return [names.credentials, names.resolver, ...rootScriptResourceNames(names.timer), names.restoreTool];
}

/**
 * VictoriaMetrics' backup on its Pi, under its store's component (`store`, named `name`): the
 * key's S3 credentials (root's, 0600), with a nameserver the tools' resolver file, the backup
 * timer (a first backup at once) and the restore tool. Named after the store, not its Pi: should
 * the store move, an Update installs them where it runs now (`connection` is no replacement
 * trigger). `after`: blob storage, whose bucket and key the first backup needs, and the store.
 */
export function backUpVictoriaMetrics(
    store: pulumi.Resource,
    name: string,
    input: {
        readonly host: PiHost;
        readonly backup: VictoriaMetricsBackupConfig;
        readonly key: BlobEnvironment;
        readonly cloudName: string;
        readonly site: Omit<MetricsBackupSite, "url" | "endpoint" | "region">;
        readonly after: readonly pulumi.Resource[];
    },
): void {
    const names = metricsBackupResourceNames(name);
    const { host, backup, key } = input;
    const site: MetricsBackupSite = { ...input.site, url: metricsBackupDestination(backup.bucket, input.cloudName), endpoint: key.env.AWS_ENDPOINT_URL_S3, region: key.env.AWS_REGION };
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
        { parent: store, dependsOn: [host.ready, credentials, ...resolver, ...input.after] },
    );
    shipFile(names.restoreTool, { connection: host.connection, text: renderMetricsRestoreScript(site, backupUnits(METRICS_BACKUP_NAME).timer), remotePath: METRICS_RESTORE_TOOL, mode: "0700", owner: "root" }, opts);
}
