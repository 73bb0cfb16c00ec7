/**
 * The load balancer's alerts and the golden signals it gives an app, run by `promtool test rules`
 * on input series shaped like what Prometheus scrapes from the dev stack: the VRRP gauge from each
 * load-balancer Pi's node_exporter, HAProxy's per-backend metrics from both HAProxies (the one
 * holding the virtual IP serves the traffic, the standby's counters stay flat).
 */
import { describe, expect, it } from "vitest";
import { exampleStack } from "../../../test/support/exampleStacks";
import { promtoolTestRules } from "../../../test/support/promtool";
import { loadBalancerSchema } from "./config";
import type { AlertRule, MonitoringSpec, ScrapeTarget } from "../../monitoring/contract";
import { appMonitoringSpec } from "../apps/appServers";
import { hostSpec } from "../monitoring/specs";
import { VRRP_MASTER_METRIC } from "./keepalived";
import { VRRP_INSTANCE, loadBalancerPis, loadBalancerSpec } from "./specs";

const dev = exampleStack("dev");
const lb = loadBalancerSchema.parse({ virtualIp: "192.168.10.10", rateLimitPer10s: 200, maxConnections: 2000 });
const lbPis = loadBalancerPis(dev.plan.placement, dev.config.pis);
const hello = dev.config.tiers.apps!.hello;
const lbSpec = loadBalancerSpec(lb, lbPis);
const appSpec = appMonitoringSpec("hello", hello, { placement: dev.plan.placement, pis: dev.config.pis }, true);
const specs = [lbSpec, appSpec];


/** The labels Prometheus gives every series of one target: the file_sd document's plus job and instance. */
function scraped(spec: MonitoringSpec, target: ScrapeTarget, address: string): Record<string, string> {
    return { ...target.labels, job: target.job, component: spec.component, instance: address };
}

function series(metric: string, labels: Record<string, string>): string {
    return `${metric}{${Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(",")}}`;
}

// The two load-balancer Pis as their node_exporters are scraped: A is placement's first (keepalived's preferred), B the other.
const [vrrpA, vrrpB] = lbPis.map((pi) => {
    const host = hostSpec(pi);
    const instance = host.scrapeTargets[0].targets[0];
    return { instance, series: series(VRRP_MASTER_METRIC, { ...scraped(host, host.scrapeTargets[0], instance), vrrp_instance: VRRP_INSTANCE }) };
});

// The two HAProxy exporters: X holds the virtual IP and serves the traffic, Y stands by.
const haproxyTarget = lbSpec.scrapeTargets[0];
const [haproxyX, haproxyY] = haproxyTarget.targets.map((address) => (metric: string, extra: Record<string, string> = {}) =>
    series(metric, { ...scraped(lbSpec, haproxyTarget, address), proxy: "app-hello", ...extra }),
);

