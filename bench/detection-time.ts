// Detection time: how long from a monitored process's death until a notification reaches a
// webhook, through the alerting pipeline as picloud deploys it by default on two monitoring Pis:
// two real Prometheus (the validators', Debian's 2.42) on one identical prometheus.yml, each
// scraping every target and every Prometheus and sending every alert to both of two real
// Alertmanagers (Debian's 0.25), clustered with the flags picloud gives its replicas
// (alertmanagerClusterFlags, via test/support/alertmanagerLab.ts) at the production peer timeout:
// no --cluster.peer-timeout is passed, so Alertmanager's default, 15 s, holds. All run on the
// prometheus.yml, alertmanager.yml, file_sd documents and rule files picloud renders at its
// defaults, only what must point at loopback overridden (the two Prometheus' and two
// Alertmanagers' addresses, the folders, the webhook); each Prometheus has its own port and TSDB.
// Three of picloud's own monitoring specs are watched, their targets stand-in HTTP servers on
// loopback addresses serving a few metrics: an app's two replicas (127.0.0.11-12), a Pi's
// node_exporter (127.0.0.21) and a three-member database's Patroni and postgres_exporter
// (127.0.0.31-33). Each round SIGKILLs one target of each (the app's first replica, the
// node_exporter, the last member's Patroni: a standby, so the database's own signals stay quiet)
// and times the webhook's firing notification of its target-down alert, then counts the firing
// notifications of that alert in the 20 s from the first. Both replicas send the same alert (no
// replica label) to both Alertmanagers; the second-ranked Alertmanager flushes the group within
// moments of the first but waits its 15 s peer timeout before sending, and sends nothing if the
// first's entry is then the shared notification log's last for the group: 1 notification. A
// duplicate comes about 15 s after the first, so 20 s sees it. The round restarts the victim at the
// first notification, as before, so the first-ranked Alertmanager's resolved notification (one
// group_interval later) is the log's last entry by then, and the second-ranked one sends its
// 15 s-old view, the alert firing, after the resolved one (and its own resolved later):
// Alertmanager's known HA trade-off (prometheus/alertmanager#2447, open). The line says when an
// extra firing came after the resolved one. The server is then started again and the resolved
// notification awaited (and the 20 s closed) before the next. Prints each detection,
// split into where the time went (with each Prometheus' first evaluation seeing up == 0) and which
// Alertmanager sent it, the min/median/max against the worst case LIVENESS allows, the firing
// notifications per alert, and any notification of an alert that should not fire.
// A round's alert may join an Alertmanager group still open from an earlier round (Prometheus
// sends a resolved alert again every minute for 15 minutes, which keeps its group alive): it then
// goes out at the group's next group_interval tick instead of after group_wait, and the line says so.
// DETECTION_REPLICAS=1 measures the pipeline as picloud deploys it on one monitoring Pi (and did
// before it ran two replicas): one Prometheus, one unclustered Alertmanager.
// DETECTION_HOLD_DOWN=1 keeps each victim down until its 20 s window closes before restarting it:
// the count is then of the dedup of a still-firing alert alone (the stale firing then comes after
// the window, listed as an alert that should not have fired).
// DETECTION_LOGS=<dir> keeps every log (the Alertmanagers' at debug) and config.
// Run, as root: npx tsx bench/detection-time.ts [rounds]   (default 3; or $DETECTION_ROUNDS); the
// validators from bash test/support/install-validators.sh, or in $PICLOUD_VALIDATORS_DIR.
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
import { alertmanagerClusterFlags, alertmanagerConfigInput, hostSpec, prometheusConfigInput } from "../components/tiers/monitoring/specs";
import { ALERTMANAGER_TEMPLATES, AlertmanagerLab, type ClusterStatus, type Peer, firstRanked } from "../test/support/alertmanagerLab";
import { validator } from "../test/support/validators";
import { median } from "./syntheticStack";

const ROUNDS = Number(process.argv[2] ?? process.env.DETECTION_ROUNDS ?? 3);
/** Prometheus and Alertmanager replicas: 2, as picloud deploys them by default, or 1. */
const REPLICAS = Number(process.env.DETECTION_REPLICAS ?? 2);
/**
 * How long from an alert's first firing notification to count further ones. The second-ranked
 * Alertmanager holds the same group from (within moments of) the same moment as the first, since
 * each Prometheus sends to both, and waits its peer timeout (Alertmanager's default 15 s, which
 * picloud keeps) before sending unless the first's notification is the shared log's last entry
 * by then: a duplicate would come about 15 s after the first (or a group_interval sooner, when its
 * group's own tick fell earlier). 20 s sees it, with margin for a busy machine.
 */
