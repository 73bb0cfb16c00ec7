/**
 * The long-term metrics store for real: VictoriaMetrics single-node built from its Go module at the
 * image's version (test/support/build-victoria.sh), started with exactly the flags picloud puts in
 * its container's command, fed by Debian's Prometheus on the prometheus.yml, file_sd document and
 * rule file picloud renders (remote_write to it, scraping it), and by the pushes apps make (Influx
 * line protocol, Prometheus text). On loopback, on free ports; VictoriaMetrics listens on every
 * interface as in its container, but only 127.0.0.1 is ever sent anything.
 *
 * VictoriaMetrics hides samples newer than `-search.latencyOffset` (30 s) from an instant query
 * unless it says `nocache=1` (app/vmselect/prometheus QueryHandler; docs/victoriametrics/keyConcepts
 * "Query latency"; `latency_offset=0` is refused), and keeps fresh samples in memory buffers for a
 * few seconds before they are searchable (about 7 s on this machine): so every query to it here is
 * at `time=` now with `nocache=1`, polled.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderFileSd, renderPrometheusConfig, renderRuleFile } from "../components/monitoring/renderers";
import { type MonitoringConfig, type VictoriaMetricsConfig, monitoringSchema } from "../components/tiers/monitoring/config";
import { prometheusConfigInput } from "../components/tiers/monitoring/specs";
import { VICTORIA_METRICS_JOB, VICTORIA_METRICS_PATHS, victoriaMetricsFlags, victoriaMetricsSpec } from "../components/tiers/monitoring/victoriaMetrics";
import { NetnsLab, sleep } from "./support/netnsLab";
import { exposes, metricSelectors } from "./support/promql";
import { validator } from "./support/validators";

const CLOUD = "victoria-test";
/** Every wait's bound: generous, the machine is loaded. */
const BOUND_MS = 60_000;

// No namespaces: the lab is used for its work folder and for killing what it started, also on exit.
const lab = new NetnsLab("picloud-victoria");
const children = new Map<string, ChildProcess>();

let monitoring: MonitoringConfig;
let options: VictoriaMetricsConfig;
let vmUrl: string;
let promUrl: string;

/** `n` ports nothing listens on, held open together so they differ. */
async function freePorts(n: number): Promise<number[]> {
    const servers = await Promise.all(
        Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
            const s = createServer();
            s.once("error", reject);
            s.listen(0, () => resolve(s));
        })),
    );
    const ports = servers.map((s) => (s.address() as AddressInfo).port);
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    return ports;
}

