/**
 * Renderers turning monitoring contracts into the files Prometheus, Alertmanager and Grafana read
 * on the monitoring Pi. Pure text in, text out: writing the files is the Monitoring tier's job.
 */
import { stringify } from "yaml";
import { Dashboard, LIVENESS, MonitoringSpec } from "./contract";

/** Uid of the provisioned Prometheus datasource; dashboards reference it so they survive renames. */
export const GRAFANA_PROMETHEUS_DATASOURCE_UID = "picloud-prometheus";

/** Name of the single file_sd scrape job every component's targets go through. */
export const FILE_SD_JOB_NAME = "picloud";

/** Receiver that drops what it gets: valid with no integrations, so the config always loads. */
export const NULL_RECEIVER = "null";

/** Receiver of the always-firing Watchdog alert (the dead man's switch). */
export const DEADMANSSWITCH_RECEIVER = "deadmansswitch";

/** Receiver of critical and warning alerts: the webhooks plus email. */
export const DEFAULT_RECEIVER = "default";

/** Name of the always-firing alert whose silence means the alerting pipeline is broken. */
export const WATCHDOG_ALERT = "Watchdog";

// lineWidth 0: folded long lines are valid YAML but make PromQL and templates unreadable in diffs.
const yaml = (doc: unknown): string => stringify(doc, { lineWidth: 0 });

