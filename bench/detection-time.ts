// Detection time: how long from a monitored process's death until a notification reaches a
// webhook, through a real Prometheus and Alertmanager (the validators', Debian's 2.42 and 0.25) on
// the prometheus.yml, alertmanager.yml, file_sd documents and rule files picloud renders at its
// defaults (only what must point at loopback overridden). Three of picloud's own monitoring specs
// are watched, their targets stand-in HTTP servers on loopback addresses serving a few metrics:
// an app's two replicas (127.0.0.11-12), a Pi's node_exporter (127.0.0.21) and a three-member
// database's Patroni and postgres_exporter (127.0.0.31-33). Each round SIGKILLs one target of each
// (the app's first replica, the node_exporter, the last member's Patroni: a standby, so the
// database's own signals stay quiet) and times the webhook's firing notification of its
// target-down alert; the server is then started again and the resolved notification awaited
// before the next. Prints each detection, split into where the time went, the min/median/max
// against the worst case LIVENESS allows, and any notification of an alert that should not fire.
// A round's alert may join an Alertmanager group still open from an earlier round (Prometheus
// sends a resolved alert again every minute for 15 minutes, which keeps its group alive): it then
// goes out at the group's next group_interval tick instead of after group_wait, and the line says so.
// DETECTION_LOGS=<dir> keeps both logs (Alertmanager's at debug) and configs.
// Run, as root: PICLOUD_VALIDATORS_DIR=... npx tsx bench/detection-time.ts [rounds]   (default 3; or $DETECTION_ROUNDS)
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { PiConfig } from "../components/config/schema";
import { type AlertRule, LIVENESS, type MonitoringSpec, targetDownRule } from "../components/monitoring/contract";
import { renderAlertmanagerConfig, renderFileSd, renderPrometheusConfig, renderRuleFile } from "../components/monitoring/renderers";
import type { PlacementPlan } from "../components/placement/place";
import { appMonitoringSpec, appWorkloadName } from "../components/tiers/apps/appServers";
import { appSchema } from "../components/tiers/apps/config";
import { databaseSchema } from "../components/tiers/database/config";
import { PATRONI_JOB, POSTGRES_JOB, databaseSpec } from "../components/tiers/database/specs";
import { monitoringSchema } from "../components/tiers/monitoring/config";
import { alertmanagerConfigInput, hostSpec, prometheusConfigInput } from "../components/tiers/monitoring/specs";
import { validator } from "../test/support/validators";
import { median } from "./syntheticStack";

const ROUNDS = Number(process.argv[2] ?? process.env.DETECTION_ROUNDS ?? 3);
/** The most any one wait may take: a round's detection, its recovery, a start. */
const WAIT_MS = 120_000;
const POLL_MS = 200;
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0";
const IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1@sha256:862ca45e61b32392f7941a1bdfdbe5ff8b6899070135f1bdca1c287d0057fc94";

/** One kind of monitored thing: its spec, and the target each round kills. */
interface Kind {
    readonly name: string;
    readonly spec: MonitoringSpec;
    readonly job: string;
    /** `host:port` of the target killed. */
    readonly victim: string;
    /** Its target-down rule, as the spec declares it. */
    readonly rule: AlertRule;
}

