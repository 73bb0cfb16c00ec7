/**
 * What the Functions tier asks of placement, the load balancer and monitoring, as pure functions
 * of its options: faasd's footprint on its Pi, the gateway as a backend, and how it is watched.
 */
import type { PiConfig } from "../../config/schema";
import { FUNCTION_ROUTE_PREFIXES, FunctionsConfig } from "./config";
import { MonitoringSpec, ScrapeTarget, targetDownRule } from "../../monitoring/contract";
import type { WorkloadDemand } from "../../placement/place";
import type { PlacementPlan } from "../../placement/place";
import { EdgeBackend, backendGoldenSignals } from "../loadBalancer/specs";
import type { FunctionSpec } from "./functions";
import { GATEWAY_METRICS, functionAlertRules } from "./metrics";
import type { FaasdInput } from "./renderers";

/** faasd's name in placement (it runs on containerd beside Docker, installed over SSH). */
export const FAASD_DEMAND = "faasd";

/** The gateway's backend name in haproxy.cfg. */
export const FUNCTIONS_BACKEND = "functions";

/** The Prometheus job of the gateway's metrics. */
export const FUNCTIONS_JOB = "functions-gateway";

const KEY = "picloud:tiers.functions";

/**
 * faasd's footprint for placement: its own services plus every function's limits, on one Pi (the
 * named one, else one labelled role=functions, else the roomiest), with its three host ports.
 */
export function faasdDemand(options: FunctionsConfig, pis: readonly PiConfig[]): WorkloadDemand {
    const fns = Object.values(options.functions);
    const labelled = pis.some((p) => p.labels.role === "functions");
    return {
        name: FAASD_DEMAND,
        component: "functions",
        configKey: KEY,
        replicas: 1,
        spread: false,
        memoryMb: options.memoryMb + fns.reduce((sum, f) => sum + f.memoryMb, 0),
        cpus: Math.round((0.5 + fns.reduce((sum, f) => sum + f.cpus, 0)) * 1000) / 1000,
        hostPorts: [options.gatewayPort, options.providerPort, options.metricsPort],
        portKeys: [`${KEY}.gatewayPort`, `${KEY}.providerPort`, `${KEY}.metricsPort`],
        constraints: options.pi === undefined && labelled ? { labels: { role: "functions" } } : {},
        pinnedTo: options.pi === undefined ? undefined : [options.pi],
    };
}

/** The Pi placement chose for faasd. */
export function faasdPi(plan: PlacementPlan, pis: readonly PiConfig[]): PiConfig {
    const name = plan.assignments.get(FAASD_DEMAND)?.[0];
    const pi = pis.find((p) => p.name === name);
    if (!pi) throw new Error(`${KEY}: faasd has no placement; add faasdDemand(...) to the demands given to placeReplicas`);
    return pi;
}

/** faasd's install input from the tier's options. */
export function faasdInput(options: FunctionsConfig): FaasdInput {
    return { gatewayPort: options.gatewayPort, metricsPort: options.metricsPort, providerPort: options.providerPort, nameservers: options.nameservers };
}

/** The functions as faasd's API deploys them. */
export function functionSpecs(options: FunctionsConfig): FunctionSpec[] {
    return Object.entries(options.functions).map(([name, f]) => ({ name, image: f.image, env: f.env, memoryMb: f.memoryMb, cpus: f.cpus }));
}

/** The gateway as a load-balancer backend: `/function/…` and `/async-function/…` go to it. */
export function functionsBackend(options: FunctionsConfig, pi: PiConfig): EdgeBackend {
    return {
        backend: { name: FUNCTIONS_BACKEND, servers: [{ name: "gateway", address: `${pi.address}:${options.gatewayPort}` }], healthPath: "/healthz" },
        routes: FUNCTION_ROUTE_PREFIXES.map((pathPrefix) => ({ backend: FUNCTIONS_BACKEND, pathPrefix })),
    };
}

/**
 * How the tier is watched: the gateway's metrics, target down, failing invocations and latency per
 * function, and (behind the load balancer) the gateway's golden signals as HAProxy sees them.
 */
export function functionsSpec(options: FunctionsConfig, pi: PiConfig, loadBalanced: boolean): MonitoringSpec {
    const target: ScrapeTarget = { job: FUNCTIONS_JOB, targets: [`${pi.address}:${options.metricsPort}`], metricsPath: GATEWAY_METRICS.path, labels: { tier: "functions", pi: pi.name } };
    const sel = `job="${FUNCTIONS_JOB}"`;
    return {
        component: "functions",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            ...functionAlertRules(FUNCTIONS_JOB, { errorRatio: options.slo.maxErrorRatio, p95Seconds: options.slo.maxLatencyMs / 1000 }),
            ...(loadBalanced
                ? backendGoldenSignals({
                      backend: FUNCTIONS_BACKEND,
                      prefix: "FunctionsGateway",
                      what: "the functions gateway",
                      maxErrorRatio: options.slo.maxErrorRatio,
                      maxLatencyMs: options.slo.maxLatencyMs,
                      configKey: `${KEY}.slo`,
                  })
                : []),
        ],
        dashboard: {
            uid: "picloud-functions",
            title: "picloud / functions",
            panels: [
                { title: "Invocations per second by function", expr: `sum by (function_name) (rate(${GATEWAY_METRICS.invocations}{${sel}}[5m]))` },
                {
                    title: "5xx share by function",
                    expr: `sum by (function_name) (rate(${GATEWAY_METRICS.invocations}{${sel},code=~"5.."}[5m])) / sum by (function_name) (rate(${GATEWAY_METRICS.invocations}{${sel}}[5m]))`,
                    unit: "percentunit",
                },
                { title: "p95 latency by function", expr: `histogram_quantile(0.95, sum by (function_name, le) (rate(${GATEWAY_METRICS.duration}_bucket{${sel}}[5m])))`, unit: "s" },
                { title: "Replicas by function", expr: `${GATEWAY_METRICS.replicas}{${sel}}` },
            ],
        },
        logLabels: { tier: "functions" },
    };
}