/** A long-running program, its output in `<name>.log` in the lab's folder, killed with the lab. */
function start(name: string, args: string[]): void {
    const fd = openSync(path.join(lab.work, `${name}.log`), "a");
    const child = spawn(args[0], args.slice(1), { stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    children.set(name, lab.track(child));
}

const tail = (name: string, lines = 15) => {
    try {
        return `${name}.log:\n${readFileSync(path.join(lab.work, `${name}.log`), "utf8").trim().split("\n").slice(-lines).join("\n")}`;
    } catch {
        return `${name}.log: (none)`;
    }
};
const logs = () => [...children.keys()].map((n) => tail(n)).join("\n");

/**
 * Polls `probe` every 500 ms until it returns true; it may return (or throw) what it saw instead.
 * Fails at once, with the logs, when a started program has exited.
 */
async function eventually(what: string, probe: () => Promise<true | string>, timeoutMs = BOUND_MS): Promise<number> {
    const startedAt = Date.now();
    let last = "nothing yet";
    while (Date.now() - startedAt < timeoutMs) {
        for (const [name, child] of children) {
            if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}\n${tail(name, 40)}`);
        }
        try {
            const r = await probe();
            if (r === true) return Date.now() - startedAt;
            last = r;
        } catch (e) {
            last = e instanceof Error ? e.message : String(e);
        }
        await sleep(500);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last saw: ${last}\n${logs()}`);
}

async function get(url: string): Promise<{ status: number; body: string }> {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.text() };
}

interface Sample {
    readonly metric: Record<string, string>;
    readonly value: [number, string];
}

/** An instant PromQL query; throws unless the API says success. */
async function instant(base: string, queryPath: string, query: string, extra: Record<string, string> = {}): Promise<Sample[]> {
    const url = new URL(queryPath, base);
    url.searchParams.set("query", query);
    for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
    const { status, body } = await get(url.toString());
    const doc = JSON.parse(body) as { status: string; data?: { resultType: string; result: Sample[] } };
    if (status !== 200 || doc.status !== "success") throw new Error(`${query}: HTTP ${status} ${body.slice(0, 300)}`);
    if (doc.data!.resultType !== "vector") throw new Error(`${query}: a ${doc.data!.resultType}, not a vector`);
    return doc.data!.result;
}
/** VictoriaMetrics at this moment, past its latency offset and rollup cache (see the top). */
const vmQuery = (query: string) => instant(vmUrl, VICTORIA_METRICS_PATHS.query, query, { time: (Date.now() / 1000).toFixed(3), nocache: "1" });
const promQuery = (query: string) => instant(promUrl, "/api/v1/query", query);
const show = (samples: readonly Sample[]) => JSON.stringify(samples.map((s) => ({ ...s.metric, value: s.value[1] })));

async function post(url: string, body: string): Promise<number> {
    const r = await fetch(url, { method: "POST", body, signal: AbortSignal.timeout(10_000) });
    await r.text();
    return r.status;
}

/** The number `line`'s first group captures in exposition text, or undefined when no line matches. */
function exposed(text: string, line: RegExp): number | undefined {
    const m = line.exec(text);
    return m ? Number(m[1]) : undefined;
}

/** The vm_, process_ and prometheus_ selectors of an expression. */
const selectorsOf = (expr: string) => metricSelectors(expr, ["vm", "process", "prometheus"]);

const spec = () => victoriaMetricsSpec(options, "127.0.0.1");
const exprs = () => [...spec().alertRules.map((r) => r.expr), ...spec().dashboard.panels.map((p) => p.expr)];

beforeAll(async () => {
    // Each port is picked just before its program starts, and each program is asked who it is once
    // it answers: other suites on this machine start servers on loopback too.
    const [vmPort] = await freePorts(1);
    monitoring = monitoringSchema.parse({ victoriaMetrics: { httpPort: vmPort } });
    options = monitoring.victoriaMetrics!;
    vmUrl = `http://127.0.0.1:${options.httpPort}`;
    const storage = path.join(lab.work, "victoria-metrics");
    mkdirSync(storage);
    start("victoria-metrics", [validator("victoria-metrics"), ...victoriaMetricsFlags(options, storage)]);
    await eventually("VictoriaMetrics' /health, and its /flags naming this test's data folder", async () => {
        const r = await get(`${vmUrl}/health`);
        if (r.status !== 200 || r.body.trim() !== "OK") return `/health: HTTP ${r.status} ${r.body}`;
        const flags = (await get(`${vmUrl}/flags`)).body;
        return flags.includes(`-storageDataPath="${storage}"`) || `another program on port ${vmPort}? its /flags: ${flags.slice(0, 300)}`;
    });

    // Prometheus as the Monitoring tier renders it, remote_write to VictoriaMetrics, scraping it.
    const [promPort] = await freePorts(1);
    promUrl = `http://127.0.0.1:${promPort}`;
    const prom = path.join(lab.work, "prometheus");
    const [fileSdDir, rulesDir, data] = ["file_sd", "rules", "data"].map((d) => path.join(prom, d));
    for (const d of [fileSdDir, rulesDir, data]) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(fileSdDir, `${spec().component}.json`), renderFileSd(spec()));
    writeFileSync(path.join(rulesDir, `${spec().component}.yml`), renderRuleFile(spec()));
    const input = prometheusConfigInput(monitoring, CLOUD, [], `127.0.0.1:${options.httpPort}`);
    expect(input.remoteWriteUrls).toEqual([`${vmUrl}${VICTORIA_METRICS_PATHS.remoteWrite}`]);
    const configFile = path.join(prom, "prometheus.yml");
    writeFileSync(configFile, renderPrometheusConfig({ ...input, fileSdDir, rulesDir, prometheusTargets: [`127.0.0.1:${promPort}`], alertmanagers: [] }));
    start("prometheus", [validator("prometheus"), `--config.file=${configFile}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${promPort}`]);
    await eventually("Prometheus ready, on this test's config", async () => {
        const r = await get(`${promUrl}/-/ready`);
        if (r.status !== 200) return `/-/ready: HTTP ${r.status} ${r.body}`;
        const flags = JSON.parse((await get(`${promUrl}/api/v1/status/flags`)).body) as { data: Record<string, string> };
        return flags.data["config.file"] === configFile || `another Prometheus on port ${promPort}? its config.file: ${flags.data["config.file"]}`;
    });
}, 120_000);

afterAll(async () => {
    await lab.stopAll();
    lab.remove();
}, 60_000);

