/**
 * VictoriaMetrics, the Monitoring tier's long-term metrics store, pure: its workload (one replica on
 * an SSD Pi, its data folder kept with it), how Prometheus and apps reach it, and how it is watched.
 */
import { LIVENESS, MonitoringSpec, backupAgeRule, targetDownRule } from "../../monitoring/contract";
import { BACKUP_METRIC } from "../../renderers/backupTimer";
import { METRICS_BACKUP_NAME } from "./metricsBackup";
import type { Workload } from "../../runtime/workload";
import type { VictoriaMetricsConfig } from "./config";
import { MONITORING_IMAGES } from "./images";
import { StoreKind, storeWorkload } from "./stores";

const KEY = "picloud:tiers.monitoring.victoriaMetrics";

/** Its workload's name (one replica: `victoria-metrics-0`). */
export const VICTORIA_METRICS_WORKLOAD = "victoria-metrics";

/** Its Prometheus job. */
export const VICTORIA_METRICS_JOB = "monitoring-victoria-metrics";

/** The paths clients use on its HTTP port. */
export const VICTORIA_METRICS_PATHS = {
    /** Prometheus's remote_write. */
    remoteWrite: "/api/v1/write",
    /** Influx line protocol, as InfluxDB 1.x's /write. */
    influxWrite: "/write",
    /** Prometheus text exposition format, pushed. */
    prometheusImport: "/api/v1/import/prometheus",
    /** PromQL, as Prometheus's API. */
    query: "/api/v1/query",
} as const;

/** VictoriaMetrics among the tier's stores. */
export const VICTORIA_METRICS: StoreKind = { type: "picloud:monitoring:VictoriaMetrics", key: KEY, workload: VICTORIA_METRICS_WORKLOAD, image: MONITORING_IMAGES.victoriaMetrics, dataPath: "/storage" };

/** The VictoriaMetrics workload: one replica, on an SSD Pi unless `allowSdCard`, its data in `/storage`. */
export function victoriaMetricsWorkload(options: VictoriaMetricsConfig): Workload {
    return storeWorkload(VICTORIA_METRICS, options, {
        command: victoriaMetricsFlags(options, VICTORIA_METRICS.dataPath),
        healthcheck: { command: ["wget", "-qO-", `http://localhost:${options.httpPort}/health`], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 60 },
    });
}

/**
 * Its command line, with its data in `storagePath`: retention in days, read-only (refusing
 * writes, still answering queries) before the disk is full, and one sample kept per series per
 * {@link LIVENESS} scrape interval: both Prometheus replicas write every series, with the same
 * labels. Its caches size themselves from the container's memory limit.
 */
export function victoriaMetricsFlags(options: VictoriaMetricsConfig, storagePath: string): string[] {
    return [
        `-httpListenAddr=:${options.httpPort}`,
        `-storageDataPath=${storagePath}`,
        `-retentionPeriod=${options.retentionDays}d`,
        `-storage.minFreeDiskSpaceBytes=${options.minFreeDiskMb}MiB`,
        `-dedup.minScrapeInterval=${LIVENESS.scrapeIntervalSeconds}s`,
    ];
}

/**
 * How VictoriaMetrics is watched: target-down, and the golden signals of its own alert rules
 * (VictoriaMetrics' alerts-health and alerts-single-node, on its job): disk filling or gone
 * read-only, rejected or slow inserts, request errors, memory, restarts, lost index records;
 * Prometheus's remote_write to it failing or falling behind; and, with backups, the last one too old.
 */