function seconds(name: string, value: number): string {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive whole number of seconds, got ${value}`);
    return `${value}s`;
}

/** What `prometheus.yml` needs to know about the monitoring Pi's layout. */
export interface PrometheusConfigInput {
    readonly scrapeIntervalSeconds: number;
    readonly evaluationIntervalSeconds: number;
    /** `host:port` of each Alertmanager. */
    readonly alertmanagers: readonly string[];
    /** Directory of the per-component file_sd JSON documents. */
    readonly fileSdDir: string;
    /** Directory of the per-component rule files. */
    readonly rulesDir: string;
    readonly externalLabels: Readonly<Record<string, string>>;
    /** `host:port` of every Prometheus replica, itself included: each scrapes them all. */
    readonly prometheusTargets: readonly string[];
    /** URLs every sample is also sent to (VictoriaMetrics' `/api/v1/write`), for long-term storage. */
    readonly remoteWriteUrls?: readonly string[];
}

/**
 * `prometheus.yml`: a self-scrape job plus one file_sd job reading every component's targets, so a
 * component attaches by dropping a file in `fileSdDir` and `rulesDir` without the config changing.
 * Each file_sd target group carries its own `job` label; Prometheus only sets `job` from
 * `job_name` when discovery left it empty, so series get the component's job, not "picloud".
 */
export function renderPrometheusConfig(input: PrometheusConfigInput): string {
    const doc: Record<string, unknown> = {
        global: {
            scrape_interval: seconds("scrapeIntervalSeconds", input.scrapeIntervalSeconds),
            evaluation_interval: seconds("evaluationIntervalSeconds", input.evaluationIntervalSeconds),
            external_labels: { ...input.externalLabels },
        },
        rule_files: [`${input.rulesDir}/*.yml`],
    };
    if (input.alertmanagers.length > 0) {
        doc.alerting = { alertmanagers: [{ static_configs: [{ targets: [...input.alertmanagers] }] }] };
    }
    if (input.remoteWriteUrls?.length) {
        // Prometheus keeps unsent samples in its WAL and resends them, so a restarted or moved
        // long-term store loses nothing shorter than the WAL's two hours or so.
        doc.remote_write = input.remoteWriteUrls.map((url) => ({ url }));
    }
    doc.scrape_configs = [
        {
            job_name: "prometheus",
            scrape_interval: `${LIVENESS.scrapeIntervalSeconds}s`,
            scrape_timeout: `${LIVENESS.scrapeTimeoutSeconds}s`,
            static_configs: [{ targets: [...input.prometheusTargets] }],
        },
        {
            job_name: FILE_SD_JOB_NAME,
            // File changes are seen through inotify at once; the refresh catches a missed event.
            file_sd_configs: [{ files: [`${input.fileSdDir}/*.json`], refresh_interval: "1m" }],
        },
    ];
    return yaml(doc);
}

/**
 * The file_sd JSON document of one component: a target group per scrape target. The contract's
 * own fields are applied last so a free-form label cannot hijack the job, component, path or scheme.
 * A target that is not bulk carries {@link LIVENESS}'s interval and timeout (Prometheus takes
 * `__scrape_interval__` and `__scrape_timeout__` from discovery, as it does `job`).
 */
export function renderFileSd(spec: MonitoringSpec): string {
    const groups = spec.scrapeTargets.map((t) => ({
        targets: [...t.targets],
        labels: {
            ...t.labels,
            job: t.job,
            component: spec.component,
            __metrics_path__: t.metricsPath ?? "/metrics",
            __scheme__: t.scheme ?? "http",
            ...(!t.bulk && { __scrape_interval__: `${LIVENESS.scrapeIntervalSeconds}s`, __scrape_timeout__: `${LIVENESS.scrapeTimeoutSeconds}s` }),
        },
    }));
    return `${JSON.stringify(groups, null, 2)}\n`;
}

/** The Prometheus rule file of one component: one group, named after it, holding its alerts. */
export function renderRuleFile(spec: MonitoringSpec): string {
    return yaml({
        groups: [
            {
                name: spec.component,
                rules: spec.alertRules.map((r) => ({
                    alert: r.alert,
                    expr: r.expr,
                    for: r.for ?? "0s",
                    labels: { severity: r.severity, component: spec.component },
                    annotations: { summary: r.summary, description: r.description },
                })),
            },
        ],
    });
}

/** Where Alertmanager sends notifications; every field optional so a bare lab still loads. */
export interface AlertmanagerConfigInput {
    readonly webhookUrls: readonly string[];
    readonly email?: {
        readonly to: string;
        readonly from: string;
        /** `host:port` of the SMTP relay. */
        readonly smarthost: string;
        readonly authUsername?: string;
        /** File holding the SMTP password on the monitoring Pi; the password is never inlined. */
        readonly authPasswordFile?: string;
    };
    /** Dead man's switch service (healthchecks.io style) that pages when pings stop. */
    readonly deadMansSwitchUrl?: string;
}

/**
 * `alertmanager.yml`: Watchdog goes to the dead man's switch (pinged every minute), info alerts
 * are dropped, everything else (critical, warning, and anything mislabelled) reaches the default
 * receiver, grouped per alert and component: a critical group after {@link LIVENESS}'s short wait
 * (a dead service is news at once), the rest after 30 s. A critical alert inhibits warnings of its
 * component.
 */
export function renderAlertmanagerConfig(input: AlertmanagerConfigInput): string {
    const email = input.email;
    const defaultReceiver: Record<string, unknown> = { name: DEFAULT_RECEIVER };
    if (input.webhookUrls.length > 0) {
        defaultReceiver.webhook_configs = input.webhookUrls.map((url) => ({ url, send_resolved: true }));
    }
    if (email) {
        defaultReceiver.email_configs = [
            {
                to: email.to,
                from: email.from,
                smarthost: email.smarthost,
                send_resolved: true,
                ...(email.authUsername !== undefined && { auth_username: email.authUsername }),
                ...(email.authPasswordFile !== undefined && { auth_password_file: email.authPasswordFile }),
            },
        ];
    }
    const receivers: Record<string, unknown>[] = [defaultReceiver, { name: NULL_RECEIVER }];
    if (input.deadMansSwitchUrl !== undefined) {
        receivers.push({ name: DEADMANSSWITCH_RECEIVER, webhook_configs: [{ url: input.deadMansSwitchUrl, send_resolved: false }] });
    }
    return yaml({
        route: {
            receiver: DEFAULT_RECEIVER,
            group_by: ["alertname", "component"],
            group_wait: "30s",
            group_interval: "5m",
            repeat_interval: "4h",
            routes: [
                {
                    receiver: input.deadMansSwitchUrl !== undefined ? DEADMANSSWITCH_RECEIVER : NULL_RECEIVER,
                    matchers: [`alertname="${WATCHDOG_ALERT}"`],
                    // The switch expects a ping every minute; batching would make it think we died.
                    group_wait: "0s",
                    group_interval: "1m",
                    repeat_interval: "1m",
                },
                { receiver: NULL_RECEIVER, matchers: ['severity="info"'] },
                // An alert joining an open critical group (a second replica down, or the same one
                // again within the 15 minutes Prometheus resends a resolved alert) goes out at the
                // group's next tick: 5 s, not five minutes. A tick sends only when the group changed.
                { receiver: DEFAULT_RECEIVER, matchers: ['severity="critical"'], group_wait: LIVENESS.criticalGroupWait, group_interval: LIVENESS.criticalGroupInterval },
                { receiver: DEFAULT_RECEIVER, matchers: ['severity="warning"'] },
            ],
        },
        inhibit_rules: [
            {
                source_matchers: ['severity="critical"'],
                target_matchers: ['severity="warning"'],
                equal: ["component"],
            },
        ],
        receivers,
    });
}

/** Uid of the provisioned VictoriaMetrics datasource. */
export const GRAFANA_VICTORIA_METRICS_DATASOURCE_UID = "picloud-victoria-metrics";

/** Uid of the provisioned VictoriaLogs datasource. */
export const GRAFANA_VICTORIA_LOGS_DATASOURCE_UID = "picloud-victoria-logs";

/**
 * VictoriaLogs' Grafana datasource plugin (Apache-2.0, signed, in Grafana's catalog), pinned; Grafana
 * installs it at its start from `GF_INSTALL_PLUGINS` (`<id> <version>`). Its manifest at 0.19.3 asks
 * for Grafana 10.4.0 or later (`grafanaDependency`); the image is 11.6.
 */
export const GRAFANA_VICTORIA_LOGS_PLUGIN = { id: "victoriametrics-logs-datasource", version: "0.19.3" } as const;

/**
 * Grafana datasource provisioning: Prometheus under a fixed uid (the dashboards' datasource), and
 * VictoriaMetrics, the long-term store, when there is one; it is then the default (Explore and new
 * panels read a year, not Prometheus's days). VictoriaLogs, when there is one, for the logs.
 */
export function renderGrafanaDatasources(input: { readonly prometheusUrl: string; readonly victoriaMetricsUrl?: string; readonly victoriaLogsUrl?: string }): string {
    const datasource = (name: string, uid: string, type: string, url: string, isDefault: boolean) => ({
        name,
        uid,
        type,
        access: "proxy",
        url,
        isDefault,
        // Provisioned means owned by picloud: UI edits would be lost at the next deploy.
        editable: false,
    });
    const vm = input.victoriaMetricsUrl;
    const vl = input.victoriaLogsUrl;
    // A stack that drops a store drops its datasource too.
    const dropped = [...(vm === undefined ? ["VictoriaMetrics"] : []), ...(vl === undefined ? ["VictoriaLogs"] : [])];
    return yaml({
        apiVersion: 1,
        datasources: [
            datasource("Prometheus", GRAFANA_PROMETHEUS_DATASOURCE_UID, "prometheus", input.prometheusUrl, vm === undefined),
            ...(vm === undefined ? [] : [datasource("VictoriaMetrics", GRAFANA_VICTORIA_METRICS_DATASOURCE_UID, "prometheus", vm, true)]),
            ...(vl === undefined ? [] : [datasource("VictoriaLogs", GRAFANA_VICTORIA_LOGS_DATASOURCE_UID, GRAFANA_VICTORIA_LOGS_PLUGIN.id, vl, false)]),
        ],
        ...(dropped.length > 0 && { deleteDatasources: dropped.map((name) => ({ name, orgId: 1 })) }),
    });
}

/** Grafana dashboard provisioning: load every dashboard JSON file under `dashboardsDir`. */
export function renderGrafanaDashboardProvider(input: { readonly dashboardsDir: string }): string {
    return yaml({
        apiVersion: 1,
        providers: [
            {
                name: "picloud",
                orgId: 1,
                folder: "picloud",
                type: "file",
                // A component removed from the stack takes its dashboard with it.
                disableDeletion: false,
                allowUiUpdates: false,
                updateIntervalSeconds: 30,
                options: { path: input.dashboardsDir },
            },
        ],
    });
}

/** Grafana's grid is 24 columns wide; two panels per row keeps graphs readable on a laptop. */
const PANEL_WIDTH = 12;
const PANEL_HEIGHT = 8;

/** A component's Grafana dashboard JSON: panels two per row, each with one Prometheus query. */
export function renderGrafanaDashboard(d: Dashboard): string {
    const datasource = { type: "prometheus", uid: GRAFANA_PROMETHEUS_DATASOURCE_UID };
    const panels = d.panels.map((p, i) => ({
        id: i + 1,
        type: p.kind ?? "timeseries",
        title: p.title,
        datasource,
        gridPos: { x: (i % 2) * PANEL_WIDTH, y: Math.floor(i / 2) * PANEL_HEIGHT, w: PANEL_WIDTH, h: PANEL_HEIGHT },
        targets: [{ refId: "A", datasource, expr: p.expr }],
        fieldConfig: { defaults: p.unit !== undefined ? { unit: p.unit } : {}, overrides: [] },
    }));
    const dashboard = {
        uid: d.uid,
        title: d.title,
        tags: ["picloud"],
        schemaVersion: 39,
        editable: false,
        time: { from: "now-6h", to: "now" },
        refresh: "30s",
        panels,
    };
    return `${JSON.stringify(dashboard, null, 2)}\n`;
}