/** One webhook POST, as Alertmanager 0.25 sends it. */
interface Notification {
    /** When it arrived, on the monotonic clock (ms), and on the wall clock. */
    readonly at: number;
    readonly wall: number;
    readonly status: string;
    readonly alerts: readonly { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
}

interface Detection {
    /** Seconds from the kill: Prometheus's first evaluation with up == 0, its firing, the webhook's POST. */
    readonly pending: number;
    readonly fired: number;
    readonly notified: number;
}

// ---- children and temp dirs, cleaned up however the bench ends ----

const children = new Set<ChildProcess>();
let work: string | undefined;

function cleanupSync(): void {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    children.clear();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    work = undefined;
}
process.on("exit", cleanupSync);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

function exited(c: ChildProcess): boolean {
    return c.exitCode !== null || c.signalCode !== null;
}

/** Stops a child: SIGTERM, then SIGKILL after 5 s. */
async function stop(c: ChildProcess): Promise<void> {
    if (!exited(c)) {
        const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
        c.kill("SIGTERM");
        const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
        await gone;
        clearTimeout(timer);
    }
    children.delete(c);
}

function tail(file: string, lines = 15): string {
    try {
        return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

// ---- polling ----

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An error that ends a wait at once (a process that should answer has exited). */
class Fatal extends Error {}

/** Polls `probe` every {@link POLL_MS} until it returns something, or throws after `timeoutMs` saying what it waited for and what it last saw. */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    let last = "";
    for (;;) {
        try {
            const v = await probe();
            if (v !== undefined) return v;
        } catch (e) {
            if (e instanceof Fatal) throw e;
            last = (e as Error).message;
        }
        if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
        await sleep(POLL_MS);
    }
}

async function getJson<T>(url: string): Promise<T> {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
    return (await r.json()) as T;
}

/** A port free on 127.0.0.1 right now (the kernel's pick). */
function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = http.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

function firstLine(file: string): string {
    const r = spawnSync(file, ["--version"], { encoding: "utf8" });
    return `${r.stdout}${r.stderr}`.split("\n")[0].trim();
}

function durationSeconds(d: string): number {
    const m = /^(\d+)(s|m|h)$/.exec(d);
    if (!m) throw new Error(`cannot read duration ${d}`);
    return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

/** Debian's Alertmanager reads its notification templates from this folder, compiled in; install-validators.sh puts them there. */
const ALERTMANAGER_TEMPLATES = "/usr/share/prometheus/alertmanager/email.tmpl";

// ---- stand-in targets ----

/** An HTTP server on exactly host:port serving `body` at `metricsPath` (404 elsewhere), in its own process so it can be SIGKILLed. */
const TARGET_SCRIPT = `
const [host, port, metricsPath, body] = process.argv.slice(1);
require("http").createServer((req, res) => {
    if (req.url.split("?")[0] !== metricsPath) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
    res.end(body);
}).on("error", (e) => { console.error(host + ":" + port + ": " + e.message); process.exit(1); })
  .listen(Number(port), host, () => console.log("listening"));
`;

interface Served {
    readonly address: string;
    readonly metricsPath: string;
    readonly body: string;
    process?: ChildProcess;
}

async function startTarget(t: Served): Promise<void> {
    const [host, port] = t.address.split(":");
    const c = spawn(process.execPath, ["-e", TARGET_SCRIPT, host, port, t.metricsPath, t.body], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(c);
    c.on("exit", () => children.delete(c));
    let err = "";
    c.stderr!.on("data", (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
        c.stdout!.on("data", (d) => String(d).includes("listening") && resolve());
        c.once("exit", (code) => reject(new Error(`stand-in target ${t.address} exited ${code}: ${err.trim()}`)));
        setTimeout(() => reject(new Error(`stand-in target ${t.address} did not listen within 30 s`)), 30_000).unref();
    });
    t.process = c;
}

/** A few metrics shaped as each job's exporter serves them, enough for its rules to hold quiet while all is well. */
function metricsBody(job: string, member: number): string {
    const lines = ["# TYPE picloud_bench_info gauge", "picloud_bench_info 1"];
    const gauge = (name: string, value: number) => lines.push(`# TYPE ${name} gauge`, `${name} ${value}`);
    if (job === PATRONI_JOB) {
        gauge("patroni_primary", member === 0 ? 1 : 0);
        gauge("patroni_sync_standby", member === 1 ? 1 : 0);
        gauge("patroni_postgres_running", 1);
        gauge("patroni_pending_restart", 0);
    } else if (job === POSTGRES_JOB) {
        gauge("pg_up", 1);
    } else if (job.startsWith("host-")) {
        gauge("node_memory_MemAvailable_bytes", 2e9);
        gauge("node_memory_MemTotal_bytes", 4e9);
        gauge("node_timex_sync_status", 1);
    }
    return `${lines.join("\n")}\n`;
}

// ---- picloud's specs, on loopback ----

function pi(name: string, address: string): PiConfig {
    return { name, address, sshUser: "pi", sshPort: 22, hostKey: HOST_KEY, model: "pi4", memoryMb: 4096, cpus: 4, storage: "ssd", labels: {} };
}

function kinds(): Kind[] {
    const kind = (name: string, spec: MonitoringSpec, job: string, victim: (targets: readonly string[]) => string): Kind => {
        const target = spec.scrapeTargets.find((t) => t.job === job)!;
        const expected = targetDownRule(target);
        const rule = spec.alertRules.find((r) => r.alert === expected.alert);
        if (!rule || rule.expr !== expected.expr || rule.for !== expected.for || rule.severity !== expected.severity) throw new Error(`${spec.component}: its rules do not hold targetDownRule's ${expected.alert}`);
        return { name, spec, job, victim: victim(target.targets), rule };
    };

    const appPis = [pi("bench-app-1", "127.0.0.11"), pi("bench-app-2", "127.0.0.12")];
    const app = appSchema.parse({ image: IMAGE, memoryMb: 128, port: 9898, metrics: { port: 9102 } });
    const placement: PlacementPlan = { assignments: new Map([[appWorkloadName("hello"), appPis.map((p) => p.name)]]), pis: [], changes: [] };
    const appSpec = appMonitoringSpec("hello", app, { placement, pis: appPis });

    const host = hostSpec(pi("bench-host", "127.0.0.21"));

    const database = databaseSchema.parse({});
    const members = [0, 1, 2].map((index) => ({ index, pi: `bench-db-${index + 1}`, address: `127.0.0.${31 + index}` }));
    const dbSpec = databaseSpec(database, members, members.map((m) => `${m.address}:${database.exporterPort}`));

    return [
        kind("app replica", appSpec, appSpec.scrapeTargets[0].job, (t) => t[0]),
        kind("host agent", host, host.scrapeTargets[0].job, (t) => t[0]),
        kind("database member", dbSpec, PATRONI_JOB, (t) => t[t.length - 1]),
    ];
}

// ---- Prometheus's and Alertmanager's APIs ----

interface PromTarget {
    labels: Record<string, string>;
    health: string;
    lastScrape: string;
    lastError: string;
    scrapeInterval?: string;
    scrapeTimeout?: string;
}
interface PromAlert {
    labels: Record<string, string>;
    state: string;
    activeAt: string;
}
interface PromRuleGroup {
    name: string;
    rules: { name: string; type: string; health: string; state?: string; alerts?: PromAlert[] }[];
}

async function main(): Promise<void> {
    if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`rounds: expected a whole number of at least 1, got ${process.argv[2] ?? process.env.DETECTION_ROUNDS}`);
    const prometheus = validator("prometheus");
    const alertmanager = validator("alertmanager");
    work = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-bench-detection-"));
    const dirs = { fileSd: path.join(work, "file_sd"), rules: path.join(work, "rules"), promData: path.join(work, "prometheus"), amData: path.join(work, "alertmanager") };
    for (const d of Object.values(dirs)) fs.mkdirSync(d);

    // The webhook receiver, and the record of every notification and of those that should not be.
    const notifications: Notification[] = [];
    let dump: (() => Promise<string>) | undefined;
    const flaps: string[] = [];
    let expecting: { alert: string; instance: string } | undefined;
    let where = "before the first round";
    const hook = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            res.end();
            if (req.method !== "POST") return;
            const n = { ...(JSON.parse(body) as Omit<Notification, "at" | "wall">), at: performance.now(), wall: Date.now() };
            notifications.push(n);
            for (const a of n.alerts) {
                if (a.status !== "firing") continue;
                if (expecting && a.labels.alertname === expecting.alert && a.labels.instance === expecting.instance) continue;
                flaps.push(`${where}: ${a.labels.alertname}${a.labels.instance ? ` ${a.labels.instance}` : ""} (component ${a.labels.component}, severity ${a.labels.severity}) firing`);
            }
        });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    const hookPort = (hook.address() as AddressInfo).port;

    try {
        const options = monitoringSchema.parse({ alerting: { webhookUrls: [`http://127.0.0.1:${hookPort}/hook`] } });
        const all = kinds();

        // The stand-in targets: every address the specs list, each its own process.
        const served = new Map<string, Served>();
        for (const k of all) {
            for (const t of k.spec.scrapeTargets) {
                t.targets.forEach((address, member) => served.set(address, { address, metricsPath: t.metricsPath ?? "/metrics", body: metricsBody(t.job, member) }));
            }
            fs.writeFileSync(path.join(dirs.fileSd, `${k.spec.component}.json`), renderFileSd(k.spec));
            fs.writeFileSync(path.join(dirs.rules, `${k.spec.component}.yml`), renderRuleFile(k.spec));
        }
        await Promise.all([...served.values()].map(startTarget));

        // Alertmanager, then Prometheus, each on a free port (retried should another take it first).
        if (!fs.existsSync(ALERTMANAGER_TEMPLATES)) throw new Error(`${ALERTMANAGER_TEMPLATES} is missing: Debian's Alertmanager cannot start without it; run bash test/support/install-validators.sh`);
        const amConfig = path.join(work, "alertmanager.yml");
        fs.writeFileSync(amConfig, renderAlertmanagerConfig(alertmanagerConfigInput(options)));
        const start = async (what: string, args: (port: number) => string[]): Promise<string> => {
            for (let attempt = 1; ; attempt++) {
                const port = await freePort();
                const log = path.join(work!, `${what}.log`);
                const out = fs.openSync(log, "w");
                const [file, argv] = [what === "alertmanager" ? alertmanager : prometheus, args(port)];
                const c = spawn(file, argv, { stdio: ["ignore", out, out] });
                fs.closeSync(out);
                children.add(c);
                const base = `http://127.0.0.1:${port}`;
                try {
                    await until(`${what} to be ready on ${base}`, async () => {
                        if (exited(c)) throw new Fatal(`${what} exited ${c.exitCode ?? c.signalCode}:\n${tail(log)}`);
                        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok ? true : undefined;
                    }, 60_000);
                    return base;
                } catch (e) {
                    await stop(c);
                    if (attempt >= 3 || !/address already in use/.test(tail(log))) throw new Error(`${(e as Error).message}\n${tail(log)}`);
                }
            }
        };
        const am = await start("alertmanager", (port) => [`--config.file=${amConfig}`, `--storage.path=${dirs.amData}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address=", "--log.level=debug"]);
        const amHost = am.replace("http://", "");
        const promConfig = path.join(work, "prometheus.yml");
        const prom = await start("prometheus", (port) => {
            const input = { ...prometheusConfigInput(options, "bench", []), alertmanagers: [amHost], fileSdDir: dirs.fileSd, rulesDir: dirs.rules, prometheusTargets: [`127.0.0.1:${port}`] };
            fs.writeFileSync(promConfig, renderPrometheusConfig(input));
            return [`--config.file=${promConfig}`, `--storage.tsdb.path=${dirs.promData}`, `--web.listen-address=127.0.0.1:${port}`];
        });

        const targets = async () => (await getJson<{ data: { activeTargets: PromTarget[] } }>(`${prom}/api/v1/targets?state=active`)).data.activeTargets;
        const target = async (k: Kind) => (await targets()).find((t) => t.labels.job === k.job && t.labels.instance === k.victim);
        const ruleOf = async (k: Kind) => {
            const groups = (await getJson<{ data: { groups: PromRuleGroup[] } }>(`${prom}/api/v1/rules?type=alert`)).data.groups;
            return groups.find((g) => g.name === k.spec.component)?.rules.find((r) => r.name === k.rule.alert);
        };
        const promAlerts = async () => (await getJson<{ data: { alerts: PromAlert[] } }>(`${prom}/api/v1/alerts`)).data.alerts;
        const amAlerts = async () => getJson<{ labels: Record<string, string>; endsAt: string; status: { state: string } }[]>(`${am}/api/v2/alerts?active=true&silenced=true&inhibited=true`);

        dump = async () => {
            const lines = [`state at ${new Date().toISOString()}, Prometheus's stand-in targets:`];
            for (const t of (await targets()).filter((t) => served.has(t.labels.instance))) lines.push(`  ${t.labels.job} ${t.labels.instance} ${t.health} (last scrape ${t.lastScrape}${t.lastError ? `, ${t.lastError}` : ""})`);
            lines.push("Prometheus's alerts:", ...(await promAlerts()).map((a) => `  ${a.labels.alertname} ${a.labels.instance ?? ""} ${a.state} since ${a.activeAt}`));
            lines.push("Alertmanager's alerts:", ...(await amAlerts()).map((a) => `  ${a.labels.alertname} ${a.labels.instance ?? ""} ${a.status.state} ends ${a.endsAt}`));
            lines.push("notifications:", ...notifications.map((n) => `  ${new Date(n.wall).toISOString()} ${n.status}: ${n.alerts.map((a) => `${a.labels.alertname} ${a.labels.instance} ${a.status}`).join("; ")}`));
            return lines.join("\n");
        };
        console.log(`${firstLine(prometheus)}`);
        console.log(`${firstLine(alertmanager)}`);
        await until("Prometheus to see Alertmanager", async () => {
            const d = (await getJson<{ data: { activeAlertmanagers: { url: string }[] } }>(`${prom}/api/v1/alertmanagers`)).data;
            return d.activeAlertmanagers.some((a) => a.url.includes(amHost)) ? true : undefined;
        });
        const expected = [...served.keys()];
        const up = await until(`every stand-in target (${expected.join(", ")}) to be up`, async () => {
            const ts = (await targets()).filter((t) => expected.includes(t.labels.instance));
            return ts.length === expected.length && ts.every((t) => t.health === "up") ? ts : undefined;
        });
        // Whether Prometheus took the liveness interval from file_sd: its targets API, and the gap between two scrapes.
        const intervals = [...new Set(up.map((t) => `${t.scrapeInterval ?? "?"}/${t.scrapeTimeout ?? "?"}`))].join(", ");
        const first = await target(all[0]);
        const second = await until("a second scrape of the first victim", async () => {
            const t = await target(all[0]);
            return t && t.lastScrape !== first!.lastScrape ? t : undefined;
        });
        const third = await until("a third scrape of the first victim", async () => {
            const t = await target(all[0]);
            return t && t.lastScrape !== second.lastScrape ? t : undefined;
        });
        const gap = (Date.parse(third.lastScrape) - Date.parse(second.lastScrape)) / 1000;
        console.log(`targets: ${expected.length} up; interval/timeout per target in Prometheus's targets API: ${intervals}; seen between two scrapes: ${gap.toFixed(2)} s (global scrape_interval ${options.scrapeIntervalSeconds} s)`);

        const bound = LIVENESS.scrapeIntervalSeconds + LIVENESS.evaluationIntervalSeconds + durationSeconds(LIVENESS.targetDownFor) + durationSeconds(LIVENESS.criticalGroupWait);
        console.log(`detection: target SIGKILLed until its target-down notification reaches the webhook; ${ROUNDS} round(s), kinds in turn, each kill at a random point of the ${LIVENESS.scrapeIntervalSeconds} s cycle; bound ${bound} s = scrape ${LIVENESS.scrapeIntervalSeconds} + evaluation ${LIVENESS.evaluationIntervalSeconds} + for ${LIVENESS.targetDownFor} + group_wait ${LIVENESS.criticalGroupWait}`);

        const results = new Map<string, Detection[]>(all.map((k) => [k.name, []]));
        const groupWait = durationSeconds(LIVENESS.criticalGroupWait);
        let openGroup = 0;
        const began = performance.now();
        for (let round = 1; round <= ROUNDS; round++) {
            for (const k of all) {
                const label = `round ${round}, ${k.name} (${k.victim}, ${k.rule.alert})`;
                where = `${label}, before the kill`;
                await until(`${label}: the target up, its rule loaded and evaluated, no alert for it in Prometheus or Alertmanager`, async () => {
                    const t = await target(k);
                    const r = await ruleOf(k);
                    if (t?.health !== "up" || r?.health !== "ok") return undefined;
                    if ((r.alerts ?? []).some((a) => a.labels.instance === k.victim)) return undefined;
                    const active = (await amAlerts()).some((a) => a.labels.alertname === k.rule.alert && a.labels.instance === k.victim);
                    return active ? undefined : true;
                });
                // Rounds last about as long each, so without this every kill would fall at the same
                // point of the scrape and evaluation cycles: a random offset samples them all.
                await sleep(Math.random() * LIVENESS.scrapeIntervalSeconds * 1000);
                const victim = served.get(k.victim)!;
                const seen = notifications.length;
                expecting = { alert: k.rule.alert, instance: k.victim };
                where = `${label}, while down`;
                victim.process!.kill("SIGKILL");
                // The figure is on the monotonic clock; its split compares Prometheus's wall-clock times with the kill's.
                const t0 = performance.now();
                const wall0 = Date.now();
                const notice = await until(`${label}: a firing ${k.rule.alert} notification for ${k.victim} at the webhook`, () =>
                    notifications.slice(seen).find((n) => n.alerts.some((a) => a.status === "firing" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)),
                );
                const firing = notice.alerts.find((a) => a.status === "firing" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)!;
                const inProm = (await promAlerts()).find((a) => a.labels.alertname === k.rule.alert && a.labels.instance === k.victim);
                const jump = Date.now() - wall0 - (performance.now() - t0);
                const d: Detection = {
                    pending: inProm ? (Date.parse(inProm.activeAt) - wall0) / 1000 : NaN,
                    fired: (Date.parse(firing.startsAt) - wall0) / 1000,
                    notified: (notice.at - t0) / 1000,
                };
                results.get(k.name)!.push(d);
                expecting = undefined;
                where = `${label}, recovering`;
                await startTarget(victim);
                const restarted = performance.now();
                await until(`${label}: the resolved ${k.rule.alert} notification for ${k.victim} (send_resolved)`, () =>
                    notifications.slice(seen).find((n) => n.alerts.some((a) => a.status === "resolved" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)),
                );
                const resolved = (performance.now() - restarted) / 1000;
                // Alertmanager holds a new group for group_wait; an alert joining a group that has
                // already notified goes out at the group's next group_interval tick instead.
                const amPart = d.notified - d.fired;
                const ticked = Math.abs(amPart - groupWait) > 1;
                if (ticked) openGroup++;
                console.log(
                    `  ${label}: notified after ${d.notified.toFixed(2)} s (up == 0 seen by a rule evaluation at ${d.pending.toFixed(2)} s, firing at ${d.fired.toFixed(2)} s, Alertmanager ${amPart.toFixed(2)} s${ticked ? ": its group was still open, so at the group's next group_interval tick, not after group_wait" : ""}); resolved notified ${resolved.toFixed(1)} s after the restart${Math.abs(jump) > 500 ? `; the wall clock moved ${(jump / 1000).toFixed(1)} s during the round, so the split is off by that` : ""}`,
                );
            }
        }
        where = "after the last round";
        const minutes = (performance.now() - began) / 60_000;

        const s = (x: number) => x.toFixed(2).padStart(6);
        console.log("");
        console.log(`${"kind".padEnd(17)}  ${"runs (s)".padEnd(ROUNDS * 8)}  ${"min".padStart(6)}  ${"median".padStart(6)}  ${"max".padStart(6)}  bound`);
        for (const k of all) {
            const xs = results.get(k.name)!.map((d) => d.notified);
            console.log(`${k.name.padEnd(17)}  ${xs.map((x) => s(x)).join("  ").padEnd(ROUNDS * 8)}  ${s(Math.min(...xs))}  ${s(median(xs))}  ${s(Math.max(...xs))}  ${bound} s`);
        }
        const everything = [...results.values()].flat();
        console.log(`${"every kind".padEnd(17)}  ${"".padEnd(ROUNDS * 8)}  ${s(Math.min(...everything.map((d) => d.notified)))}  ${s(median(everything.map((d) => d.notified)))}  ${s(Math.max(...everything.map((d) => d.notified)))}  ${bound} s`);
        const over = everything.filter((d) => d.notified > bound).length;
        console.log(`over the bound: ${over} of ${everything.length}; Prometheus's part (kill to firing) ${Math.min(...everything.map((d) => d.fired)).toFixed(2)}-${Math.max(...everything.map((d) => d.fired)).toFixed(2)} s, Alertmanager's (firing to webhook) ${Math.min(...everything.map((d) => d.notified - d.fired)).toFixed(2)}-${Math.max(...everything.map((d) => d.notified - d.fired)).toFixed(2)} s`);
        console.log(`notified at a group_interval tick of a group still open (not after group_wait): ${openGroup} of ${everything.length}`);
        console.log(`notifications: ${notifications.length}; of alerts that should not have fired: ${flaps.length}`);
        for (const f of flaps) console.log(`  ${f}`);
        console.log(`rounds took ${minutes.toFixed(1)} min`);
    } catch (e) {
        if (dump) console.error(await dump().catch((d) => `(no state: ${(d as Error).message})`));
        for (const what of ["prometheus", "alertmanager"]) console.error(`--- the end of ${what}'s log:\n${tail(path.join(work, `${what}.log`))}`);
        throw e;
    } finally {
        const keep = process.env.DETECTION_LOGS;
        if (keep) {
            fs.mkdirSync(keep, { recursive: true });
            for (const f of ["prometheus.log", "alertmanager.log", "prometheus.yml", "alertmanager.yml"]) if (fs.existsSync(path.join(work, f))) fs.copyFileSync(path.join(work, f), path.join(keep, f));
        }
        hook.closeAllConnections();
        await new Promise<void>((resolve) => hook.close(() => resolve()));
        await Promise.all([...children].map(stop));
        cleanupSync();
    }
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
