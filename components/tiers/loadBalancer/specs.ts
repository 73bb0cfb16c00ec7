/**
 * What the LoadBalancer tier runs and how it is watched, as pure functions of the stack config
 * and the placement plan: the HAProxy workload, its haproxy.cfg input, each Pi's keepalived.conf,
 * and the tier's monitoring.
 */
import { routePrefix } from "../../config/fields";
import type { PiConfig } from "../../config/schema";
import { LoadBalancerConfig, loadBalancerTopology } from "./config";
import { AlertRule, MonitoringSpec, ScrapeTarget, targetDownRule } from "../../monitoring/contract";
import type { PlacementPlan } from "../../placement/place";
import type { Workload } from "../../runtime/workload";
import { KEEPALIVED_PATHS, VRRP_MASTER_METRIC } from "./keepalived";
import {
    HAPROXY_HEALTH_PATH,
    HAPROXY_HTTP_FRONTEND,
    HAPROXY_METRICS_PATH,
    HaproxyBackend,
    HaproxyConfigInput,
    HaproxyRoute,
    HaproxyTcpService,
    KeepalivedConfigInput,
} from "./renderers";

/**
 * HAProxy 3.2 (LTS), the Docker Official Image's multi-architecture index. Its process runs as
 * uid/gid 99 (`haproxy`); picloud starts it as root to bind :80/:443 on the host network and has
 * it drop to 99 itself.
 */
export const HAPROXY_IMAGE = "haproxy:3.2.21-alpine3.24@sha256:66e25cc9a8332635f4e897f7f4b1e5622c25f09f0ee23cddc6ce9bdb3a24772a";

/** The image's unprivileged user and group. */
export const HAPROXY_RUN_AS = { uid: 99, gid: 99 } as const;

/** The HAProxy workload's name; replicas are `haproxy-<n>`. */
export const HAPROXY_WORKLOAD = "haproxy";

/** The Prometheus job of the HAProxy exporters; apps' golden signals select it. */
export const LOAD_BALANCER_JOB = "loadbalancer";

/** The VRRP instance name, also the `vrrp_instance` label of {@link VRRP_MASTER_METRIC}. */
export const VRRP_INSTANCE = "picloud-edge";

/** Folders on each load-balancer Pi, and where the HAProxy container sees them. */
export const LOAD_BALANCER_DIRS = {
    config: "/srv/picloud/loadbalancer/haproxy",
    certs: "/srv/picloud/loadbalancer/haproxy/certs",
    inContainer: "/usr/local/etc/haproxy",
} as const;

/** The certificate file HAProxy serves, on the Pi and in the container. */
export const CERTIFICATE_FILE = "edge.pem";

/** A tier's entry in the load balancer: one backend and the routes that lead to it. */
export interface EdgeBackend {
    readonly backend: HaproxyBackend;
    /** Empty for the catch-all backend, which takes every request no route matches. */
    readonly routes: readonly HaproxyRoute[];
}

/**
 * Routes in the order HAProxy tries them, whatever order the apps are declared in: those naming a
 * host before those that do not (a site's own routes win), and within each, the longest path
 * prefix first, so `/api/v2` is reached before `/api`.
 */
export function byPrecedence(routes: readonly HaproxyRoute[]): HaproxyRoute[] {
    const depth = (r: HaproxyRoute) => routePrefix(r.pathPrefix)?.length ?? 0;
    return [...routes].sort((a, b) => Number(b.host !== undefined) - Number(a.host !== undefined) || depth(b) - depth(a));
}

/** A port a tier asks the load balancer to serve a TCP service on, and the config key that chose it. */
export interface EdgePort {
    readonly port: number;
    readonly configKey: string;
}

