import type * as pulumi from "@pulumi/pulumi";
import type { PiConfig } from "../../config/schema";
import type { PlacementConstraints } from "../../config/workload";
import type { AppConfig } from "./config";
import { MonitoringSpec, alertPrefix, targetDownRule } from "../../monitoring/contract";
import type { ClientEnvironment, Workload, WorkloadPort } from "../../runtime/workload";
import { componentRenames, renamedOptions } from "../../host/renames";
import { EdgeBackend, backendGoldenSignals } from "../loadBalancer/specs";
import { TierArgs, TierComponent, replicaEndpoints } from "../tierComponent";

/** Arguments of {@link AppServers}. */
export interface AppServersArgs extends TierArgs {
    /** The app's key under `picloud:tiers.apps`; default the component's name. */
    readonly appName?: string;
    /** The app's options, as under `picloud:tiers.apps.<name>`. */
    readonly app: AppConfig;
    /** Values of the secrets the app's secretEnv names, by config key. */
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
    /** What the tiers it uses give it (its blob key, its database), as environment: made by those tiers. */
    readonly clients?: readonly ClientEnvironment[];
    /** True when a LoadBalancer fronts the app: its golden signals then come from HAProxy's metrics of {@link AppServers.edge}. */
    readonly loadBalanced?: boolean;
}

/** The Pi port Prometheus scrapes an app's metrics on. */
export function metricsHostPort(app: AppConfig): number {
    return app.metrics.port === app.port ? (app.hostPort ?? app.port) : app.metrics.port;
}

/**
 * The workload of one app: its image with N replicas spread over distinct Pis, env and secret env,
 * healthcheck, limits, and its metrics port published on each replica's Pi for Prometheus.
 */
export function appWorkload(name: string, app: AppConfig, secrets: Readonly<Record<string, pulumi.Input<string>>>, pis: readonly Pick<PiConfig, "labels">[], clients: readonly ClientEnvironment[] = []): Workload {
    const secretEnv: Record<string, pulumi.Input<string>> = Object.assign({}, ...clients.map((c) => c.secretEnv));
    for (const [variable, key] of Object.entries(app.secretEnv)) {
        const value = secrets[key];
        if (value === undefined) throw new Error(`picloud:tiers.apps.${name}.secretEnv.${variable}: secret picloud:${key} was not provided`);
        secretEnv[variable] = value;
    }
    const key = `picloud:tiers.apps.${name}`;
    const ports: WorkloadPort[] =
        app.metrics.port === app.port
            ? [{ container: app.port, host: metricsHostPort(app), configKey: `${key}.${app.hostPort === undefined ? "metrics.port" : "hostPort"}` }]
            : [
                  { container: app.port, host: app.hostPort, configKey: `${key}.hostPort` },
                  { container: app.metrics.port, host: app.metrics.port, configKey: `${key}.metrics.port` },
              ];
    return {
        name: appWorkloadName(name),
        component: "apps",
        configKey: key,
        image: app.image,
        replicas: app.replicas,
        spread: app.spread,
        memoryMb: app.memoryMb,
        cpus: app.cpus,
        ports,
        env: Object.assign({}, ...clients.map((c) => c.env), app.env),
        secretEnv,
        healthcheck: app.healthcheck,
        placement: appPlacement(app, pis),
        metrics: app.metrics,
        logLabels: { tier: "apps", app: name },
    };
}

/**
 * Where an app may run: its own `placement` when it has one; otherwise the Pis labelled
 * `role: app` when the stack has any (as `role: edge` draws the load balancer), else any Pi.
 */
export function appPlacement(app: AppConfig, pis: readonly Pick<PiConfig, "labels">[]): PlacementConstraints {
    const own = app.placement;
    if (own.labels !== undefined || own.models !== undefined || own.storage !== undefined) return own;
    return pis.some((p) => p.labels.role === "app") ? { labels: { role: "app" } } : own;
}

/** The workload (and load-balancer backend) name of an app. */
export function appWorkloadName(name: string): string {
    return `app-${name}`;
}

/**
 * The app's entry in the load balancer: a backend of its replicas at `<Pi address>:<hostPort>`,
 * health-checked on its healthPath, and its route (none for the catch-all app).
 */
