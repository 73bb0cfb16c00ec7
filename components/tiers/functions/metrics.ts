/**
 * What the faasd gateway tells Prometheus, and the Functions tier's golden-signal alerts on it.
 * Names and labels from openfaas/faas gateway/metrics/metrics.go (`BuildMetricsOptions`) and
 * gateway/handlers/notifiers.go; the port and path from gateway/main.go (`runMetricsServer`:
 * `/metrics` on :8082, no authentication). faasd's compose does not publish that port; picloud's
 * does, on `FaasdInput.metricsPort`.
 */
import type { AlertRule } from "../../monitoring/contract";
import { FAASD_FUNCTION_NAMESPACE, GATEWAY_CONTAINER_PORTS, GATEWAY_METRICS_PATH } from "./renderers";

/** The gateway's metrics endpoint and the series it serves. */
export const GATEWAY_METRICS = {
    /** Port inside the gateway container; on the host it is `FaasdInput.metricsPort`. */
    containerPort: GATEWAY_CONTAINER_PORTS.metrics,
    path: GATEWAY_METRICS_PATH,
    /** Counter of completed invocations through /function/, labels `function_name`, `code` (HTTP status). */
    invocations: "gateway_function_invocation_total",
    /** Counter of invocations started, label `function_name`. */
    invocationsStarted: "gateway_function_invocation_started",
    /** Histogram of invocation duration in seconds (Prometheus default buckets), label `function_name`. */
    duration: "gateway_functions_seconds",
    /** Gauge of each function's replicas as the provider reports them (faasd: 0 or 1), label `function_name`. */
    replicas: "gateway_service_count",
    /** Counter of requests to the gateway's own API (/system/…), labels `method`, `path`, `status`. */
    apiRequests: "http_requests_total",
    /** Histogram of the gateway's own API latency, labels `method`, `path`, `status`. */
    apiDuration: "http_request_duration_seconds",
} as const;

/**
 * The `function_name` label value of a function: the CE gateway appends the function namespace it
 * is configured with (`function_namespace`, passed to its Prometheus notifier in gateway/main.go).
 */
export function gatewayFunctionLabel(name: string): string {
    return `${name}.${FAASD_FUNCTION_NAMESPACE}`;
}

/** Thresholds of the Functions tier's alerts. */
export interface FunctionAlertThresholds {
    /** Share of invocations answered 5xx, per function over 5 minutes, that alerts; default 0.05. */
    readonly errorRatio?: number;
    /** 95th-percentile invocation time, seconds, per function over 5 minutes, that alerts; default 1. */
    readonly p95Seconds?: number;
}

/**
 * Golden-signal alerts on the gateway scraped as `job`: failing invocations (5xx share) and slow
 * invocations (p95 latency) per function. The tier adds the target-down rule for `job` itself.
 */
export function functionAlertRules(job: string, thresholds: FunctionAlertThresholds = {}): AlertRule[] {
    const errorRatio = thresholds.errorRatio ?? 0.05;
    const p95 = thresholds.p95Seconds ?? 1;
    if (!(errorRatio > 0 && errorRatio < 1)) throw new RangeError(`errorRatio must be between 0 and 1, got ${errorRatio}`);
    if (!(p95 > 0)) throw new RangeError(`p95Seconds must be positive, got ${p95}`);
    if (!/^[a-zA-Z_][a-zA-Z0-9_-]*$/.test(job)) throw new Error(`job must be a Prometheus job name, got "${job}"`);
    const m = GATEWAY_METRICS;
    const sel = (extra = "") => `{job="${job}"${extra}}`;
    return [
        {
            alert: "FunctionErrorRatioHigh",
            expr:
                `sum by (function_name) (rate(${m.invocations}${sel(',code=~"5.."')}[5m]))\n` +
                `  / sum by (function_name) (rate(${m.invocations}${sel()}[5m])) > ${errorRatio}`,
            for: "10m",
            severity: "warning",
            summary: `Function {{ $labels.function_name }} fails more than ${errorRatio * 100}% of its invocations`,
            description:
                "The gateway answers 5xx for this function: it crashes, times out (upstream_timeout 65s) or was killed at its memory limit. " +
                "Its logs: journalctl -t openfaas-fn:<name> on the faasd Pi (faasd pkg/logs/requestor.go); check its memoryMb.",
        },
        {
            alert: "FunctionLatencyHigh",
            expr: `histogram_quantile(0.95, sum by (function_name, le) (rate(${m.duration}_bucket${sel()}[5m]))) > ${p95}`,
            for: "10m",
            severity: "warning",
            summary: `Function {{ $labels.function_name }} p95 latency is above ${p95}s`,
            description: "Invocations of this function are slow; it may be starved of CPU or memory on the faasd Pi, or calling something slow.",
        },
    ];
}