/** The HAProxy workload: host networking (clients' real addresses, the virtual IP), one replica per load-balancer Pi, with the TCP services' ports too. */
export function loadBalancerWorkload(lb: LoadBalancerConfig, pis: readonly PiConfig[], tcpPorts: readonly EdgePort[] = []): Workload {
    const topology = loadBalancerTopology(lb, pis);
    const configKey = "picloud:tiers.loadBalancer";
    return {
        name: HAPROXY_WORKLOAD,
        component: "loadbalancer",
        configKey,
        image: HAPROXY_IMAGE,
        replicas: topology.replicas,
        pinnedTo: topology.pinnedTo,
        spread: true,
        placement: topology.constraints,
        memoryMb: lb.memoryMb,
        cpus: lb.cpus,
        hostNetwork: true,
        user: "root",
        ports: [
            { container: 80, host: 80 },
            ...(lb.tls ? [{ container: 443, host: 443, configKey: `${configKey}.tls` }] : []),
            { container: lb.statsPort, host: lb.statsPort, configKey: `${configKey}.statsPort` },
            ...tcpPorts.map((p) => ({ container: p.port, host: p.port, configKey: p.configKey })),
        ],
        volumes: [{ hostPath: LOAD_BALANCER_DIRS.config, containerPath: LOAD_BALANCER_DIRS.inContainer, readOnly: true }],
        healthcheck: {
            command: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${lb.statsPort}${HAPROXY_HEALTH_PATH}`],
            intervalSeconds: 5,
            timeoutSeconds: 2,
            retries: 3,
            startPeriodSeconds: 5,
        },
        metrics: { port: lb.statsPort, path: HAPROXY_METRICS_PATH },
        logLabels: { tier: "loadbalancer" },
    };
}

/**
 * haproxy.cfg's input: the catch-all backend first (HAProxy's default), then the others; routes
 * in the order the tiers gave them. Throws when no tier gave a backend.
 */
export function haproxyInput(lb: LoadBalancerConfig, backends: readonly EdgeBackend[], tcpServices: readonly HaproxyTcpService[] = []): HaproxyConfigInput {
    if (backends.length === 0) throw new Error("picloud:tiers.loadBalancer: expected at least one app or the functions tier behind the load balancer, got none");
    const ordered = [...backends.filter((b) => b.routes.length === 0), ...backends.filter((b) => b.routes.length > 0)];
    return {
        backends: ordered.map((b) => b.backend),
        routes: byPrecedence(ordered.flatMap((b) => b.routes)),
        tcpServices,
        tls: lb.tls ? { certificatePath: `${LOAD_BALANCER_DIRS.inContainer}/certs/${CERTIFICATE_FILE}` } : undefined,
        rateLimit: { requestsPer10s: lb.rateLimitPer10s },
        statsPort: lb.statsPort,
        maxConnections: lb.maxConnections,
        runAs: HAPROXY_RUN_AS,
    };
}

/** The load-balancer Pis, in replica order. */
export function loadBalancerPis(plan: PlacementPlan, pis: readonly PiConfig[]): PiConfig[] {
    const byName = new Map(pis.map((p) => [p.name, p]));
    return (plan.assignments.get(HAPROXY_WORKLOAD) ?? []).map((name) => byName.get(name)!);
}

/** Where clients connect: the virtual IP when the two load-balancer Pis share one, else the Pis' own addresses. */
export function loadBalancerAddresses(lb: LoadBalancerConfig, lbPiAddresses: readonly string[]): string[] {
    return lb.virtualIp !== undefined && lbPiAddresses.length === 2 ? [lb.virtualIp] : [...lbPiAddresses];
}

/**
 * keepalived.conf's input for each load-balancer Pi, or none without a virtual IP. The first Pi
 * is preferred (priority 150 over 100) so the address has a predictable home.
 */
export function keepalivedInputs(lb: LoadBalancerConfig, lbPis: readonly PiConfig[], subnet: string | undefined): Map<string, KeepalivedConfigInput> {
    const inputs = new Map<string, KeepalivedConfigInput>();
    if (lb.virtualIp === undefined) return inputs;
    if (subnet === undefined) throw new Error("picloud:tiers.loadBalancer.virtualIp: expected picloud:network.subnet to be set too");
    const prefixLength = Number(subnet.split("/")[1]);
    lbPis.forEach((pi, i) => {
        inputs.set(pi.name, {
            instance: VRRP_INSTANCE,
            interface: lb.interface,
            virtualIp: lb.virtualIp!,
            prefixLength,
            routerId: lb.virtualRouterId,
            priority: i === 0 ? 150 : 100,
            peers: lbPis.filter((p) => p !== pi).map((p) => p.address),
            self: pi.address,
            checkScript: KEEPALIVED_PATHS.checkScript,
            notifyScript: KEEPALIVED_PATHS.notifyScript,
        });
    });
    return inputs;
}

/** The rules that watch who holds the virtual IP, from the notify hook's gauge on each Pi. */
export function vrrpRules(lb: LoadBalancerConfig): AlertRule[] {
    if (lb.virtualIp === undefined) return [];
    const series = `${VRRP_MASTER_METRIC}{vrrp_instance="${VRRP_INSTANCE}"}`;
    return [
        {
            alert: "LoadBalancerVirtualIpUnheld",
            expr: `sum(${series}) < 1 or absent(${series})`,
            for: "1m",
            severity: "critical",
            summary: `No load-balancer Pi holds the virtual IP ${lb.virtualIp}`,
            description: "Clients cannot reach the cloud. Check keepalived (journalctl -u keepalived) and HAProxy's health on both load-balancer Pis.",
        },
        {
            alert: "LoadBalancerVirtualIpHeldTwice",
            expr: `sum(${series}) > 1`,
            for: "1m",
            severity: "critical",
            summary: `Both load-balancer Pis claim the virtual IP ${lb.virtualIp}`,
            description: "Split brain: the Pis cannot hear each other's VRRP adverts (a firewall dropping protocol 112, a broken link, or a stale state file from a keepalived that died).",
        },
        {
            alert: "LoadBalancerVirtualIpMoved",
            expr: `(${series} == 1) and (changes(${series}[10m]) > 0)`,
            severity: "warning",
            summary: `The virtual IP ${lb.virtualIp} moved to {{ $labels.instance }}`,
            description: "The Pi that held the virtual IP was lost or its HAProxy failed its check; the other load-balancer Pi took over and now runs without a standby. Check the previous holder. (Also fires once when the load balancer is first deployed.)",
        },
    ];
}

/** How the load balancer is watched: its exporters, connection saturation, rate limiting, and the virtual IP. */
export function loadBalancerSpec(lb: LoadBalancerConfig, lbPis: readonly PiConfig[]): MonitoringSpec {
    const target: ScrapeTarget = {
        job: LOAD_BALANCER_JOB,
        targets: lbPis.map((p) => `${p.address}:${lb.statsPort}`),
        metricsPath: HAPROXY_METRICS_PATH,
        labels: { tier: "loadbalancer" },
    };
    const job = `job="${LOAD_BALANCER_JOB}"`;
    const front = `${job},proxy="${HAPROXY_HTTP_FRONTEND}"`;
    return {
        component: "loadbalancer",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "LoadBalancerConnectionsSaturated",
                expr: `max by (instance) (haproxy_process_current_connections{${job}} / haproxy_process_max_connections{${job}}) > 0.8`,
                for: "5m",
                severity: "warning",
                summary: "HAProxy on {{ $labels.instance }} uses more than 80% of its connection limit",
                description: "New connections will wait in the kernel. Raise picloud:tiers.loadBalancer.maxConnections (and memoryMb), or look for a client holding connections open.",
            },
            {
                alert: "LoadBalancerRateLimiting",
                expr: `sum(rate(haproxy_frontend_requests_denied_total{${front}}[5m])) > 1`,
                for: "10m",
                severity: "info",
                summary: "The load balancer is refusing requests over the per-client rate limit",
                description: `Some client sends more than ${lb.rateLimitPer10s} requests per 10 s and gets 429s. Abuse, or a limit too low for a real client: see picloud:tiers.loadBalancer.rateLimitPer10s.`,
            },
            ...vrrpRules(lb),
        ],
        dashboard: {
            uid: "picloud-loadbalancer",
            title: "picloud / load balancer",
            panels: [
                { title: "Requests per second by backend", expr: `sum by (proxy) (rate(haproxy_backend_http_requests_total{${job}}[5m]))` },
                {
                    title: "5xx share by backend",
                    expr: `sum by (proxy) (rate(haproxy_backend_http_responses_total{${job},code="5xx"}[5m])) / sum by (proxy) (rate(haproxy_backend_http_responses_total{${job}}[5m]))`,
                    unit: "percentunit",
                },
                { title: "Average response time by backend", expr: `max by (proxy) (haproxy_backend_response_time_average_seconds{${job}})`, unit: "s" },
                { title: "Healthy servers by backend", expr: `min by (proxy) (haproxy_backend_active_servers{${job}})` },
                { title: "Requests refused by the rate limit", expr: `sum(rate(haproxy_frontend_requests_denied_total{${front}}[5m]))` },
                ...(lb.virtualIp ? [{ title: "Virtual IP holder", expr: `${VRRP_MASTER_METRIC}{vrrp_instance="${VRRP_INSTANCE}"}`, kind: "stat" as const }] : []),
            ],
        },
        logLabels: { tier: "loadbalancer" },
    };
}

/**
 * Golden signals of one backend as the load balancer sees it: no healthy server, error rate,
 * latency and saturation (requests queueing in HAProxy). The owning tier adds them to its own
 * monitoring, so the alerts carry its name.
 */
export function backendGoldenSignals(args: {
    /** The backend's name in haproxy.cfg (HAProxy's `proxy` label). */
    readonly backend: string;
    /** Alert name prefix, e.g. "AppsHello". */
    readonly prefix: string;
    /** Who the backend is, for the summaries, e.g. "app hello". */
    readonly what: string;
    readonly maxErrorRatio: number;
    readonly maxLatencyMs: number;
    /** The config key holding the thresholds, for the descriptions. */
    readonly configKey: string;
}): AlertRule[] {
    const sel = `job="${LOAD_BALANCER_JOB}",proxy="${args.backend}"`;
    return [
        {
            alert: `${args.prefix}NoHealthyServer`,
            // min: whichever load balancer holds the virtual IP, clients see what it sees.
            expr: `min(haproxy_backend_active_servers{${sel}}) == 0`,
            for: "1m",
            severity: "critical",
            summary: `${args.what}: a load balancer has no healthy server`,
            description: "Every replica fails its health check; clients get 503s. Check the replicas and their health path.",
        },
        {
            alert: `${args.prefix}ErrorRateHigh`,
            expr: `sum(rate(haproxy_backend_http_responses_total{${sel},code="5xx"}[5m])) / sum(rate(haproxy_backend_http_responses_total{${sel}}[5m])) > ${args.maxErrorRatio}`,
            for: "5m",
            severity: "critical",
            summary: `${args.what}: more than ${round(args.maxErrorRatio * 100)}% of responses are 5xx`,
            description: `Measured at the load balancer over 5 minutes. Threshold: ${args.configKey}.maxErrorRatio.`,
        },
        {
            alert: `${args.prefix}LatencyHigh`,
            expr: `max(haproxy_backend_response_time_average_seconds{${sel}}) > ${args.maxLatencyMs / 1000}`,
            for: "10m",
            severity: "warning",
            summary: `${args.what}: responses take more than ${args.maxLatencyMs} ms on average`,
            description: `HAProxy's average over its last 1024 responses. Threshold: ${args.configKey}.maxLatencyMs.`,
        },
        {
            alert: `${args.prefix}Saturated`,
            expr: `sum(haproxy_backend_current_queue{${sel}}) > 0`,
            for: "5m",
            severity: "warning",
            summary: `${args.what}: requests are queueing at the load balancer`,
            description: "Every replica is at its concurrent request limit. Add replicas or give them more CPU.",
        },
    ];
}

function round(n: number): number {
    return Math.round(n * 100) / 100;
}
