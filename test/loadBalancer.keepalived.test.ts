/**
 * keepalived for real on the keepalived.conf picloud renders for the dev stack's two load-balancer
 * Pis, each Pi a network namespace plugged into a bridge that lives in a namespace of its own, so
 * nothing touches the host's interfaces. A tiny HTTP server stands in for HAProxy on each Pi (the
 * check script curls its /healthz), another for node_exporter's textfile collector (serving what
 * the notify hook wrote), and a third namespace on the same switch is a client of the virtual IP
 * and runs Prometheus on the rendered rules. Prometheus sits there rather than on dev-1, where the
 * dev stack places it, so it outlives the Pi this test takes away. Nothing leaves the namespaces.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PiConfig } from "../components/config/schema";
import { renderFileSd, renderPrometheusConfig, renderRuleFile } from "../components/monitoring/renderers";
import { KEEPALIVED_PATHS, VRRP_MASTER_METRIC, VRRP_TEXTFILE, renderHaproxyCheckScript, renderVrrpNotifyScript } from "../components/tiers/loadBalancer/keepalived";
import { HAPROXY_HEALTH_PATH, renderKeepalivedConfig } from "../components/tiers/loadBalancer/renderers";
import { VRRP_INSTANCE, keepalivedInputs, loadBalancerPis, loadBalancerSpec } from "../components/tiers/loadBalancer/specs";
import { MONITORING_PORTS, hostSpec } from "../components/tiers/monitoring/specs";
import { exampleStack } from "./support/exampleStacks";
import { NetnsLab, sleep, waitFor as waitUntil } from "./support/netnsLab";
import { must, run } from "./support/processes";
import { validator } from "./support/validators";

// test/hosts uses pct- too: everything here carries this prefix, and only what is listed in
// `namespaces` is ever deleted.
const PREFIX = `pct-vrrp-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const CLIENT = `${PREFIX}client`;
const lab = new NetnsLab("picloud-vrrp");
const work = lab.work;

const dev = exampleStack("dev");
const lb = dev.config.tiers.loadBalancer!;
const subnet = dev.config.network?.subnet;
// Exactly what the LoadBalancer component renders for each Pi, in replica order.
const lbPis = loadBalancerPis(dev.plan.placement, dev.config.pis);
const vrrp = keepalivedInputs(lb, lbPis, subnet);
const prefixLength = Number(subnet?.split("/")[1]);
const CLIENT_ADDRESS = "192.168.10.200";
const PROMETHEUS = `127.0.0.1:${MONITORING_PORTS.prometheus}`;
const MOVED = "LoadBalancerVirtualIpMoved";

interface Node {
    readonly pi: PiConfig;
    readonly ns: string;
    /** The switch's side of the Pi's cable, in the switch namespace. */
    readonly port: string;
    readonly dir: string;
    readonly textfiles: string;
    readonly config: string;
    /** Where Prometheus scrapes its node_exporter: the `instance` label of its gauge. */
    readonly instance: string;
    haproxy?: ChildProcess;
    exporter?: ChildProcess;
    keepalived?: ChildProcess;
}

const nodes: Node[] = lbPis.map((pi, i) => {
    const dir = path.join(work, pi.name);
    const textfiles = path.join(dir, "textfile");
    return {
        pi,
        ns: `${PREFIX}${pi.name}`,
        port: `port${i}`,
        dir,
        textfiles,
        config: path.join(dir, "keepalived.conf"),
        instance: hostSpec(pi).scrapeTargets[0].targets[0],
    };
});
// keepalivedInputs prefers the first Pi; the other stands by.
const [preferred, standby] = nodes;

/** Figures printed at the end: how long each step took. */
const measured: string[] = [];




