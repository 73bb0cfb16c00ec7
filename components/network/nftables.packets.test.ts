/**
 * The dev stack's firewalls with real packets. Each of its three Pis is a network namespace on a
 * bridge (the switch, a namespace of its own), loaded with the ruleset rendered for it, with
 * listeners standing in for sshd and the host-network services, and one "container" namespace
 * behind a Docker-like bridge serving the Pi's published ports through a DNAT table like the one
 * Docker programs. An unfiltered probe host on the switch plays the operator's workstation and a
 * stranger. Every connection is tried first without firewalls (so a refusal later is the
 * firewall's doing), then with them; VRRP's IP protocol 112 too, to a raw socket. The tests run
 * in order: the first has no firewall, the second loads them. Nothing leaves the namespaces.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleStack } from "../../test/support/exampleStacks";
import { NetnsLab } from "../../test/support/netnsLab";
import { must } from "../../test/support/processes";
import { planNetwork } from "../cloud/network";
import { renderNftables } from "./nftables";

// Other suites use pct- too: everything here carries this prefix, and only what is listed in
// `namespaces` is ever deleted.
const PREFIX = `pct-nft-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const PROBE = `${PREFIX}probe`;
/** The operator's workstation: the only mgmt address, so SSH from the Pis themselves is refused. */
const PROBE_ADDRESS = "192.168.10.200";
const CONTAINER = { gateway: "172.17.0.1", address: "172.17.0.2" } as const;
/** What listens on each Pi itself: sshd, HAProxy, faasd's gateway, provider and metrics, HAProxy's stats, node_exporter. */
const HOST_PORTS = [22, 80, 8180, 8181, 8182, 8404, 9100];
const CONNECT_TIMEOUT_MS = 1500;

const lab = new NetnsLab("picloud-nft-packets");

const dev = exampleStack("dev");
const network = planNetwork(dev.config, dev.plan, { mgmtNetwork: `${PROBE_ADDRESS}/32` });
// dev-1's container sits on a user-defined network's bridge (Docker names them br-<id>), the
// others on docker0: both kinds the rulesets trust as "this Pi's containers".
const pis = dev.config.pis.map((pi, i) => ({ pi, ns: `${PREFIX}${pi.name}`, container: `${PREFIX}${pi.name}-c`, port: `port${i}`, bridge: i === 0 ? "br-0123456789ab" : "docker0" }));

const inNs = (ns: string, ...args: string[]) => must("ip", ["netns", "exec", ns, ...args]);

