/**
 * The monitoring contract: what every picloud component that runs something declares about how
 * it is watched. Pure data; the Monitoring tier turns it into Prometheus file_sd targets, rule
 * files and Grafana dashboards on the monitoring Pi, and the policy pack refuses a stack where a
 * component has no such declaration attached.
 */

import { BACKUP_METRIC } from "../renderers/backupTimer";

/** Pulumi type token of the attachment every monitored component carries as a child. */
export const ATTACHMENT_TYPE = "picloud:monitoring:Attachment";

/** A set of endpoints Prometheus scrapes. */
export interface ScrapeTarget {
    /** Prometheus job name, unique in the stack, e.g. "apps-hello". */
    readonly job: string;
    /** `host:port` of each endpoint. */
    readonly targets: readonly string[];
    /** Path of the metrics endpoint; default "/metrics". */
    readonly metricsPath?: string;
    /** Default "http". */
    readonly scheme?: "http" | "https";
    /** Extra labels on every series (component, tier, pi …). */
    readonly labels?: Readonly<Record<string, string>>;
    /**
     * An endpoint whose every scrape is expensive (cAdvisor's thousands of series): scraped at the
     * tier's bulk interval (`picloud:tiers.monitoring.scrapeIntervalSeconds`) instead of
     * {@link LIVENESS}'s, and its target-down alert is a warning after five minutes. Default false.
     */
    readonly bulk?: boolean;
}

/**
 * How fast a dead target is noticed: every target but a bulk one is scraped every 5 s, rules are
 * evaluated every 5 s, and target-down fires once `up` has been 0 for 10 s (at least three failed
 * scrapes in a row, so a container's restart does not page). Alertmanager sends a new critical
 * group after 5 s, and a critical group already open (Prometheus resends a resolved alert for 15
 * minutes, which keeps its group open) at most 5 s after it changes: a dead service notifies within
 * 25 s at worst (measured: bench/detection-time.ts).
 */
export const LIVENESS = { scrapeIntervalSeconds: 5, scrapeTimeoutSeconds: 4, evaluationIntervalSeconds: 5, targetDownFor: "10s", criticalGroupWait: "5s", criticalGroupInterval: "5s" } as const;

/** Alert severities; Alertmanager routes on them. */
export type Severity = "critical" | "warning" | "info";

/** One Prometheus alerting rule. */
export interface AlertRule {
    /** Alert name, CamelCase, e.g. "AppsHelloTargetDown". */
    readonly alert: string;
    /** PromQL expression. */
    readonly expr: string;
    /** How long the condition must hold, e.g. "1m"; default "0s". */
    readonly for?: string;
    readonly severity: Severity;
    /** One-line summary for the notification. */
    readonly summary: string;
    /** What it means and what to do. */
    readonly description: string;
}

/** One Grafana panel. */
export interface DashboardPanel {
    readonly title: string;
    /** PromQL query. */
    readonly expr: string;
    /** Grafana unit, e.g. "percentunit", "s", "bytes"; default none. */
    readonly unit?: string;
    /** Default "timeseries". */
    readonly kind?: "timeseries" | "stat";
}

/** A Grafana dashboard for one component. */
export interface Dashboard {
    /** Stable id, unique in the stack. */
    readonly uid: string;
    readonly title: string;
    readonly panels: readonly DashboardPanel[];
}

/** Everything one component declares about how it is monitored. */
export interface MonitoringSpec {
    /** Name of the component, unique in the stack: file names on the monitoring Pi derive from it. */
    readonly component: string;
    readonly scrapeTargets: readonly ScrapeTarget[];
    /** At least a target-down rule per job, plus the component's own golden signals. */
    readonly alertRules: readonly AlertRule[];
    readonly dashboard: Dashboard;
    /**
     * Labels on the component's logs: its containers carry their workload's into the journal, and
     * those in {@link LOG_STREAM_LABELS} are VictoriaLogs' stream fields.
     */
    readonly logLabels: Readonly<Record<string, string>>;
}

