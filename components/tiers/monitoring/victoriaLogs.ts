/**
 * VictoriaLogs, the Monitoring tier's log store, pure: its workload (one replica on an SSD Pi, its
 * data folder kept with it), where each Pi's systemd-journal-upload sends the journal, which
 * journal fields make a log stream, and how it is watched.
 */
import { LOG_STREAM_LABELS, MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import { JOURNAL_UPLOAD_METRIC } from "../../renderers/hostScripts";
import { LOG_LABEL_PREFIX, Workload, journalFieldOf } from "../../runtime/workload";
import type { VictoriaLogsConfig } from "./config";
import { MONITORING_IMAGES } from "./images";
import { StoreKind, storeWorkload } from "./stores";

const KEY = "picloud:tiers.monitoring.victoriaLogs";

/** Its workload's name (one replica: `victoria-logs-0`). */
export const VICTORIA_LOGS_WORKLOAD = "victoria-logs";

/** Its Prometheus job. */
export const VICTORIA_LOGS_JOB = "monitoring-victoria-logs";

/** VictoriaLogs among the tier's stores. */
export const VICTORIA_LOGS: StoreKind = { type: "picloud:monitoring:VictoriaLogs", key: KEY, workload: VICTORIA_LOGS_WORKLOAD, image: MONITORING_IMAGES.victoriaLogs, dataPath: "/storage" };

/** The paths clients use on its HTTP port. */
export const VICTORIA_LOGS_PATHS = {
    /** systemd-journal-upload's URL: it appends `/upload` itself. */
    journald: "/insert/journald",
    /** LogsQL queries, answered as JSON lines. */
    query: "/select/logsql/query",
} as const;

/**
 * The journal fields that make a log stream: the Pi, the systemd unit, the container, and the
 * contract's stream labels as Docker's journald driver writes them (`picloud.log.tier` →
 * `PICLOUD_LOG_TIER`). Journald cannot send them as headers on Debian 12 (systemd 252), so they
 * are VictoriaLogs' own setting for every journald upload.
 */
export const JOURNAL_STREAM_FIELDS: readonly string[] = ["_HOSTNAME", "_SYSTEMD_UNIT", "CONTAINER_NAME", ...LOG_STREAM_LABELS.map((l) => journalFieldOf(`${LOG_LABEL_PREFIX}${l}`))];

/** The URL every Pi's systemd-journal-upload sends its journal to; the port must be in it, or journal-upload puts 19532 there. */
export function journalUploadUrl(address: string, options: VictoriaLogsConfig): string {
    return `http://${address}:${options.httpPort}${VICTORIA_LOGS_PATHS.journald}`;
}

/**
 * The VictoriaLogs workload: one replica, on an SSD Pi unless `allowSdCard`, its data in
 * `/storage`. Its image is distroless: there is no command a healthcheck could run in it, so it
 * counts as deployed once running, and its target-down alert watches it from then on.
 */
export function victoriaLogsWorkload(options: VictoriaLogsConfig): Workload {
    return storeWorkload(VICTORIA_LOGS, options, { command: victoriaLogsFlags(options, VICTORIA_LOGS.dataPath) });
}

/**
 * Its command line, with its data in `storagePath`: the retention in days, the oldest days dropped
 * early once its filesystem is `maxDiskUsagePercent` full, and the journal's stream fields.
 */
export function victoriaLogsFlags(options: VictoriaLogsConfig, storagePath: string): string[] {
    return [
        `-httpListenAddr=:${options.httpPort}`,
        `-storageDataPath=${storagePath}`,
        `-retentionPeriod=${options.retentionDays}d`,
        `-retention.maxDiskUsagePercent=${options.maxDiskUsagePercent}`,
        `-journald.streamFields=${JOURNAL_STREAM_FIELDS.join(",")}`,
    ];
}

/**
 * How VictoriaLogs is watched: target-down, and the golden signals of its own alert rules
 * (VictoriaLogs' alerts-vlogs and alerts-health, on its job): ingestion errors and dropped
 * entries, journal uploads stopped from every Pi, disk, memory and restarts. Each Pi's own
 * uploads are watched by its host spec ({@link hostSpec}'s HostLogsStopped).
 */
export function victoriaLogsSpec(options: VictoriaLogsConfig, address: string): MonitoringSpec {
    const target = { job: VICTORIA_LOGS_JOB, targets: [`${address}:${options.httpPort}`], labels: { tier: "monitoring", service: VICTORIA_LOGS_WORKLOAD } };
    const s = `job="${VICTORIA_LOGS_JOB}"`;
    return {
        component: "monitoring-victoria-logs",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "VictoriaLogsIngestionErrors",
                expr: `sum by (path) (increase(vl_http_errors_total{${s},path=~"/insert/.*"}[5m])) > 0`,
                for: "5m",
                severity: "warning",
                summary: "VictoriaLogs refuses log uploads on {{ $labels.path }}",
                description: "Uploads fail; systemd-journal-upload retries from its saved cursor, so the entries arrive once it is fixed, as long as they are still in the Pi's journal (RAM). Its log says why.",
            },
            {
                alert: "VictoriaLogsEntriesDropped",
                expr: `sum(rate(vl_rows_dropped_total{${s}}[5m])) > 0`,
                for: "15m",
                severity: "warning",
                summary: "VictoriaLogs drops log entries on ingestion",
                description: `Entries with timestamps outside ${KEY}.retentionDays, too many fields or too long lines are dropped: its log says which and why (the reason label).`,
            },
            {
                alert: "VictoriaLogsNoJournalUploads",
                expr: `sum(rate(vl_rows_ingested_total{${s},type="journald"}[5m])) == 0`,
                for: "5m",
                severity: "warning",
                summary: "No Pi's journal reaches VictoriaLogs",
                description: "Every Pi writes a heartbeat to its journal each minute, so no entry at all means no upload works: check the network to its Pi, then systemd-journal-upload on any Pi.",
            },
            {
                alert: "VictoriaLogsDiskRunsOutOfSpace",
                expr: `sum(vl_data_size_bytes{${s}}) / (sum(vl_free_disk_space_bytes{${s}}) + sum(vl_data_size_bytes{${s}})) > 0.8`,
                for: "30m",
                severity: "warning",
                summary: "VictoriaLogs' data takes more than 80% of its disk",
                description: `Past ${KEY}.maxDiskUsagePercent it drops its oldest days before the ${options.retentionDays} days of retention: lower the retention or give its Pi a larger SSD.`,
            },
            {
                alert: "VictoriaLogsMemoryHigh",
                expr: `min_over_time(process_resident_memory_anon_bytes{${s}}[10m]) / vm_available_memory_bytes{${s}} > 0.8`,
                for: "5m",
                severity: "warning",
                summary: "VictoriaLogs uses more than 80% of its memory limit",
                description: `It risks the OOM killer: raise ${KEY}.memoryMb, or look for heavy queries.`,
            },
            {
                alert: "VictoriaLogsRestarting",
                expr: `changes(process_start_time_seconds{${s}}[15m]) > 2`,
                severity: "critical",
                summary: "VictoriaLogs restarted more than twice in 15 minutes",
                description: "It crashes or is OOM-killed: docker logs victoria-logs-0 on its Pi says which.",
            },
        ],
        dashboard: {
            uid: "picloud-victoria-logs",
            title: "picloud / VictoriaLogs",
            panels: [
                { title: "Log entries ingested per second, by protocol", expr: `sum by (type) (rate(vl_rows_ingested_total{${s}}[5m]))` },
                { title: "Seconds since each Pi's last upload", expr: `time() - max by (pi) (${JOURNAL_UPLOAD_METRIC})`, unit: "s" },
                { title: "Data on disk", expr: `sum(vl_data_size_bytes{${s}})`, unit: "bytes" },
                { title: "Free disk", expr: `min(vl_free_disk_space_bytes{${s}})`, unit: "bytes" },
                { title: "Ingestion errors per second, by path", expr: `sum by (path) (rate(vl_http_errors_total{${s},path=~"/insert/.*"}[5m]))` },
                { title: "Entries dropped per second", expr: `sum(rate(vl_rows_dropped_total{${s}}[5m]))` },
            ],
        },
        logLabels: { tier: "monitoring", service: VICTORIA_LOGS_WORKLOAD },
    };
}