describe("VictoriaMetrics as picloud runs it, fed by Prometheus's remote_write and by pushes", () => {
    it("takes picloud's flags as given: its disk floor and data folder are what the config says", async () => {
        const metrics = (await get(`${vmUrl}/metrics`)).body;
        const limit = /^vm_free_disk_space_limit_bytes\{path="([^"]*)"\} (\S+)$/m.exec(metrics);
        expect(limit, "vm_free_disk_space_limit_bytes in its /metrics").not.toBeNull();
        expect(limit![1]).toBe(path.join(lab.work, "victoria-metrics"));
        expect(Number(limit![2])).toBe(options.minFreeDiskMb * 1024 * 1024);
        expect(tail("victoria-metrics", 200)).toContain(`-retentionPeriod="${options.retentionDays}d"`);
    });

    it("holds Prometheus's scrape of it, written through remote_write: the series carries Prometheus's external label", async () => {
        let seen: Sample[] = [];
        const ms = await eventually(`up{job="${VICTORIA_METRICS_JOB}"} in VictoriaMetrics`, async () => {
            seen = await vmQuery(`up{job="${VICTORIA_METRICS_JOB}"}`);
            return seen.length > 0 || "no series";
        });
        console.log(`victoria-metrics: Prometheus's scrape of it queryable from it ${(ms / 1000).toFixed(1)} s after Prometheus was ready`);
        expect(seen).toHaveLength(1);
        expect(seen[0].metric).toMatchObject({ cloud: CLOUD, job: VICTORIA_METRICS_JOB, instance: `127.0.0.1:${options.httpPort}`, component: spec().component, tier: "monitoring", service: "victoria-metrics" });
        expect(seen[0].value[1]).toBe("1");
        // It came by remote_write, and VictoriaMetrics scraped nothing itself.
        const metrics = (await get(`${vmUrl}/metrics`)).body;
        expect(exposed(metrics, /^vm_rows_inserted_total\{type="promremotewrite"\} (\S+)$/m)).toBeGreaterThan(0);
        expect(exposed(metrics, /^vm_rows_inserted_total\{type="promscrape"\} (\S+)$/m)).toBe(0);
    }, 90_000);

    it("takes an app's Influx line protocol push and answers it as <measurement>_<field>", async () => {
        expect(await post(`${vmUrl}${VICTORIA_METRICS_PATHS.influxWrite}`, "picloud_push,app=shop value=42\n")).toBe(204);
        let seen: Sample[] = [];
        await eventually('picloud_push_value{app="shop"}', async () => {
            seen = await vmQuery('picloud_push_value{app="shop"}');
            return seen.length > 0 || "no series";
        });
        expect(seen.map((s) => ({ ...s.metric, value: s.value[1] }))).toEqual([{ __name__: "picloud_push_value", app: "shop", value: "42" }]);
        const metrics = (await get(`${vmUrl}/metrics`)).body;
        expect(exposed(metrics, /^vm_rows_inserted_total\{type="influx"\} (\S+)$/m)).toBeGreaterThanOrEqual(1);
    }, 90_000);

    it("takes an app's Prometheus text push and answers it", async () => {
        expect(await post(`${vmUrl}${VICTORIA_METRICS_PATHS.prometheusImport}`, 'picloud_import_total{app="shop"} 7\n')).toBe(204);
        let seen: Sample[] = [];
        await eventually("picloud_import_total", async () => {
            seen = await vmQuery("picloud_import_total");
            return seen.length > 0 || "no series";
        });
        expect(seen.map((s) => ({ ...s.metric, value: s.value[1] }))).toEqual([{ __name__: "picloud_import_total", app: "shop", value: "7" }]);
    }, 90_000);

    it("serves every vm_ and process_ metric its alerts and dashboard read; Prometheus every prometheus_ one", async () => {
        const used = [...new Set(exprs().flatMap((e) => selectorsOf(e).map((s) => s.name)))].sort();
        const ownNames = used.filter((n) => !n.startsWith("prometheus_"));
        const promNames = used.filter((n) => n.startsWith("prometheus_"));
        // Not vacuous: the extraction finds what the rules plainly use, a name before `)` included.
        expect(ownNames).toEqual(expect.arrayContaining(["vm_free_disk_space_limit_bytes", "vm_rows_inserted_total", "process_resident_memory_anon_bytes", "process_start_time_seconds"]));
        expect(promNames).toEqual(expect.arrayContaining(["prometheus_remote_storage_highest_timestamp_in_seconds", "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"]));
        expect(ownNames.length).toBeGreaterThanOrEqual(10);
        // Prometheus's remote-storage queue metrics appear once its queue has started sending.
        await eventually("Prometheus sending to VictoriaMetrics", async () => {
            const sent = exposed((await get(`${promUrl}/metrics`)).body, /^prometheus_remote_storage_samples_total\{[^}]*\} (\S+)$/m);
            return (sent ?? 0) > 0 || `prometheus_remote_storage_samples_total: ${sent}`;
        });
        const vmText = (await get(`${vmUrl}/metrics`)).body;
        const promText = (await get(`${promUrl}/metrics`)).body;
        const missing = [...ownNames.filter((n) => !exposes(vmText, n)).map((n) => `${n} (not in VictoriaMetrics' /metrics)`), ...promNames.filter((n) => !exposes(promText, n)).map((n) => `${n} (not in Prometheus's /metrics)`)];
        expect(missing, `metrics picloud's VictoriaMetrics alerts or panels read that the real programs do not serve:\n  ${missing.join("\n  ")}`).toEqual([]);
    }, 90_000);

    it("finds a series for every selector of its alerts and panels in Prometheus, matchers included", async () => {
        const selectors = [...new Set(exprs().flatMap((e) => selectorsOf(e).map((s) => s.selector)))].sort();
        expect(selectors.some((s) => s.includes(`job="${VICTORIA_METRICS_JOB}"`))).toBe(true);
        await eventually("a series in Prometheus for every selector", async () => {
            const empty: string[] = [];
            for (const s of selectors) if ((await promQuery(`count(${s})`)).length === 0) empty.push(s);
            return empty.length === 0 || `no series for ${empty.join(", ")}`;
        });
    }, 90_000);

    it("gives every alert's condition a value in Prometheus, threshold aside, so none is silently empty (mismatched labels)", async () => {
        const conditions = spec().alertRules.map((r) => {
            const m = /^(.*\S)\s*(?:==|!=|<=|>=|<|>)\s*-?[\d.]+$/s.exec(r.expr);
            expect(m, `${r.alert}: ${r.expr} ends in a comparison with a number`).not.toBeNull();
            return { alert: r.alert, condition: m![1] };
        });
        await eventually("a value for every alert's condition", async () => {
            const empty: string[] = [];
            for (const c of conditions) if ((await promQuery(c.condition)).length === 0) empty.push(`${c.alert}: ${c.condition}`);
            return empty.length === 0 || `no value for ${empty.join("; ")}`;
        });
    }, 90_000);

    it("has Prometheus evaluate every alert rule without error, none firing on a healthy store", async () => {
        interface Rule {
            readonly name: string;
            readonly health: string;
            readonly lastError?: string;
            readonly state: string;
            readonly lastEvaluation: string;
        }
        let rules: Rule[] = [];
        await eventually("every rule evaluated", async () => {
            const doc = JSON.parse((await get(`${promUrl}/api/v1/rules?type=alert`)).body) as { data: { groups: { name: string; rules: Rule[] }[] } };
            rules = doc.data.groups.find((g) => g.name === spec().component)?.rules ?? [];
            const pending = rules.filter((r) => r.health === "unknown");
            return (rules.length > 0 && pending.length === 0) || `${rules.length} rules, ${pending.length} not evaluated yet`;
        });
        expect(rules.map((r) => r.name).sort()).toEqual(spec().alertRules.map((r) => r.alert).sort());
        expect(rules.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
        expect(rules.filter((r) => r.state === "firing").map((r) => r.name)).toEqual([]);
        const pending = rules.filter((r) => r.state === "pending").map((r) => r.name);
        if (pending.length > 0) console.log(`victoria-metrics: pending (not firing) right after start: ${pending.join(", ")}`);
    }, 90_000);

    it("answers every dashboard panel, in Prometheus (the dashboards' datasource) and from its own long-term copy", async () => {
        const panels = spec().dashboard.panels;
        const empty: string[] = [];
        await eventually("every panel answered by both", async () => {
            empty.length = 0;
            for (const p of panels) {
                if ((await promQuery(p.expr)).length === 0) empty.push(`Prometheus: ${p.title}: ${p.expr}`);
                if ((await vmQuery(p.expr)).length === 0) empty.push(`VictoriaMetrics: ${p.title}: ${p.expr}`);
            }
            return empty.length === 0 || empty.join("; ");
        });
        const rate = await vmQuery(panels[0].expr);
        expect(show(rate)).toContain('"type":"promremotewrite"');
    }, 90_000);
});