/** The labels of a series as written above; an alert without aggregation keeps them. */
function labelsOf(seriesText: string): Record<string, string> {
    return Object.fromEntries([...seriesText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

function rule(spec: MonitoringSpec, alert: string): AlertRule {
    const found = spec.alertRules.find((r) => r.alert === alert);
    if (!found) throw new Error(`expected rule ${alert} in ${spec.component}, got ${spec.alertRules.map((r) => r.alert).join(", ")}`);
    return found;
}

/** One alert promtool must see at eval_time: the series labels it keeps, the rule file's severity and component over them, its annotations expanded. */
function firing(spec: MonitoringSpec, r: AlertRule, labels: Record<string, string> = {}): object {
    const expand = (text: string) => text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? "");
    return {
        exp_labels: { ...labels, severity: r.severity, component: spec.component },
        exp_annotations: { summary: expand(r.summary), description: expand(r.description) },
    };
}

interface Case {
    readonly interval: string;
    readonly input_series: { series: string; values: string }[];
    /** Alert name → eval time → expected alerts. */
    readonly expect: [alertname: string, evalTime: string, alerts: object[]][];
}

function runCases(cases: Case[]): { status: number | null; out: string } {
    const tests = cases.map((c) => ({
        interval: c.interval,
        input_series: c.input_series,
        alert_rule_test: c.expect.map(([alertname, eval_time, exp_alerts]) => ({ alertname, eval_time, exp_alerts })),
    }));
    return promtoolTestRules(specs, tests);
}

function expectPass(cases: Case[]): void {
    const r = runCases(cases);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain("SUCCESS");
}

describe("the rules under test", () => {
    it("come from the dev stack: two load-balancer Pis, the app behind them with the default SLO", () => {
        expect(lbPis).toHaveLength(2);
        expect(new Set([vrrpA.instance, vrrpB.instance]).size).toBe(2);
        expect(haproxyTarget.targets).toHaveLength(2);
        expect(hello.slo).toEqual({ maxErrorRatio: 0.05, maxLatencyMs: 500 });
    });
});

describe("virtual IP alerts", () => {
    const unheld = rule(lbSpec, "LoadBalancerVirtualIpUnheld");
    const twice = rule(lbSpec, "LoadBalancerVirtualIpHeldTwice");
    const moved = rule(lbSpec, "LoadBalancerVirtualIpMoved");

    it("LoadBalancerVirtualIpUnheld fires once neither Pi has held the address for its `for`, not while one does, and when nobody reports", () => {
        expect(unheld.for).toBe("1m");
        expectPass([
            {
                interval: "15s",
                input_series: [
                    { series: vrrpA.series, values: "0x12" },
                    { series: vrrpB.series, values: "0x12" },
                ],
                expect: [
                    [unheld.alert, "30s", []],
                    [unheld.alert, "2m", [firing(lbSpec, unheld)]],
                ],
            },
            {
                interval: "15s",
                input_series: [
                    { series: vrrpA.series, values: "1x12" },
                    { series: vrrpB.series, values: "0x12" },
                ],
                expect: [[unheld.alert, "2m", []]],
            },
            {
                // Neither notify hook has ever written the gauge: absent() keeps the selector's label.
                interval: "15s",
                input_series: [{ series: 'up{job="loadbalancer"}', values: "1x12" }],
                expect: [[unheld.alert, "2m", [firing(lbSpec, unheld, { vrrp_instance: VRRP_INSTANCE })]]],
            },
        ]);
    });

    it("LoadBalancerVirtualIpMoved fires for the new holder when the old one's Pi vanishes, and clears after 10 minutes", () => {
        // At 3m A's Pi dies (Prometheus marks its series stale) and B becomes MASTER.
        const failover: Case["input_series"] = [
            { series: vrrpA.series, values: "1 1 1 stale" },
            { series: vrrpB.series, values: "0 0 0 1x15" },
        ];
        expectPass([
            {
                interval: "1m",
                input_series: failover,
                expect: [
                    [moved.alert, "2m", []],
                    [moved.alert, "5m", [firing(lbSpec, moved, labelsOf(vrrpB.series))]],
                    [moved.alert, "14m", []],
                    [unheld.alert, "5m", []],
                    [twice.alert, "5m", []],
                ],
            },
            {
                // A hands over without dying (its HAProxy failed the check): only B's alert.
                interval: "1m",
                input_series: [
                    { series: vrrpA.series, values: "1 1 1 0x15" },
                    { series: vrrpB.series, values: "0 0 0 1x15" },
                ],
                expect: [[moved.alert, "5m", [firing(lbSpec, moved, labelsOf(vrrpB.series))]]],
            },
            {
                interval: "1m",
                input_series: [
                    { series: vrrpA.series, values: "1x15" },
                    { series: vrrpB.series, values: "0x15" },
                ],
                expect: [[moved.alert, "10m", []]],
            },
        ]);
    });

    it("LoadBalancerVirtualIpHeldTwice fires when both Pis claim the address for its `for`, not when one does", () => {
        expectPass([
            {
                interval: "15s",
                input_series: [
                    { series: vrrpA.series, values: "1x12" },
                    { series: vrrpB.series, values: "1x12" },
                ],
                expect: [
                    [twice.alert, "30s", []],
                    [twice.alert, "2m", [firing(lbSpec, twice)]],
                    [unheld.alert, "2m", []],
                ],
            },
            {
                interval: "15s",
                input_series: [
                    { series: vrrpA.series, values: "0x12" },
                    { series: vrrpB.series, values: "1x12" },
                ],
                expect: [[twice.alert, "2m", []]],
            },
        ]);
    });
});

describe("the app's golden signals, measured at the load balancer", () => {
    const noHealthy = rule(appSpec, "AppsHelloNoHealthyServer");
    const errors = rule(appSpec, "AppsHelloErrorRateHigh");
    const latency = rule(appSpec, "AppsHelloLatencyHigh");
    const saturated = rule(appSpec, "AppsHelloSaturated");

    /** Responses per minute by class on the active HAProxy; the standby's counters stay at 0. */
    function responses(perMinute: { "2xx": number; "4xx": number; "5xx": number }): Case["input_series"] {
        const metric = "haproxy_backend_http_responses_total";
        return Object.entries(perMinute).flatMap(([code, n]) => [
            { series: haproxyX(metric, { code }), values: `0+${n}x20` },
            { series: haproxyY(metric, { code }), values: "0x20" },
        ]);
    }

    it("ErrorRateHigh fires at 10% 5xx after 5 minutes, not at 1%", () => {
        expect(errors.for).toBe("5m");
        expectPass([
            {
                interval: "1m",
                input_series: responses({ "2xx": 85, "4xx": 5, "5xx": 10 }),
                expect: [
                    [errors.alert, "4m", []],
                    [errors.alert, "7m", [firing(appSpec, errors)]],
                ],
            },
            { interval: "1m", input_series: responses({ "2xx": 98, "4xx": 1, "5xx": 1 }), expect: [[errors.alert, "15m", []]] },
        ]);
    });

    it("LatencyHigh fires after 10 minutes above the app's maxLatencyMs, not below it", () => {
        expect(latency.for).toBe("10m");
        const metric = "haproxy_backend_response_time_average_seconds";
        expectPass([
            {
                interval: "1m",
                input_series: [
                    { series: haproxyX(metric), values: "0.8x20" },
                    { series: haproxyY(metric), values: "0x20" },
                ],
                expect: [
                    [latency.alert, "5m", []],
                    [latency.alert, "12m", [firing(appSpec, latency)]],
                ],
            },
            {
                interval: "1m",
                input_series: [
                    { series: haproxyX(metric), values: "0.3x20" },
                    { series: haproxyY(metric), values: "0x20" },
                ],
                expect: [[latency.alert, "15m", []]],
            },
        ]);
    });

    it("NoHealthyServer fires when neither HAProxy has a healthy server for a minute, not while they have", () => {
        const metric = "haproxy_backend_active_servers";
        expectPass([
            {
                interval: "15s",
                input_series: [
                    { series: haproxyX(metric), values: "3 3 0x12" },
                    { series: haproxyY(metric), values: "3 3 0x12" },
                ],
                expect: [
                    [noHealthy.alert, "1m", []],
                    [noHealthy.alert, "2m", [firing(appSpec, noHealthy)]],
                ],
            },
            {
                interval: "15s",
                input_series: [
                    { series: haproxyX(metric), values: "3x12" },
                    { series: haproxyY(metric), values: "3x12" },
                ],
                expect: [[noHealthy.alert, "2m", []]],
            },
        ]);
    });

    it("Saturated fires when requests have queued for 5 minutes, not without a queue", () => {
        const metric = "haproxy_backend_current_queue";
        expectPass([
            {
                interval: "1m",
                input_series: [
                    { series: haproxyX(metric), values: "4x10" },
                    { series: haproxyY(metric), values: "0x10" },
                ],
                expect: [
                    [saturated.alert, "3m", []],
                    [saturated.alert, "7m", [firing(appSpec, saturated)]],
                ],
            },
            {
                interval: "1m",
                input_series: [
                    { series: haproxyX(metric), values: "0x10" },
                    { series: haproxyY(metric), values: "0x10" },
                ],
                expect: [[saturated.alert, "7m", []]],
            },
        ]);
    });

    it("promtool fails a wrong expectation (ErrorRateHigh at 1% 5xx), so the tests above can fail", () => {
        const r = runCases([{ interval: "1m", input_series: responses({ "2xx": 98, "4xx": 1, "5xx": 1 }), expect: [[errors.alert, "15m", [firing(appSpec, errors)]]] }]);
        expect(r.status, r.out).not.toBe(0);
        expect(r.out).toContain(errors.alert);
        expect(r.out).toMatch(/FAILED/);
    });
});