const OBSERVE_MS = 20_000;
/** DETECTION_HOLD_DOWN=1 keeps each victim down until its {@link OBSERVE_MS} window closes, instead of restarting it at the first notification. */
const HOLD_DOWN = process.env.DETECTION_HOLD_DOWN === "1";
/** Alertmanager's default --cluster.peer-timeout, which picloud keeps (the bench passes none). */
const PEER_TIMEOUT_S = 15;
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
    /** The sending Alertmanager's --web.external-url. */
    readonly externalURL: string;
    readonly alerts: readonly { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
}

interface Detection {
    /** Seconds from the kill: Prometheus's first evaluation with up == 0, its firing, the webhook's POST. */
    readonly pending: number;
    readonly fired: number;
    readonly notified: number;
    /** Seconds from the kill to each Prometheus' first evaluation with up == 0, in replica order. */
    readonly pendingBy: readonly number[];
    /** Firing notifications of the alert within {@link OBSERVE_MS} of the first, the first included. */
    readonly firings: number;
    /** Of those, how many came after the alert's resolved notification. */
    readonly afterResolved: number;
}

// ---- children and temp dirs, cleaned up however the bench ends ----

const children = new Set<ChildProcess>();
let work: string | undefined;
/** The clustered Alertmanagers (two replicas), their folders under the work folder. */
const lab = new AlertmanagerLab({ tmp: () => fs.mkdtempSync(path.join(work!, "alertmanager-")), extraArgs: ["--log.level=debug"] });

