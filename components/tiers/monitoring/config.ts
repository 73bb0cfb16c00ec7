import { z } from "zod";
import { bucketName, cores, dnsLabel, expected, intIn, onCalendar, port, strictObject } from "../../config/fields";

/** The Monitoring tier's part of the config: `picloud:tiers.monitoring`. Pure: the config layer reads it (see test/layers.test.ts). */

const url = (what: string) => z.url(expected(`${what}: an http(s) URL`)).refine((u) => /^https?:\/\//.test(u), expected(`${what}: an http(s) URL`));

/** Where alerts go. */
export const alertingSchema = strictObject(
    {
        /** Webhooks that receive every critical and warning alert. */
        webhookUrls: z.array(url("a webhook"), expected("a list of webhook URLs")).default([]),
        /** Email for every critical and warning alert. */
        email: strictObject(
            {
                to: z.email(expected("an email address")),
                from: z.email(expected("an email address")),
                /** SMTP relay as host:port. */
                smarthost: z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, expected("an SMTP relay as host:port")),
                username: z.string().min(1, expected("an SMTP user name")).optional(),
                /** Name of a picloud: secret config key holding the SMTP password. */
                passwordSecret: z.string().regex(/^[a-zA-Z][a-zA-Z0-9]*$/, expected("the name of a picloud: secret config key")).optional(),
            },
            "email alerting",
        ).optional(),
        /** A dead man's switch URL (e.g. a healthchecks.io check) pinged while alerting works. */
        deadMansSwitchUrl: url("a dead man's switch").optional(),
    },
    "alerting",
);

/**
 * What each of the tier's stores takes (VictoriaMetrics, VictoriaLogs): one replica on an SSD Pi,
 * its size, its HTTP port. `what` names it in errors; `memoryMb` and `httpPort` are its defaults.
 */
const storeFields = (what: string, defaults: { memoryMb: number; httpPort: number }) => ({
    /** The Pi it runs on; default: where it ran before, else placement's choice among the SSD Pis. */
    pi: dnsLabel("a Pi name").optional(),
    /** Memory limit, MB; it sizes its caches from it. */
    memoryMb: intIn(256, 16384, " of MB").default(defaults.memoryMb),
    cpus: cores(0.25, 4).default(0.5),
    /** Its HTTP port: ingestion, queries and its own metrics. */
    httpPort: port().default(defaults.httpPort),
    /** It writes the whole time: SSD Pis only unless this says an SD card is acceptable. */
    allowSdCard: z.boolean(expected(`true or false: whether ${what} may run on an SD card`)).default(false),
});

/**
 * The long-term metrics store: VictoriaMetrics on an SSD Pi, fed by Prometheus's remote_write,
 * Grafana's default datasource, and open to apps pushing Influx line protocol or Prometheus text.
 */
export const victoriaMetricsSchema = strictObject(
    {
        ...storeFields("VictoriaMetrics", { memoryMb: 512, httpPort: 8428 }),
        /** How long metrics are kept, days; default a year. */
        retentionDays: intIn(1, 36500, " of days").default(365),
        /** Free disk below which it stops accepting data (read-only) rather than fill the Pi, MB. */
        minFreeDiskMb: intIn(100, 1_000_000, " of MB").default(1024),
        /**
         * Backups with vmbackup into a bucket of blob storage, from an instant snapshot, each
         * incremental on the one before (only new parts are uploaded), on `onCalendar`.
         */
        backup: strictObject(
            {
                /** The bucket, declared under picloud:tiers.blob.buckets; the backup goes under `<cloud>/victoria-metrics/` in it. */
                bucket: bucketName(),
                /** The blob key vmbackup signs with, declared under picloud:tiers.blob.keys with readwrite or owner access to the bucket. */
                key: dnsLabel("a key name"),
                /** When a backup runs; default every day at 03:15. */
                onCalendar: onCalendar().default("*-*-* 03:15"),
                /** Hours without a successful backup that alert; default 26. */
                maxAgeHours: intIn(1, 24 * 31).default(26),
            },
            "VictoriaMetrics backup options",
        ).optional(),
    },
    "VictoriaMetrics",
);

/**
 * The log store: VictoriaLogs on an SSD Pi. Every Pi's journal (Docker's logs are in it) reaches
 * it through systemd-journal-upload; Grafana reads it.
 */
export const victoriaLogsSchema = strictObject(
    {
        ...storeFields("VictoriaLogs", { memoryMb: 512, httpPort: 9428 }),
        /** How long logs are kept, days; default 30. */
        retentionDays: intIn(1, 36500, " of days").default(30),
        /** Disk use of its Pi's filesystem above which the oldest days are dropped before the retention says so, percent. */
        maxDiskUsagePercent: intIn(10, 95, " (percent)").default(80),
        /** Minutes without a successful upload from a Pi before its logs count as stopped. */
        silentMinutes: intIn(2, 1440, " of minutes").default(5),
    },
    "VictoriaLogs",
);

/** The Monitoring tier: Prometheus, Alertmanager and Grafana on one or two Pis, exporters on every Pi. */
export const monitoringSchema = strictObject(
    {
        /**
         * Replicas of Prometheus, Alertmanager and Grafana, each on a Pi of its own: with 2, each
         * Prometheus scrapes every target, both send to an Alertmanager cluster that notifies once,
         * and monitoring survives the loss of either Pi. Default 2 when the stack has two Pis or more.
         */
        replicas: intIn(1, 2, " of replicas").optional(),
        /** The Pis that run them, one replica each, in replica order; default: where they ran before, then Pis labelled role=monitoring, then those with an SSD, then the first. */
        pis: z.array(dnsLabel("a Pi name"), expected("a list of Pi names")).min(1, expected("one or two Pi names")).max(2, expected("one or two Pi names")).optional(),
        /** The Pi of the first replica; `pis` names them all. */
        pi: dnsLabel("a Pi name").optional(),
        /** How long metrics are kept, days; default 15. */
        retentionDays: intIn(1, 3650).default(15),
        /** Cap on Prometheus's on-disk size, MB; default 4096 on SSD, 1024 on SD. */
        retentionSizeMb: intIn(128, 1_000_000).optional(),
        /** Scrape interval, seconds; default 30. */
        scrapeIntervalSeconds: intIn(5, 300).default(30),
        alerting: alertingSchema.prefault({}),
        /**
         * Done means monitored: how long each component's update waits for Prometheus to report its
         * targets up and its rules loaded before it fails, seconds; 0: it does not wait.
         */
        confirmTimeoutSeconds: intIn(0, 3600, " of seconds").default(180),
        /** The long-term metrics store; absent: none, and Grafana reads Prometheus. */
        victoriaMetrics: victoriaMetricsSchema.optional(),
        /** The log store; absent: logs stay in each Pi's journal, in RAM. */
        victoriaLogs: victoriaLogsSchema.optional(),
    },
    "the monitoring tier",
);

/** Validated monitoring tier options. */
export type MonitoringConfig = z.output<typeof monitoringSchema>;
/** Validated VictoriaMetrics options. */
export type VictoriaMetricsConfig = z.output<typeof victoriaMetricsSchema>;
/** Validated VictoriaMetrics backup options. */
export type VictoriaMetricsBackupConfig = NonNullable<VictoriaMetricsConfig["backup"]>;
/** Validated VictoriaLogs options. */
export type VictoriaLogsConfig = z.output<typeof victoriaLogsSchema>;
/** What both stores' options have. */
export type StoreConfig = VictoriaMetricsConfig | VictoriaLogsConfig;