export function appBackend(name: string, app: AppConfig, args: Pick<TierArgs, "placement" | "pis">): EdgeBackend {
    const workload = appWorkloadName(name);
    if (app.hostPort === undefined) throw new Error(`picloud:tiers.apps.${name}.hostPort: expected a host port for the load balancer to reach the replicas through, got nothing`);
    const servers = replicaEndpoints(workload, app.hostPort, args).map((address, replica) => ({ name: `${workload}-${replica}`, address }));
    return {
        backend: { name: workload, servers, healthPath: app.healthPath, serverMaxConnections: app.maxConcurrentRequests },
        routes: app.route ? [{ backend: workload, host: app.route.host, pathPrefix: app.route.pathPrefix }] : [],
    };
}

/** The `component` of an app's monitoring spec (its file names on the monitoring Pi, its job). */
export function appMonitoringComponent(name: string): string {
    return `apps-${name}`;
}

/**
 * How an app is watched: its metrics endpoints, target-down, too few replicas up, memory
 * saturation and restarts from cAdvisor, and a dashboard; behind a load balancer also its golden
 * signals from HAProxy's per-backend metrics: no healthy replica, error rate, latency, queueing.
 */
export function appMonitoringSpec(name: string, app: AppConfig, args: Pick<TierArgs, "placement" | "pis">, loadBalanced = false): MonitoringSpec {
    const workload = appWorkloadName(name);
    const job = appMonitoringComponent(name);
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
                description: `A crash loop: read its logs, in VictoriaLogs when the stack has it (PICLOUD_LOG_APP:=${name}), else with journalctl CONTAINER_NAME=<replica> on its Pi.`,
            },
            ...(loadBalanced
                ? backendGoldenSignals({
                      backend: workload,
                      prefix,
                      what: `app ${name}`,
                      maxErrorRatio: app.slo.maxErrorRatio,
                      maxLatencyMs: app.slo.maxLatencyMs,
                      configKey: `picloud:tiers.apps.${name}.slo`,
                  })
                : []),
        ],
        dashboard: {
            uid: `picloud-${job}`,
            title: `picloud / app ${name}`,
            panels: [
                { title: "Replicas up", expr: `sum(up{job="${job}"})`, kind: "stat" },
                { title: "CPU", expr: `sum by (name) (rate(container_cpu_usage_seconds_total{${containers}}[5m]))` },
                { title: "Memory", expr: `sum by (name) (container_memory_working_set_bytes{${containers}})`, unit: "bytes" },
                ...(loadBalanced
                    ? [
                          { title: "Requests per second", expr: `sum(rate(haproxy_backend_http_requests_total{proxy="${workload}"}[5m]))` },
                          { title: "Average response time", expr: `max(haproxy_backend_response_time_average_seconds{proxy="${workload}"})`, unit: "s" },
                      ]
                    : []),
            ],
        },
        logLabels: { tier: "apps", app: name },
    };
}

/**
 * Application servers: one user app, its replicas spread over the Pis and updated one at a time,
 * each only once the one before is healthy; monitored, and registered in the load balancer
 * through {@link edge}.
 */
export class AppServers extends TierComponent {
    /** The workload this component runs. */
    readonly workload: Workload;
    /** The app's backend and route for a LoadBalancer; undefined when it publishes no hostPort. */
    readonly edge?: EdgeBackend;

    constructor(resourceName: string, args: AppServersArgs, opts?: pulumi.ComponentResourceOptions) {
        const name = args.appName ?? resourceName;
        const was = args.app.renamedFrom;
        // Renamed (`renamedFrom`): the component, its containers and its monitoring carry over,
        // so each replica is replaced in place (its old container stopped first) rather than started beside it.
        const renames = was === undefined ? [] : [...componentRenames(resourceName, name, was), { from: appWorkloadName(was), to: appWorkloadName(name) }];
        super("picloud:apps:AppServers", resourceName, renamedOptions(renames, opts));
        this.workload = appWorkload(name, args.app, args.secrets, args.pis, args.clients);
        this.edge = args.app.hostPort === undefined ? undefined : appBackend(name, args.app, args);
        this.runWorkloads([this.workload], args);
        this.attach(appMonitoringSpec(name, args.app, args, args.loadBalanced), args.monitoring, was === undefined ? undefined : appMonitoringComponent(was));
        this.registerOutputs({});
    }
}