function cleanupSync(): void {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    children.clear();
    lab.killAllSync();
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

/** A Prometheus or Alertmanager the bench runs: its name in the output, its API (http://127.0.0.1:<port>), its log, its arguments. */
interface Server {
    readonly name: string;
    readonly url: string;
    readonly log: string;
    readonly args: readonly string[];
}

const hostOf = (s: Server) => s.url.replace("http://", "");

async function main(): Promise<void> {
    if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`rounds: expected a whole number of at least 1, got ${process.argv[2] ?? process.env.DETECTION_ROUNDS}`);
    if (REPLICAS !== 1 && REPLICAS !== 2) throw new Error(`DETECTION_REPLICAS: expected 1 or 2, got ${process.env.DETECTION_REPLICAS}`);
    const prometheus = validator("prometheus");
    const alertmanager = validator("alertmanager");
    work = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-bench-detection-"));
    const dirs = { fileSd: path.join(work, "file_sd"), rules: path.join(work, "rules") };
    for (const d of Object.values(dirs)) fs.mkdirSync(d);

    // The webhook receiver, and the record of every notification and of those that should not be.
    const notifications: Notification[] = [];
    let dump: (() => Promise<string>) | undefined;
    let proms: Server[] = [];
    let ams: Server[] = [];
    const flaps: string[] = [];
    /** Alerts (name and instance) some notification has said resolved. */
    const notifiedResolved = new Set<string>();
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
                const key = `${a.labels.alertname} ${a.labels.instance}`;
                if (a.status === "resolved") notifiedResolved.add(key);
                if (a.status !== "firing") continue;
                if (expecting && a.labels.alertname === expecting.alert && a.labels.instance === expecting.instance) continue;
                const stale = notifiedResolved.has(key) ? ", though already notified resolved (a second-ranked Alertmanager's stale re-fire)" : "";
                flaps.push(`${where}: ${a.labels.alertname}${a.labels.instance ? ` ${a.labels.instance}` : ""} (component ${a.labels.component}, severity ${a.labels.severity}) firing, from ${n.externalURL}${stale}`);
            }
        });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;

    try {
        const options = monitoringSchema.parse({ alerting: { webhookUrls: [hookUrl] } });
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

        /**
         * Starts `count` of `what` at once, each on a free port (the ports picked together, since
         * one config may name them all; started over should another process take one first), and
         * waits until each is ready. `argv` gives the i-th one's arguments for those ports.
         */
        const startAll = async (what: "prometheus" | "alertmanager", count: number, argv: (ports: readonly number[], i: number) => string[]): Promise<Server[]> => {
            for (let attempt = 1; ; attempt++) {
                const ports: number[] = [];
                while (ports.length < count) {
                    const port = await freePort();
                    if (!ports.includes(port)) ports.push(port);
                }
                const started: (Server & { child: ChildProcess })[] = [];
                try {
                    for (let i = 0; i < count; i++) {
                        const name = count === 1 ? what : `${what} ${i + 1}`;
                        const log = path.join(work!, `${what}-${i + 1}.log`);
                        const out = fs.openSync(log, "w");
                        const args = argv(ports, i);
                        const child = spawn(what === "alertmanager" ? alertmanager : prometheus, args, { stdio: ["ignore", out, out] });
                        fs.closeSync(out);
                        children.add(child);
                        started.push({ name, url: `http://127.0.0.1:${ports[i]}`, log, args, child });
                    }
                    for (const s of started) {
                        await until(`${s.name} to be ready on ${s.url}`, async () => {
                            if (exited(s.child)) throw new Fatal(`${s.name} exited ${s.child.exitCode ?? s.child.signalCode}:\n${tail(s.log)}`);
                            return (await fetch(`${s.url}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok ? true : undefined;
                        }, 60_000);
                    }
                    return started.map(({ child: _, ...s }) => s);
                } catch (e) {
                    await Promise.all(started.map((s) => stop(s.child)));
                    if (attempt >= 3 || !started.some((s) => /address already in use/.test(tail(s.log)))) throw new Error(`${(e as Error).message}\n${started.map((s) => `--- ${s.name}:\n${tail(s.log)}`).join("\n")}`);
                }
            }
        };

        // The Alertmanagers, then the Prometheus that alert them.
        if (!fs.existsSync(ALERTMANAGER_TEMPLATES)) throw new Error(`${ALERTMANAGER_TEMPLATES} is missing: Debian's Alertmanager cannot start without it; run bash test/support/install-validators.sh`);
        let firstRankedAm: Server | undefined;
        if (REPLICAS === 2) {
            // Rendered from the same options, on the flags picloud gives its replicas, at the default peer timeout; both ready and seeing both members.
            const peers: Peer[] = await lab.startCluster(hookUrl);
            ams = peers.map((p, i) => ({ name: `alertmanager ${i + 1}`, url: p.url, log: p.log, args: p.args }));
            const { peer } = firstRanked(await getJson<ClusterStatus>(`${peers[0].url}/api/v2/status`), peers);
            firstRankedAm = ams[peers.findIndex((p) => p === peer)];
        } else {
            const amConfig = path.join(work, "alertmanager.yml");
            fs.writeFileSync(amConfig, renderAlertmanagerConfig(alertmanagerConfigInput(options)));
            ams = await startAll("alertmanager", 1, (ports) => [
                `--config.file=${amConfig}`,
                `--storage.path=${path.join(work!, "alertmanager-data")}`,
                `--web.listen-address=127.0.0.1:${ports[0]}`,
                `--web.external-url=http://127.0.0.1:${ports[0]}`,
                // One peer: clustering off, as picloud runs a lone replica.
                ...alertmanagerClusterFlags(`127.0.0.1:${ports[0]}`, [`127.0.0.1:${ports[0]}`]),
                "--log.level=debug",
            ]);
        }
        const promConfig = path.join(work, "prometheus.yml");
        proms = await startAll("prometheus", REPLICAS, (ports, i) => {
            // One prometheus.yml for every replica, as the Monitoring tier renders it: each scrapes every replica and alerts every Alertmanager.
            const input = { ...prometheusConfigInput(options, "bench", []), alertmanagers: ams.map(hostOf), fileSdDir: dirs.fileSd, rulesDir: dirs.rules, prometheusTargets: ports.map((p) => `127.0.0.1:${p}`) };
            fs.writeFileSync(promConfig, renderPrometheusConfig(input));
            return [`--config.file=${promConfig}`, `--storage.tsdb.path=${path.join(work!, `prometheus-data-${i + 1}`)}`, `--web.listen-address=127.0.0.1:${ports[i]}`];
        });

        const targets = async (prom: Server) => (await getJson<{ data: { activeTargets: PromTarget[] } }>(`${prom.url}/api/v1/targets?state=active`)).data.activeTargets;
        const target = async (prom: Server, k: Kind) => (await targets(prom)).find((t) => t.labels.job === k.job && t.labels.instance === k.victim);
        const ruleOf = async (prom: Server, k: Kind) => {
            const groups = (await getJson<{ data: { groups: PromRuleGroup[] } }>(`${prom.url}/api/v1/rules?type=alert`)).data.groups;
            return groups.find((g) => g.name === k.spec.component)?.rules.find((r) => r.name === k.rule.alert);
        };
        const promAlerts = async (prom: Server) => (await getJson<{ data: { alerts: PromAlert[] } }>(`${prom.url}/api/v1/alerts`)).data.alerts;
        const amAlerts = async (am: Server) => getJson<{ labels: Record<string, string>; endsAt: string; status: { state: string } }[]>(`${am.url}/api/v2/alerts?active=true&silenced=true&inhibited=true`);

        dump = async () => {
            const lines = [`state at ${new Date().toISOString()}`];
            for (const prom of proms) {
                lines.push(`${prom.name}'s stand-in targets:`);
                for (const t of (await targets(prom)).filter((t) => served.has(t.labels.instance))) lines.push(`  ${t.labels.job} ${t.labels.instance} ${t.health} (last scrape ${t.lastScrape}${t.lastError ? `, ${t.lastError}` : ""})`);
                lines.push(`${prom.name}'s alerts:`, ...(await promAlerts(prom)).map((a) => `  ${a.labels.alertname} ${a.labels.instance ?? ""} ${a.state} since ${a.activeAt}`));
            }
            for (const am of ams) lines.push(`${am.name}'s alerts:`, ...(await amAlerts(am)).map((a) => `  ${a.labels.alertname} ${a.labels.instance ?? ""} ${a.status.state} ends ${a.endsAt}`));
            lines.push("notifications:", ...notifications.map((n) => `  ${new Date(n.wall).toISOString()} ${n.status} from ${n.externalURL}: ${n.alerts.map((a) => `${a.labels.alertname} ${a.labels.instance} ${a.status}`).join("; ")}`));
            return lines.join("\n");
        };
        console.log(`${firstLine(prometheus)}`);
        console.log(`${firstLine(alertmanager)}`);
        if (REPLICAS === 2) {
            console.log(`pipeline: 2 Prometheus (${proms.map(hostOf).join(", ")}) on one prometheus.yml, each alerting both of 2 Alertmanagers (${ams.map(hostOf).join(", ")}) clustered with alertmanagerClusterFlags, peer timeout ${PEER_TIMEOUT_S} s (Alertmanager's default; no --cluster.peer-timeout); first-ranked (sends first): ${firstRankedAm?.name ?? "unknown"}`);
            console.log(`  flags of ${ams[0].name}: ${ams[0].args.filter((a) => a.startsWith("--cluster.")).join(" ")}`);
        } else {
            console.log(`pipeline: 1 Prometheus (${hostOf(proms[0])}), 1 Alertmanager (${hostOf(ams[0])}), unclustered (DETECTION_REPLICAS=1)`);
        }
        for (const prom of proms) {
            await until(`${prom.name} to see every Alertmanager`, async () => {
                const d = (await getJson<{ data: { activeAlertmanagers: { url: string }[] } }>(`${prom.url}/api/v1/alertmanagers`)).data;
                return ams.every((am) => d.activeAlertmanagers.some((a) => a.url.includes(hostOf(am)))) ? true : undefined;
            });
        }
        const expected = [...served.keys()];
        const ups: PromTarget[][] = [];
        for (const prom of proms) {
            ups.push(await until(`every stand-in target (${expected.join(", ")}) to be up in ${prom.name}`, async () => {
                const ts = (await targets(prom)).filter((t) => expected.includes(t.labels.instance));
                return ts.length === expected.length && ts.every((t) => t.health === "up") ? ts : undefined;
            }));
        }
        // Whether Prometheus took the liveness interval from file_sd: its targets API, and the gap between two scrapes (the first replica's; they run one config).
        const intervals = [...new Set(ups.flat().map((t) => `${t.scrapeInterval ?? "?"}/${t.scrapeTimeout ?? "?"}`))].join(", ");
        const first = await target(proms[0], all[0]);
        const second = await until("a second scrape of the first victim", async () => {
            const t = await target(proms[0], all[0]);
            return t && t.lastScrape !== first!.lastScrape ? t : undefined;
        });
        const third = await until("a third scrape of the first victim", async () => {
            const t = await target(proms[0], all[0]);
            return t && t.lastScrape !== second.lastScrape ? t : undefined;
        });
        const gap = (Date.parse(third.lastScrape) - Date.parse(second.lastScrape)) / 1000;
        console.log(`targets: ${expected.length} up${REPLICAS > 1 ? " in each Prometheus" : ""}; interval/timeout per target in Prometheus's targets API: ${intervals}; seen between two scrapes: ${gap.toFixed(2)} s (global scrape_interval ${options.scrapeIntervalSeconds} s)`);

        const bound = LIVENESS.scrapeIntervalSeconds + LIVENESS.evaluationIntervalSeconds + durationSeconds(LIVENESS.targetDownFor) + durationSeconds(LIVENESS.criticalGroupWait);
        if (HOLD_DOWN) console.log(`DETECTION_HOLD_DOWN=1: each victim kept down until ${OBSERVE_MS / 1000} s after its first firing notification, then restarted`);
        console.log(`detection: target SIGKILLed until its target-down notification reaches the webhook; ${ROUNDS} round(s), kinds in turn, each kill at a random point of the ${LIVENESS.scrapeIntervalSeconds} s cycle; bound ${bound} s = scrape ${LIVENESS.scrapeIntervalSeconds} + evaluation ${LIVENESS.evaluationIntervalSeconds} + for ${LIVENESS.targetDownFor} + group_wait ${LIVENESS.criticalGroupWait}; firing notifications of each alert counted over ${OBSERVE_MS / 1000} s from the first (1 expected)`);

        const results = new Map<string, Detection[]>(all.map((k) => [k.name, []]));
        const groupWait = durationSeconds(LIVENESS.criticalGroupWait);
        let openGroup = 0;
        const began = performance.now();
        const isFiring = (k: Kind) => (n: Notification) => n.alerts.some((a) => a.status === "firing" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim);
        const sender = (n: Notification) => ams.find((am) => n.externalURL === am.url)?.name ?? n.externalURL;
        for (let round = 1; round <= ROUNDS; round++) {
            for (const k of all) {
                const label = `round ${round}, ${k.name} (${k.victim}, ${k.rule.alert})`;
                where = `${label}, before the kill`;
                await until(`${label}: the target up, its rule loaded and evaluated, no alert for it, in every Prometheus and Alertmanager`, async () => {
                    for (const prom of proms) {
                        const t = await target(prom, k);
                        const r = await ruleOf(prom, k);
                        if (t?.health !== "up" || r?.health !== "ok") return undefined;
                        if ((r.alerts ?? []).some((a) => a.labels.instance === k.victim)) return undefined;
                    }
                    for (const am of ams) if ((await amAlerts(am)).some((a) => a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)) return undefined;
                    return true;
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
                const notice = await until(`${label}: a firing ${k.rule.alert} notification for ${k.victim} at the webhook`, () => notifications.slice(seen).find(isFiring(k)));
                const firing = notice.alerts.find((a) => a.status === "firing" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)!;
                const pendingBy: number[] = [];
                for (const prom of proms) {
                    const inProm = (await promAlerts(prom)).find((a) => a.labels.alertname === k.rule.alert && a.labels.instance === k.victim);
                    pendingBy.push(inProm ? (Date.parse(inProm.activeAt) - wall0) / 1000 : NaN);
                }
                const jump = Date.now() - wall0 - (performance.now() - t0);
                where = `${label}, recovering`;
                if (HOLD_DOWN) await sleep(Math.max(0, notice.at + OBSERVE_MS - performance.now()));
                await startTarget(victim);
                const restarted = performance.now();
                const resolvedNotice = await until(`${label}: the resolved ${k.rule.alert} notification for ${k.victim} (send_resolved)`, () =>
                    notifications.slice(seen).find((n) => n.alerts.some((a) => a.status === "resolved" && a.labels.alertname === k.rule.alert && a.labels.instance === k.victim)),
                );
                const resolved = (performance.now() - restarted) / 1000;
                // Until the window closes, a further firing notification of this alert is a duplicate, counted here, not a flap.
                await sleep(Math.max(0, notice.at + OBSERVE_MS - performance.now()));
                expecting = undefined;
                where = `${label}, after it`;
                const firings = notifications.slice(seen).filter((n) => n.at >= notice.at && n.at - notice.at <= OBSERVE_MS && isFiring(k)(n));
                const d: Detection = {
                    pending: pendingBy.some((x) => !Number.isNaN(x)) ? Math.min(...pendingBy.filter((x) => !Number.isNaN(x))) : NaN,
                    fired: (Date.parse(firing.startsAt) - wall0) / 1000,
                    notified: (notice.at - t0) / 1000,
                    pendingBy,
                    firings: firings.length,
                    afterResolved: firings.filter((n) => n.at > resolvedNotice.at).length,
                };
                results.get(k.name)!.push(d);
                // Alertmanager holds a new group for group_wait; an alert joining a group that has
                // already notified goes out at the group's next group_interval tick instead.
                const amPart = d.notified - d.fired;
                const ticked = Math.abs(amPart - groupWait) > 1;
                if (ticked) openGroup++;
                const byReplica = proms.length > 1 ? ` (${proms.map((p, i) => `${p.name} ${pendingBy[i].toFixed(2)} s`).join(", ")})` : "";
                const extra = firings
                    .slice(1)
                    .map((n) => `+${((n.at - notice.at) / 1000).toFixed(2)} s from ${sender(n)}${n.at > resolvedNotice.at ? `, after the resolved notification (+${((resolvedNotice.at - notice.at) / 1000).toFixed(2)} s, from ${sender(resolvedNotice)})` : ""}`)
                    .join("; ");
                console.log(
                    `  ${label}: notified after ${d.notified.toFixed(2)} s by ${sender(notice)} (up == 0 seen by a rule evaluation at ${d.pending.toFixed(2)} s${byReplica}, firing at ${d.fired.toFixed(2)} s, Alertmanager ${amPart.toFixed(2)} s${ticked ? ": its group was still open, so at the group's next group_interval tick, not after group_wait" : ""}); firing notifications in ${OBSERVE_MS / 1000} s: ${firings.length}${extra ? ` (then ${extra})` : ""}; resolved notified ${resolved.toFixed(1)} s after the restart${Math.abs(jump) > 500 ? `; the wall clock moved ${(jump / 1000).toFixed(1)} s during the round, so the split is off by that` : ""}`,
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
        const dups = everything.filter((d) => d.firings !== 1).length;
        console.log(`duplicates: firing notifications per alert within ${OBSERVE_MS / 1000} s of the first: ${all.map((k) => `${k.name} ${results.get(k.name)!.map((d) => d.firings).join("/")}`).join(", ")} (1 expected); alerts notified other than once: ${dups} of ${everything.length}; extra firing notifications after the alert's resolved one: ${everything.reduce((sum, d) => sum + d.afterResolved, 0)} of ${everything.reduce((sum, d) => sum + d.firings - 1, 0)}`);
        console.log(`notifications: ${notifications.length} (${notifications.filter((n) => n.status === "firing").length} firing, ${notifications.filter((n) => n.status === "resolved").length} resolved; ${ams.map((am) => `${am.name} ${notifications.filter((n) => n.externalURL === am.url).length}`).join(", ")}); of alerts that should not have fired: ${flaps.length}`);
        for (const f of flaps) console.log(`  ${f}`);
        console.log(`rounds took ${minutes.toFixed(1)} min`);
    } catch (e) {
        if (dump) console.error(await dump().catch((d) => `(no state: ${(d as Error).message})`));
        for (const server of [...proms, ...ams]) console.error(`--- the end of ${server.name}'s log:\n${tail(server.log)}`);
        throw e;
    } finally {
        const keep = process.env.DETECTION_LOGS;
        if (keep) {
            fs.mkdirSync(keep, { recursive: true });
            for (const f of ["prometheus.yml", "alertmanager.yml"]) if (fs.existsSync(path.join(work, f))) fs.copyFileSync(path.join(work, f), path.join(keep, f));
            for (const server of [...proms, ...ams]) if (fs.existsSync(server.log)) fs.copyFileSync(server.log, path.join(keep, `${server.name.replace(" ", "-")}.log`));
            // The clustered Alertmanagers' alertmanager.yml is the lab's, rendered from the same options.
            const amConfig = ams[0]?.args.find((a) => a.startsWith("--config.file="))?.slice("--config.file=".length);
            if (amConfig && fs.existsSync(amConfig) && !fs.existsSync(path.join(keep, "alertmanager.yml"))) fs.copyFileSync(amConfig, path.join(keep, "alertmanager.yml"));
        }
        hook.closeAllConnections();
        await new Promise<void>((resolve) => hook.close(() => resolve()));
        await Promise.all([...children].map(stop));
        await lab.killAll();
        cleanupSync();
    }
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