export function victoriaMetricsSpec(options: VictoriaMetricsConfig, address: string): MonitoringSpec {
    const target = { job: VICTORIA_METRICS_JOB, targets: [`${address}:${options.httpPort}`], labels: { tier: "monitoring", service: VICTORIA_METRICS_WORKLOAD } };
    const s = `job="${VICTORIA_METRICS_JOB}"`;
    return {
        component: "monitoring-victoria-metrics",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "VictoriaMetricsReadOnly",
                expr: `min(vm_free_disk_space_bytes{${s}} - vm_free_disk_space_limit_bytes{${s}}) <= 0`,
                for: "1m",
                severity: "critical",
                summary: "VictoriaMetrics has gone read-only: its disk is nearly full",
                description: `Free disk is below ${KEY}.minFreeDiskMb, so it refuses new samples and Prometheus queues them in its WAL (about two hours). Free disk on its Pi or lower ${KEY}.retentionDays.`,
            },
            {
                alert: "VictoriaMetricsDiskRunsOutOfSpace",
                expr: `sum(vm_data_size_bytes{${s}}) / (sum(vm_free_disk_space_bytes{${s}}) + sum(vm_data_size_bytes{${s}})) > 0.8`,
                for: "30m",
                severity: "warning",
                summary: "VictoriaMetrics' data takes more than 80% of its disk",
                description: `At this rate it goes read-only before the retention of ${options.retentionDays} days drops old data. Lower ${KEY}.retentionDays or give its Pi a larger SSD.`,
            },
            {
                alert: "VictoriaMetricsRowsRejected",
                expr: `sum(rate(vm_rows_ignored_total{${s}}[5m])) > 0`,
                for: "15m",
                severity: "warning",
                summary: "VictoriaMetrics rejects samples on ingestion",
                description: "Samples with too many labels, too long names or timestamps outside retention are dropped: its log says which and from whom (the reason label).",
            },
            {
                alert: "VictoriaMetricsRequestErrors",
                expr: `sum by (path) (increase(vm_http_request_errors_total{${s}}[5m])) > 0`,
                for: "15m",
                severity: "warning",
                summary: "VictoriaMetrics answers {{ $labels.path }} with errors",
                description: "Writes or queries on this path fail: a pushing app sends a malformed body, or queries exceed their limits. Its log names the client.",
            },
            {
                alert: "VictoriaMetricsSlowInserts",
                expr: `sum(rate(vm_slow_row_inserts_total{${s}}[5m])) / sum(rate(vm_rows_inserted_total{${s}}[5m])) > 0.05`,
                for: "15m",
                severity: "warning",
                summary: "More than 5% of VictoriaMetrics' inserts are slow",
                description: `Its caches are too small for the number of series: raise ${KEY}.memoryMb, or cut series (cardinality) at their source.`,
            },
            {
                alert: "VictoriaMetricsMemoryHigh",
                expr: `min_over_time(process_resident_memory_anon_bytes{${s}}[10m]) / vm_available_memory_bytes{${s}} > 0.8`,
                for: "5m",
                severity: "warning",
                summary: "VictoriaMetrics uses more than 80% of its memory limit",
                description: `It risks the OOM killer: raise ${KEY}.memoryMb.`,
            },
            {
                alert: "VictoriaMetricsRestarting",
                expr: `changes(process_start_time_seconds{${s}}[15m]) > 2`,
                severity: "critical",
                summary: "VictoriaMetrics restarted more than twice in 15 minutes",
                description: "It crashes or is OOM-killed: docker logs victoria-metrics-0 on its Pi says which.",
            },
            {
                alert: "VictoriaMetricsIndexRecordsDropped",
                expr: `increase(vm_indexdb_items_dropped_total{${s}}[5m]) > 0`,
                severity: "critical",
                summary: "VictoriaMetrics dropped index records",
                description: "Some series cannot be found by queries any more (labels too long for its index). Its log names them.",
            },
            {
                alert: "PrometheusRemoteWriteFailing",
                expr: "sum(rate(prometheus_remote_storage_samples_failed_total[5m])) > 0",
                for: "10m",
                severity: "warning",
                summary: "Prometheus fails to send samples to VictoriaMetrics",
                description: "The long-term store refuses or cannot be reached; Prometheus retries from its WAL, which keeps about two hours. Check victoria-metrics-0 and the network between the Pis.",
            },
            {
                alert: "PrometheusRemoteWriteBehind",
                expr: "max(prometheus_remote_storage_highest_timestamp_in_seconds) - max(prometheus_remote_storage_queue_highest_sent_timestamp_seconds) > 300",
                for: "15m",
                severity: "warning",
                summary: "Prometheus's remote_write to VictoriaMetrics is more than 5 minutes behind",
                description: "Samples wait in Prometheus's WAL; past about two hours they are lost to the long-term store. VictoriaMetrics is slow (see its slow inserts) or the link is saturated.",
            },
            ...(options.backup ? [backupAgeRule(METRICS_BACKUP_NAME, options.backup.maxAgeHours)] : []),
        ],
        dashboard: {
            uid: "picloud-victoria-metrics",
            title: "picloud / VictoriaMetrics",
            panels: [
                { title: "Samples ingested per second, by protocol", expr: `sum by (type) (rate(vm_rows_inserted_total{${s}}[5m]))` },
                { title: "Series active in the last hour", expr: `sum(vm_cache_entries{${s},type="storage/hour_metric_ids"})`, kind: "stat" },
                { title: "Data on disk", expr: `sum(vm_data_size_bytes{${s}})`, unit: "bytes" },
                { title: "Free disk", expr: `min(vm_free_disk_space_bytes{${s}})`, unit: "bytes" },
                { title: "Request errors per second, by path", expr: `sum by (path) (rate(vm_http_request_errors_total{${s}}[5m]))` },
                { title: "remote_write lag", expr: "max(prometheus_remote_storage_highest_timestamp_in_seconds) - max(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)", unit: "s" },
                ...(options.backup ? [{ title: "Since the last backup", expr: `time() - max(${BACKUP_METRIC}{backup="${METRICS_BACKUP_NAME}"})`, unit: "s", kind: "stat" as const }] : []),
            ],
        },
        logLabels: { tier: "monitoring", service: VICTORIA_METRICS_WORKLOAD },
    };
}