/**
 * The log labels that tell one log stream from another: VictoriaLogs makes each a stream field
 * (beside the Pi and the systemd unit), so a query can pick a tier, a service or an app cheaply.
 * Other labels still reach it, as ordinary fields.
 */
export const LOG_STREAM_LABELS = ["tier", "service", "app"] as const;

/** CamelCase of a kebab/dotted name: "apps-hello" → "AppsHello". */
export function alertPrefix(name: string): string {
    return name
        .split(/[^A-Za-z0-9]+/)
        .filter(Boolean)
        .map((w) => w[0].toUpperCase() + w.slice(1))
        .join("");
}

/**
 * The rule every scrape job gets: one of its targets stopped answering. Critical after
 * {@link LIVENESS}'s `targetDownFor`; a warning after five minutes for a bulk target.
 */
export function targetDownRule(target: ScrapeTarget): AlertRule {
    return {
        alert: `${alertPrefix(target.job)}TargetDown`,
        expr: `up{job="${target.job}"} == 0`,
        for: target.bulk ? "5m" : LIVENESS.targetDownFor,
        severity: target.bulk ? "warning" : "critical",
        summary: `${target.job} target {{ $labels.instance }} is down`,
        description: `Prometheus cannot scrape {{ $labels.instance }} of job ${target.job}: the process, its Pi or the network between them is down.`,
    };
}

/**
 * What is missing from a spec for it to count as monitoring, as messages naming the component;
 * empty when complete. A component must be scraped, have a target-down rule for each job and at
 * least one rule of its own, a dashboard with panels, and log labels.
 */
export function monitoringGaps(spec: MonitoringSpec): string[] {
    const gaps: string[] = [];
    const where = `component "${spec.component}"`;
    if (spec.scrapeTargets.length === 0) gaps.push(`${where} declares no scrape target`);
    for (const t of spec.scrapeTargets) {
        if (t.targets.length === 0) gaps.push(`${where}: job "${t.job}" has no endpoints`);
        if (!spec.alertRules.some((r) => r.expr.includes(`up{job="${t.job}"}`))) gaps.push(`${where}: job "${t.job}" has no target-down alert`);
    }
    if (!spec.alertRules.some((r) => !/^up\{job="[^"]*"\} == 0$/.test(r.expr))) gaps.push(`${where} has no alert of its own beyond target-down (golden signals)`);
    if (spec.dashboard.panels.length === 0) gaps.push(`${where}: dashboard "${spec.dashboard.title}" has no panels`);
    if (Object.keys(spec.logLabels).length === 0) gaps.push(`${where} declares no log labels`);
    const jobs = spec.scrapeTargets.map((t) => t.job);
    const dup = jobs.find((j, i) => jobs.indexOf(j) !== i);
    if (dup) gaps.push(`${where}: job "${dup}" is declared twice`);
    return gaps;
}

/**
 * The rule every backup gets: its last success is older than `maxAgeHours`, or there is none. The
 * backup writes {@link BACKUP_METRIC}`{backup="<name>"}` through node_exporter's textfile folder on
 * its Pi (`renderBackupTimerScript`).
 */
export function backupAgeRule(backup: string, maxAgeHours: number): AlertRule {
    const metric = `${BACKUP_METRIC}{backup="${backup}"}`;
    return {
        alert: `${alertPrefix(backup)}BackupTooOld`,
        // Both halves keep the `backup` label, so the alert is one series whether stale or missing.
        expr: `(time() - max by (backup) (${metric})) > ${maxAgeHours * 3600} or absent(${metric})`,
        for: "15m",
        severity: "warning",
        summary: `${backup}: no successful backup for over ${maxAgeHours} h`,
        description: `The last successful ${backup} backup is older than ${maxAgeHours} hours, or none was ever recorded: check picloud-backup-${backup}.service on its Pi (journalctl -u picloud-backup-${backup}).`,
    };
}
