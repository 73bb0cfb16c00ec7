import type * as pulumi from "@pulumi/pulumi";
import type { AppConfig } from "../../config/tiers";
import { MonitoringSpec, alertPrefix, targetDownRule } from "../../monitoring/contract";
import type { Workload, WorkloadPort } from "../../runtime/workload";
import { TierArgs, TierComponent, replicaEndpoints } from "../tierComponent";

/** Arguments of {@link AppServers}. */
export interface AppServersArgs extends TierArgs {
    /** The app's options, as under `picloud:tiers.apps.<name>`. */
    readonly app: AppConfig;
    /** Values of the secrets the app's secretEnv names, by config key. */
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
}

/** The Pi port Prometheus scrapes an app's metrics on. */
export function metricsHostPort(app: AppConfig): number {
    return app.metrics.port === app.port ? (app.hostPort ?? app.port) : app.metrics.port;
}

/**
 * The workload of one app: its image with N replicas spread over distinct Pis, env and secret env,
 * healthcheck, limits, and its metrics port published on each replica's Pi for Prometheus.
 */
export function appWorkload(name: string, app: AppConfig, secrets: Readonly<Record<string, pulumi.Input<string>>>): Workload {
    const secretEnv: Record<string, pulumi.Input<string>> = {};
    for (const [variable, key] of Object.entries(app.secretEnv)) {
        const value = secrets[key];
        if (value === undefined) throw new Error(`picloud:tiers.apps.${name}.secretEnv.${variable}: secret picloud:${key} was not provided`);
        secretEnv[variable] = value;
    }
    const ports: WorkloadPort[] =
        app.metrics.port === app.port
            ? [{ container: app.port, host: metricsHostPort(app) }]
            : [{ container: app.port, host: app.hostPort }, { container: app.metrics.port, host: app.metrics.port }];
    return {
        name: `app-${name}`,
        component: "apps",
        configKey: `picloud:tiers.apps.${name}`,
        image: app.image,
        replicas: app.replicas,
        spread: app.spread,
        memoryMb: app.memoryMb,
        cpus: app.cpus,
        ports,
        env: app.env,
        secretEnv,
        healthcheck: app.healthcheck,
        placement: app.placement,
        metrics: app.metrics,
        logLabels: { tier: "apps", app: name },
    };
}

/**
 * How an app is watched: its metrics endpoints, target-down, too few replicas up, memory
 * saturation and restarts from cAdvisor, and a dashboard. (Latency and error rate come from the
 * load balancer's per-backend metrics once it fronts the app.)
 */
export function appMonitoringSpec(name: string, app: AppConfig, args: Pick<TierArgs, "placement" | "pis">): MonitoringSpec {
    const workload = `app-${name}`;
    const job = `apps-${name}`;
    const target = { job, targets: replicaEndpoints(workload, metricsHostPort(app), args), metricsPath: app.metrics.path, labels: { tier: "apps", app: name } };
    const containers = `name=~"${workload}-[0-9]+"`;
    const prefix = alertPrefix(job);
    return {
        component: job,
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: `${prefix}ReplicasDegraded`,
                expr: `count(up{job="${job}"} == 1) < ${app.replicas} or absent(up{job="${job}"} == 1)`,
                for: "5m",
                severity: app.replicas > 1 ? "warning" : "critical",
                summary: `${name}: fewer than ${app.replicas} replicas answer`,
                description: `Some replicas of app ${name} are down; the rest carry the load. Check the containers ${workload}-N on their Pis.`,
            },
            {
                alert: `${prefix}MemorySaturated`,
                expr: `max(container_memory_working_set_bytes{${containers}} / container_spec_memory_limit_bytes{${containers}}) > 0.9`,
                for: "10m",
                severity: "warning",
                summary: `${name} uses more than 90% of its memory limit`,
                description: `Raise picloud:tiers.apps.${name}.memoryMb before the OOM killer restarts it.`,
            },
            {
                alert: `${prefix}Restarting`,
                expr: `changes(container_start_time_seconds{${containers}}[15m]) > 2`,
                severity: "warning",
                summary: `${name} restarted more than twice in 15 minutes`,
                description: "A crash loop: read its logs (journald on the Pi, or Loki).",
            },
        ],
        dashboard: {
            uid: `picloud-${job}`,
            title: `picloud / app ${name}`,
            panels: [
                { title: "Replicas up", expr: `sum(up{job="${job}"})`, kind: "stat" },
                { title: "CPU", expr: `sum by (name) (rate(container_cpu_usage_seconds_total{${containers}}[5m]))` },
                { title: "Memory", expr: `sum by (name) (container_memory_working_set_bytes{${containers}})`, unit: "bytes" },
            ],
        },
        logLabels: { tier: "apps", app: name },
    };
}

/** Application servers: one user app, its replicas spread over the Pis, monitored. */
export class AppServers extends TierComponent {
    /** The workload this component runs. */
    readonly workload: Workload;

    constructor(name: string, args: AppServersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:apps:AppServers", name, opts);
        this.workload = appWorkload(name, args.app, args.secrets);
        this.runWorkloads([this.workload], appMonitoringSpec(name, args.app, args), args);
        this.registerOutputs({});
    }
}