function logOf(name: string, lines = 15): string {
    try {
        return readFileSync(path.join(work, name), "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/** Polls until `check` holds; the error shows what it last saw and both keepalived logs. */
const waitFor = (what: string, timeoutMs: number, check: () => boolean | string) =>
    waitUntil(what, timeoutMs, check, {
        intervalMs: 100,
        context: () => nodes.map((n) => `${n.pi.name} keepalived:\n${logOf(`${n.pi.name}/keepalived.log`)}`).join("\n"),
    });

/** A namespace on the switch: a veth pair made inside the switch namespace, its far end moved in as eth0. */
function plugIn(ns: string, port: string, address: string): void {
    lab.addNamespace(ns);
    must("ip", ["-n", SWITCH, "link", "add", port, "type", "veth", "peer", "name", lb.interface, "netns", ns]);
    must("ip", ["-n", SWITCH, "link", "set", port, "master", "br0", "up"]);
    must("ip", ["-n", ns, "addr", "add", `${address}/${prefixLength}`, "dev", lb.interface]);
    must("ip", ["-n", ns, "link", "set", lb.interface, "up"]);
}

// HAProxy's stand-in: 200 on the health path keepalived's check curls, its Pi's name anywhere else.
const HAPROXY_STAND_IN = `
const [port, name, healthPath] = process.argv.slice(1);
require("node:http").createServer((req, res) => res.end(req.url === healthPath ? "ok\\n" : name + "\\n")).listen(Number(port), "0.0.0.0");
`;

// node_exporter's textfile collector, stood in: every *.prom file of the directory, as it is now.
const EXPORTER_STAND_IN = `
const [port, dir] = process.argv.slice(1);
const fs = require("node:fs");
require("node:http").createServer((req, res) => {
    let files = [];
    try { files = fs.readdirSync(dir).filter((f) => f.endsWith(".prom")).sort(); } catch {}
    res.setHeader("content-type", "text/plain; version=0.0.4");
    res.end(files.map((f) => fs.readFileSync(dir + "/" + f, "utf8")).join(""));
}).listen(Number(port), "0.0.0.0");
`;

function startHaproxyStandIn(n: Node): void {
    n.haproxy = lab.start(n.ns, path.join(n.dir, "haproxy.log"), [process.execPath, "-e", HAPROXY_STAND_IN, String(lb.statsPort), n.pi.name, HAPROXY_HEALTH_PATH]);
}

/**
 * keepalived in the Pi's namespace and a private mount namespace of its own, where the hooks sit
 * at their real paths on a tmpfs, root-owned and 0755 as enable_script_security demands.
 */
function startKeepalived(n: Node): void {
    const lib = path.dirname(KEEPALIVED_PATHS.checkScript);
    const script = [
        "set -e",
        `mount -t tmpfs -o mode=0755 tmpfs ${path.dirname(lib)}`,
        `install -d -m 0755 ${lib}`,
        `install -m 0755 ${n.dir}/check.sh ${KEEPALIVED_PATHS.checkScript}`,
        `install -m 0755 ${n.dir}/notify.sh ${KEEPALIVED_PATHS.notifyScript}`,
        // Pid files of its own: two keepalived share this host's /run.
        `exec ${validator("keepalived")} --dont-fork --log-console --no-syslog --use-file ${n.config} --pid ${n.dir}/keepalived.pid --vrrp_pid ${n.dir}/vrrp.pid --checkers_pid ${n.dir}/checkers.pid`,
    ].join("\n");
    n.keepalived = lab.start(n.ns, path.join(n.dir, "keepalived.log"), ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]);
}

const holds = (n: Node) => must("ip", ["-n", n.ns, "-4", "-o", "addr", "show", "dev", lb.interface]).includes(` ${lb.virtualIp}/${prefixLength} `);

function textfile(n: Node): string {
    try {
        return readFileSync(path.join(n.textfiles, VRRP_TEXTFILE), "utf8");
    } catch {
        return "";
    }
}

/** The gauge the notify hook last wrote on the Pi: 1, 0, or undefined before its first write. */
function gauge(n: Node): number | undefined {
    const m = new RegExp(`^${VRRP_MASTER_METRIC}\\{vrrp_instance="${VRRP_INSTANCE}"\\} ([01])$`, "m").exec(textfile(n));
    return m ? Number(m[1]) : undefined;
}

const state = () => `${preferred.pi.name}: vip=${holds(preferred)} gauge=${gauge(preferred)}; ${standby.pi.name}: vip=${holds(standby)} gauge=${gauge(standby)}`;

/** Whether `n` alone holds the virtual IP and both gauges say so; else what was seen. */
function heldBy(n: Node, others: readonly Node[] = nodes.filter((o) => o !== n)): true | string {
    return (holds(n) && gauge(n) === 1 && others.every((o) => !holds(o) && gauge(o) === 0)) || state();
}

/** Which Pi answers on the virtual IP, asked from the client namespace. */
function viaVirtualIp(): string {
    const r = run("ip", ["netns", "exec", CLIENT, "curl", "-sS", "--max-time", "1", `http://${lb.virtualIp}:${lb.statsPort}/`]);
    return r.status === 0 ? r.stdout.trim() : `curl exited ${r.status}: ${r.stderr.trim()}`;
}

function promtoolCheckMetrics(text: string): void {
    const r = run(validator("promtool"), ["check", "metrics"], text);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
}

/** The `data` of a Prometheus API answer, asked from the client namespace. */
function prometheus<T>(api: string, query?: string): T {
    const args = ["netns", "exec", CLIENT, "curl", "-sS", "--fail", "--max-time", "2", "-G", `http://${PROMETHEUS}/api/v1/${api}`];
    if (query !== undefined) args.push("--data-urlencode", `query=${query}`);
    return (JSON.parse(must("ip", args)) as { data: T }).data;
}

type Sample = { metric: Record<string, string>; value: [number, string] };

/** The `instance` of each firing LoadBalancerVirtualIpMoved alert, sorted. */
function movedFiringFor(): string[] {
    const { alerts } = prometheus<{ alerts: { labels: Record<string, string>; state: string }[] }>("alerts");
    return alerts
        .filter((a) => a.labels.alertname === MOVED && a.state === "firing")
        .map((a) => a.labels.instance)
        .sort();
}

const movedFor = (n: Node) => () => {
    const firing = movedFiringFor();
    return (firing.length === 1 && firing[0] === n.instance) || `firing for [${firing.join(", ")}]`;
};

const keepalivedSays = (n: Node, line: string) => readFileSync(path.join(n.dir, "keepalived.log"), "utf8").split(line).length - 1;

/** A `name value` line of the rendered keepalived.conf. */
function confSetting(config: string, name: string): number {
    const m = new RegExp(`^\\s+${name} (\\d+)$`, "m").exec(config);
    if (!m) throw new Error(`no ${name} in the rendered keepalived.conf`);
    return Number(m[1]);
}

beforeAll(async () => {
    expect(lb.virtualIp).toBeDefined();
    expect(nodes.map((n) => vrrp.get(n.pi.name)?.priority)).toEqual([150, 100]);
    expect([...dev.config.pis.map((p) => p.address), lb.virtualIp]).not.toContain(CLIENT_ADDRESS);

    lab.addNamespace(SWITCH);
    must("ip", ["-n", SWITCH, "link", "add", "br0", "type", "bridge"]);
    must("ip", ["-n", SWITCH, "link", "set", "br0", "up"]);
    for (const n of nodes) {
        mkdirSync(n.textfiles, { recursive: true });
        writeFileSync(n.config, renderKeepalivedConfig(vrrp.get(n.pi.name)!));
        writeFileSync(path.join(n.dir, "check.sh"), renderHaproxyCheckScript(lb.statsPort));
        writeFileSync(path.join(n.dir, "notify.sh"), renderVrrpNotifyScript(n.textfiles));
        plugIn(n.ns, n.port, n.pi.address);
        startHaproxyStandIn(n);
        n.exporter = lab.start(n.ns, path.join(n.dir, "exporter.log"), [process.execPath, "-e", EXPORTER_STAND_IN, String(MONITORING_PORTS.nodeExporter), n.textfiles]);
    }
    plugIn(CLIENT, `port${nodes.length}`, CLIENT_ADDRESS);

    // Prometheus as picloud configures it, on the load balancer's rules and the two Pis' node_exporters, every second.
    const prom = path.join(work, "prometheus");
    for (const sub of ["file_sd", "rules", "data"]) mkdirSync(path.join(prom, sub), { recursive: true });
    // Every second, as the global interval below says: the file_sd groups' own liveness interval
    // (5 s) would let the standby's short-lived 0 at start go unseen, so it is set to a second here.
    const everySecond = (doc: string) => JSON.stringify((JSON.parse(doc) as { labels: Record<string, string> }[]).map((g) => ({ ...g, labels: { ...g.labels, __scrape_interval__: "1s", __scrape_timeout__: "1s" } })));
    for (const n of nodes) writeFileSync(path.join(prom, "file_sd", `host-${n.pi.name}.json`), everySecond(renderFileSd(hostSpec(n.pi))));
    const spec = loadBalancerSpec(lb, lbPis);
    writeFileSync(path.join(prom, "rules", `${spec.component}.yml`), renderRuleFile(spec));
    const config = renderPrometheusConfig({
        scrapeIntervalSeconds: 1,
        evaluationIntervalSeconds: 1,
        alertmanagers: [],
        fileSdDir: path.join(prom, "file_sd"),
        rulesDir: path.join(prom, "rules"),
        externalLabels: {},
        prometheusTargets: [PROMETHEUS],
    });
    writeFileSync(path.join(prom, "prometheus.yml"), config);
    lab.start(CLIENT, path.join(prom, "prometheus.log"), [
        validator("prometheus"),
        `--config.file=${path.join(prom, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(prom, "data")}`,
        `--web.listen-address=${PROMETHEUS}`,
    ]);

    for (const n of nodes) {
        await waitFor(`${n.pi.name}'s HAProxy stand-in`, 10_000, () => run("ip", ["netns", "exec", n.ns, "curl", "-sf", "-o", "/dev/null", `http://127.0.0.1:${lb.statsPort}${HAPROXY_HEALTH_PATH}`]).status === 0);
    }
    // Both node_exporters up before keepalived starts, so Prometheus sees every value the hooks write.
    await waitFor("Prometheus scraping both Pis", 15_000, () => {
        const up = run("ip", ["netns", "exec", CLIENT, "curl", "-sS", "--fail", "--max-time", "1", "-G", `http://${PROMETHEUS}/api/v1/query`, "--data-urlencode", 'query=up{job=~"host-.*"} == 1']);
        const seen = up.status === 0 ? (JSON.parse(up.stdout) as { data: { result: Sample[] } }).data.result.length : 0;
        return seen === nodes.length || `${seen} of ${nodes.length} up; prometheus log:\n${logOf("prometheus/prometheus.log")}`;
    });
    for (const n of nodes) startKeepalived(n);
}, 40_000);

afterAll(async () => {
    // Stopped as systemd would; the exit hook's SIGKILL is for whatever does not stop.
    await lab.stopAll();
    lab.remove();
    if (measured.length > 0) console.log(`keepalived failover, measured:\n  ${measured.join("\n  ")}`);
    const left = must("ip", ["netns", "list"])
        .split("\n")
        .filter((l) => l.startsWith(PREFIX));
    expect(left).toEqual([]);
}, 30_000);

describe("the dev stack's virtual IP, moved by keepalived", () => {
    it("goes to the preferred Pi alone within 15 s; the hooks' gauges say so and the client reaches it there", async () => {
        const ms = await waitFor(`${preferred.pi.name} alone holding ${lb.virtualIp}`, 15_000, () => heldBy(preferred));
        measured.push(`first election: ${ms} ms after keepalived started`);
        for (const n of nodes) {
            expect(textfile(n)).toContain(`${VRRP_MASTER_METRIC}{vrrp_instance="${VRRP_INSTANCE}"} ${n === preferred ? 1 : 0}\n`);
            promtoolCheckMetrics(textfile(n));
        }
        await waitFor(`the client reaching ${preferred.pi.name}`, 3000, () => viaVirtualIp() === preferred.pi.name || viaVirtualIp());
        // As its description warns, the alert fires once when the load balancer is first deployed.
        await waitFor(`${MOVED} for ${preferred.instance}`, 10_000, movedFor(preferred));
    });

    it("moves to the standby within 10 s once the holder's HAProxy stops answering, and Prometheus says where it went", async () => {
        const config = readFileSync(preferred.config, "utf8");
        const [interval, fall] = [confSetting(config, "interval"), confSetting(config, "fall")];
        const start = Date.now();
        await lab.stop(preferred.haproxy, "SIGKILL");
        const ms = await waitFor(`${standby.pi.name} alone holding ${lb.virtualIp}`, 10_000, () => heldBy(standby));
        // Not at the first failed check: `fall` of them, `interval` apart.
        expect(ms).toBeGreaterThan((fall - 1) * interval * 1000 - 500);
        expect(keepalivedSays(preferred, "Entering FAULT STATE")).toBe(1);
        for (const n of nodes) promtoolCheckMetrics(textfile(n));
        await waitFor(`the client reaching ${standby.pi.name}`, 3000, () => viaVirtualIp() === standby.pi.name || viaVirtualIp());
        await waitFor(`${MOVED} for ${standby.instance} alone`, 10_000, movedFor(standby));
        measured.push(`HAProxy check failing: address moved after ${ms} ms, ${MOVED} firing after ${Date.now() - start} ms`);
    });

    it("takes the recovered Pi back as a standby without moving the address back to it (nopreempt)", async () => {
        const backups = keepalivedSays(preferred, "Entering BACKUP STATE");
        startHaproxyStandIn(preferred);
        await waitFor(`${preferred.pi.name} back in BACKUP`, 15_000, () => keepalivedSays(preferred, "Entering BACKUP STATE") > backups || state());
        // Without nopreempt the preferred Pi takes the address once its master-down timer runs
        // out while it hears the lower-priority holder: 3 adverts and a skew, about 3.4 s (seen
        // with nopreempt removed). Waiting past that shows it stands by. The next test relies on it.
        const advert = confSetting(readFileSync(preferred.config, "utf8"), "advert_int");
        await sleep((3 * advert + 3) * 1000);
        expect(heldBy(standby)).toBe(true);
        expect(viaVirtualIp()).toBe(standby.pi.name);
    });

    it("moves back to the preferred Pi within 10 s when the holder is lost outright: keepalived killed, cable pulled", async () => {
        expect(heldBy(standby)).toBe(true);
        const start = Date.now();
        // A Pi losing power: every process of it gone without a word, so no priority-0 advert
        // says goodbye and the standby has to notice the silence; then off the switch. In the
        // other order keepalived would see its carrier go and release the address itself.
        await Promise.all([standby.keepalived, standby.haproxy, standby.exporter].map((c) => lab.stop(c, "SIGKILL")));
        must("ip", ["-n", SWITCH, "link", "set", standby.port, "down"]);
        const ms = await waitFor(`${preferred.pi.name} holding ${lb.virtualIp}`, 10_000, () => (holds(preferred) && gauge(preferred) === 1) || state());
        // Killed, keepalived released nothing: the address is still on the dead Pi's eth0, and its
        // gauge still says 1, as the hook wrote when it took over. Prometheus can no longer scrape
        // it, which is what keeps that stale 1 out of the rules.
        expect(holds(standby)).toBe(true);
        expect(gauge(standby)).toBe(1);
        await waitFor(`the client reaching ${preferred.pi.name}`, 3000, () => viaVirtualIp() === preferred.pi.name || viaVirtualIp());
        await waitFor(`${MOVED} for ${preferred.instance} alone`, 10_000, movedFor(preferred));
        measured.push(`holder lost: address moved after ${ms} ms, ${MOVED} firing after ${Date.now() - start} ms`);
        const up = prometheus<{ result: Sample[] }>("query", `up{instance="${standby.instance}"}`).result;
        expect(up.map((s) => s.value[1])).toEqual(["0"]);
    });

    it("never had both Pis claim the address: LoadBalancerVirtualIpHeldTwice never fired, and was pending for no more than a handover's scrape or two", () => {
        // Every evaluation where its expression held left an ALERTS sample, pending before firing.
        // During a handover the old holder's hook can write its 0 a scrape after the new holder's
        // 1 (later still on a loaded machine): that overlap is what the rule's `for: 1m` absorbs.
        const samples = (state: string) =>
            prometheus<{ result: Sample[] }>("query", `count_over_time(ALERTS{alertname="LoadBalancerVirtualIpHeldTwice",alertstate="${state}"}[10m])`).result.reduce((n, s) => n + Number(s.value[1]), 0);
        expect(samples("firing")).toBe(0);
        const pending = samples("pending");
        measured.push(`HeldTwice pending for ${pending} one-second evaluations in all`);
        expect(pending).toBeLessThanOrEqual(6);
        // Not vacuous: the rule's own input series are there, with both Pis' samples.
        const series = prometheus<{ result: Sample[] }>("query", `count by (instance) (count_over_time(${VRRP_MASTER_METRIC}{vrrp_instance="${VRRP_INSTANCE}"}[10m]))`).result;
        expect(series.map((s) => s.metric.instance).sort()).toEqual(nodes.map((n) => n.instance).sort());
    });
});