/** Plugs namespace `ns` into the switch as eth0 with `address`/24. */
function plug(ns: string, switchPort: string, address: string): void {
    must("ip", ["link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", switchPort, "netns", SWITCH]);
    must("ip", ["-n", SWITCH, "link", "set", switchPort, "master", "br0", "up"]);
    must("ip", ["-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
}

/** A long-running node script in a namespace, in its own process group; resolves once it prints "ready". */
function startListener(ns: string, ports: readonly number[]): Promise<void> {
    const script = `
        const net = require("net");
        const ports = process.argv.slice(1).map(Number);
        let up = 0;
        for (const port of ports) {
            net.createServer((s) => s.end("ok\\n")).listen(port, "0.0.0.0", () => { if (++up === ports.length) console.log("ready"); });
        }`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", script, ...ports.map(String)], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    lab.track(child);
    return new Promise((resolve, reject) => {
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        child.stdout.on("data", (d) => String(d).includes("ready") && resolve());
        child.on("exit", (code) => reject(new Error(`listener in ${ns} exited ${code}: ${err}`)));
    });
}

type Outcome = "open" | "dropped" | "refused";

/** Tries every `host:port` from one namespace at once: open (the listener answered), refused, or dropped (no answer in time). */
async function connectFrom(ns: string, targets: readonly string[]): Promise<Record<string, Outcome | string>> {
    const script = `
        const net = require("net");
        const [timeout, ...targets] = process.argv.slice(1);
        Promise.all(targets.map((t) => new Promise((resolve) => {
            const [host, port] = t.split(":");
            const s = net.connect({ host, port: Number(port) });
            const done = (outcome) => { s.destroy(); resolve([t, outcome]); };
            s.setTimeout(Number(timeout), () => done("dropped"));
            s.on("data", (d) => done(String(d).trim() === "ok" ? "open" : "answered " + d));
            s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused" : e.code));
        }))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", script, String(CONNECT_TIMEOUT_MS), ...targets], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    if (code !== 0) throw new Error(`connecting from ${ns} failed (${code}): ${err}`);
    return JSON.parse(out);
}

const nsOf = (name: string) => pis.find((p) => p.pi.name === name)!;
const addressOf = (name: string) => nsOf(name).pi.address;

/** Who connects from where: a Pi, a Pi's container, or the probe host. */
const source = (from: string): string => (from === "probe" ? PROBE : from.endsWith(" container") ? nsOf(from.replace(" container", "")).container : nsOf(from).ns);

/** The matrix: from, to Pi, port, what the firewall must do, and why. */
const MATRIX: readonly (readonly [string, string, number, Outcome, string])[] = [
    ["dev-1", "dev-3", 9100, "open", "Prometheus's Pi scrapes node_exporter (input)"],
    ["dev-2", "dev-3", 9100, "dropped", "another Pi may not"],
    ["probe", "dev-3", 9100, "dropped", "nor may the operator"],
    ["dev-2", "dev-3", 8080, "open", "a load balancer reaches the app's published port (DNAT, forward)"],
    ["dev-1", "dev-3", 8080, "open", "so does the other"],
    ["probe", "dev-3", 8080, "dropped", "nobody else does"],
    ["dev-1", "dev-3", 9797, "open", "Prometheus scrapes the app's published metrics port"],
    ["dev-2", "dev-3", 9797, "dropped", "a load balancer may not"],
    ["probe", "dev-3", 22, "open", "SSH from the operator's workstation"],
    ["dev-2", "dev-3", 22, "dropped", "SSH from another Pi is not mgmt"],
    ["probe", "dev-2", 80, "open", "clients reach a load balancer"],
    ["probe", "dev-3", 80, "dropped", "dev-3 is no load balancer"],
    ["dev-1", "dev-2", 8404, "open", "Prometheus scrapes HAProxy's stats"],
    ["dev-2", "dev-1", 8404, "dropped", "dev-1's stats are for its own Prometheus only"],
    ["probe", "dev-1", 3000, "open", "the operator reaches Grafana's published port"],
    ["dev-2", "dev-1", 3000, "dropped", "a Pi does not"],
    ["probe", "dev-2", 8181, "dropped", "faasd-provider is local to its Pi"],
    ["dev-2 container", "dev-2", 8181, "open", "faasd's gateway container reaches the provider over its bridge"],
    ["dev-1 container", "dev-1", 9100, "open", "the Prometheus container scrapes its own Pi's node_exporter"],
    ["dev-1 container", "dev-1", 22, "dropped", "a container cannot reach its Pi's sshd"],
    ["dev-2 container", "dev-2", 9100, "dropped", "nor node_exporter, on a Pi whose containers scrape nothing"],
    ["dev-3", "dev-1", 9094, "open", "the other monitoring Pi's Alertmanager gossips with dev-1's"],
    ["dev-2", "dev-1", 9094, "dropped", "a Pi without an Alertmanager does not"],
    ["dev-3", "dev-1", 9090, "open", "the other Prometheus replica scrapes dev-1's"],
    ["dev-2", "dev-1", 9090, "dropped", "a Pi without a Prometheus does not"],
];

/** Runs the whole matrix, every source at once; returns the outcome of each row. */
async function runMatrix(): Promise<Outcome[]> {
    const bySource = new Map<string, string[]>();
    for (const [from, to, port] of MATRIX) bySource.set(from, [...(bySource.get(from) ?? []), `${addressOf(to)}:${port}`]);
    const results = new Map(await Promise.all([...bySource].map(async ([from, targets]) => [from, await connectFrom(source(from), targets)] as const)));
    return MATRIX.map(([from, to, port]) => results.get(from)![`${addressOf(to)}:${port}`] as Outcome);
}

/**
 * The sources whose IP protocol 112 packets (VRRP's) reach a raw socket on `pi`, sent from each
 * of `from`. A raw socket gets a packet only after the input hook has accepted it.
 */
async function vrrpSourcesAt(pi: string, from: readonly string[]): Promise<string[]> {
    const receive = `
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.settimeout(0.1)
print("ready", flush=True)
seen, end = set(), time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        seen.add(s.recvfrom(2048)[1][0])
    except socket.timeout:
        pass
print(json.dumps(sorted(seen)), flush=True)`;
    const send = `import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)\nfor _ in range(3): s.sendto(b"picloud vrrp test", (sys.argv[1], 0))`;
    const child = spawn("ip", ["netns", "exec", nsOf(pi).ns, "python3", "-c", receive, "1.5"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d) => {
            out += d;
            if (out.includes("ready")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`receiver on ${pi} exited ${code}: ${err}`)));
    });
    for (const f of from) inNs(source(f), "python3", "-c", send, addressOf(pi));
    const code = await exited;
    if (code !== 0) throw new Error(`receiver on ${pi} exited ${code}: ${err}`);
    return JSON.parse(out.slice(out.indexOf("ready") + "ready".length));
}

const rows = (outcomes: readonly string[]) => MATRIX.map(([from, to, port, , why], i) => `${from} -> ${to}:${port} ${outcomes[i]} (${why})`);

beforeAll(async () => {
    lab.addNamespace(SWITCH);
    must("ip", ["-n", SWITCH, "link", "add", "br0", "type", "bridge"]);
    must("ip", ["-n", SWITCH, "link", "set", "br0", "up"]);
    lab.addNamespace(PROBE);
    plug(PROBE, "probe", PROBE_ADDRESS);
    const listeners: Promise<void>[] = [];
    for (const { pi, ns, container, port, bridge } of pis) {
        lab.addNamespace(ns);
        plug(ns, port, pi.address);
        // The Pi's Docker: a bridge with one container behind it, and DNAT of the Pi's published
        // ports to it, except from that bridge itself, as Docker's DOCKER chain does.
        lab.addNamespace(container);
        must("ip", ["link", "add", "vc", "netns", ns, "type", "veth", "peer", "name", "eth0", "netns", container]);
        inNs(ns, "ip", "link", "add", bridge, "type", "bridge");
        inNs(ns, "ip", "addr", "add", `${CONTAINER.gateway}/16`, "dev", bridge);
        inNs(ns, "ip", "link", "set", bridge, "up");
        inNs(ns, "ip", "link", "set", "vc", "master", bridge, "up");
        inNs(container, "ip", "addr", "add", `${CONTAINER.address}/16`, "dev", "eth0");
        inNs(container, "ip", "link", "set", "eth0", "up");
        inNs(container, "ip", "route", "add", "default", "via", CONTAINER.gateway);
        inNs(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1");
        // TCP listeners stand in for what is published (Alertmanager's gossip is published on udp too).
        const published = [...new Set((network.publishedPorts.get(pi.name) ?? []).filter((p) => p.protocol === "tcp").map((p) => p.port))];
        const nat = `table ip nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local iifname != "${bridge}" tcp dport { ${published.join(", ")} } dnat to ${CONTAINER.address}\n\t}\n}\n`;
        inNs(ns, "nft", "-f", writeFile(`${pi.name}-docker-nat.nft`, nat));
        listeners.push(startListener(ns, HOST_PORTS), startListener(container, published));
    }
    await Promise.all(listeners);
}, 60_000);

afterAll(() => lab.remove());

function writeFile(name: string, text: string): string {
    const file = path.join(lab.work, name);
    writeFileSync(file, text);
    return file;
}

describe("the dev stack's firewalls, with real packets", () => {
    it("without firewalls every connection of the matrix goes through (the setup works)", async () => {
        const outcomes = await runMatrix();
        expect(rows(outcomes)).toEqual(rows(MATRIX.map(() => "open")));
        expect(await vrrpSourcesAt("dev-1", ["dev-2", "dev-3", "probe"])).toEqual([addressOf("dev-2"), addressOf("dev-3"), PROBE_ADDRESS]);
    });

    it("with each Pi's ruleset loaded, only the declared flows go through; the rest are dropped, not refused", async () => {
        for (const { pi, ns } of pis) inNs(ns, "nft", "-f", writeFile(`${pi.name}.nft`, renderNftables(pi.name, network)));
        const outcomes = await runMatrix();
        expect(rows(outcomes)).toEqual(rows(MATRIX.map(([, , , expected]) => expected)));
    });

    it("VRRP adverts reach a load-balancer Pi from the other one only", async () => {
        expect(await vrrpSourcesAt("dev-1", ["dev-2", "dev-3", "probe"])).toEqual([addressOf("dev-2")]);
        expect(await vrrpSourcesAt("dev-2", ["dev-1", "dev-3", "probe"])).toEqual([addressOf("dev-1")]);
    });

    it("counts what it dropped: the input and forward drop counters moved", () => {
        const counters = (ns: string) => inNs(ns, "nft", "list", "table", "inet", "picloud").match(/counter packets \d+ bytes \d+ drop comment "not declared"/g) ?? [];
        const dev3 = counters(nsOf("dev-3").ns);
        expect(dev3).toHaveLength(2);
        for (const c of dev3) expect(c).not.toMatch(/packets 0 /);
    });
});
