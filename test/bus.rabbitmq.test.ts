/**
 * The bus's RabbitMQ option for real: Debian's RabbitMQ 3.10 stands in for the image's 4.x, three
 * nodes in network namespaces at the addresses placement gives a three-Pi stack, each on the
 * rabbitmq.conf, enabled_plugins and Erlang resolver file picloud renders (settings only 4.x knows
 * left out), with the environment the containers get and one cookie. The rendered definitions
 * step makes the quorum queue over RabbitMQ's CLI. The node leading the queue is killed: the
 * queue goes on taking and delivering, and every message it confirmed is delivered. Each node's
 * Prometheus plugin serves every series the alerts read. A lost Pi's node moves to the spare Pi:
 * the rendered join step forgets the lost node, and the new one joins by peer discovery.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStackConfig } from "../components/config/schema";
import {
    RABBITMQ_FILES,
    RABBITMQ_WORKLOAD,
    containerCli,
    rabbitmqDefinitions,
    rabbitmqNodeName,
    rabbitmqSpec,
    rabbitmqWorkload,
    renderDefinitionsStep,
    renderEnabledPlugins,
    renderInetrc,
    renderRabbitmqConf,
    renderRabbitmqJoin,
    watermarkBytes,
} from "../components/tiers/bus/rabbitmq";
import { replicaIdentities } from "../components/runtime/workload";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run, runAsync } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-rmq-${process.pid}-`;
const lab = new NetnsLab("picloud-rabbitmq");
const PASSWORD = "lab-password-not-a-secret-0123456789";
const COOKIE = "lab-cookie-not-a-secret-0123456789";

// Four Pis: the nodes on the first three, the fourth the spare a lost Pi's node moves to.
const pis = [21, 22, 23, 24].map((n, i) => ({ name: `pi-${i + 1}`, address: `10.79.0.${n}`, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaWQtkkIJq7Iza/VlBf4dpDjLz1Rser9LqnV8bTJjAk", memoryMb: 4096, storage: "ssd", model: "pi4" }));
const config = parseStackConfig({
    // The lab's disk is shared with everything else on the machine: a small disk limit keeps the alarm out of the way.
    values: { pis, tiers: { bus: { rabbitmq: { diskFreeLimitMb: 100, vhosts: { shop: { users: { orders: {} }, queues: { orders: {} } } } } } } },
    secretKeys: ["sshPrivateKey"],
});
const options = config.tiers.bus!.rabbitmq!;
const workload = rabbitmqWorkload(options, config.pis);
const addressOf = (pi: string) => pis.find((p) => p.name === pi)!.address;
let identities = replicaIdentities(workload, ["pi-1", "pi-2", "pi-3"], addressOf);
const nodes = identities.map((identity) => ({ identity, ns: `${PREFIX}${identity.index}`, dir: path.join(lab.work, `node-${identity.index}`) }));
const servers = new Map<number, ChildProcess>();
let addresses = identities.map((m) => `${m.address}:${options.amqpPort}`).join(",");

/** What a node's programs find in their environment: the container's, with the lab's paths. */
function nodeEnv(i: number): Record<string, string> {
    const { identity, dir } = nodes[i];
    return {
        ...workload.env,
        ...workload.perReplica!(identity, identities).env,
        ERL_INETRC: path.join(dir, "inetrc"),
        HOME: path.join(dir, "home"),
        // The image's layout: its conf.d with its defaults, picloud's file last.
        RABBITMQ_CONFIG_FILES: path.join(dir, "conf.d"),
        RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
        RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
        RABBITMQ_LOG_BASE: path.join(dir, "log"),
        RABBITMQ_PID_FILE: path.join(dir, "rabbitmq.pid"),
    };
}

function prepare(i: number): void {
    const { ns, dir } = nodes[i];
    for (const d of ["home", "mnesia", "log", "conf.d"]) mkdirSync(path.join(dir, d), { recursive: true });
    // The official image's own default, which lets guest in from anywhere: picloud's file must win over it.
    writeFileSync(path.join(dir, "conf.d", "10-defaults.conf"), "loopback_users.guest = false\nlog.console = true\n");
    writeFileSync(path.join(dir, "conf.d", path.basename(RABBITMQ_FILES.conf.inContainer)), renderRabbitmqConf(identities, options, "rabbitmq3.10"));
    writeFileSync(path.join(dir, "enabled_plugins"), renderEnabledPlugins());
    writeFileSync(path.join(dir, "inetrc"), renderInetrc(config.pis));
    const cookie = path.join(dir, "home", ".erlang.cookie");
    writeFileSync(cookie, COOKIE);
    chmodSync(cookie, 0o400);
    // Erlang's port mapper, started here so it is the lab's process (rabbitmq-server would daemonise one).
    lab.start(ns, path.join(dir, "epmd.log"), ["epmd"]);
}

function start(i: number): void {
    servers.set(i, lab.start(nodes[i].ns, path.join(nodes[i].dir, "rabbitmq.log"), [validator("rabbitmq-server")], nodeEnv(i)));
}

/** A CLI in node `i`'s namespace, speaking to node `i` (RABBITMQ_NODENAME), as the step's `docker exec` does. */
function cli(i: number, tool: "rabbitmqctl" | "rabbitmq-queues"): string[] {
    const env = nodeEnv(i);
    return ["env", ...["HOME", "ERL_INETRC", "RABBITMQ_NODENAME", "RABBITMQ_USE_LONGNAME"].map((k) => `${k}=${env[k]}`), validator(tool)];
}

function ctl(i: number, args: string[]): { status: number | null; out: string } {
    const [file, ...rest] = cli(i, "rabbitmqctl");
    const r = run("ip", ["netns", "exec", nodes[i].ns, file, ...rest, ...args]);
    return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

function definitionsStep(via = 0) {
    const script = path.join(lab.work, `definitions-${via}.sh`);
    writeFileSync(script, renderDefinitionsStep({ cli: { rabbitmqctl: cli(via, "rabbitmqctl"), rabbitmqQueues: cli(via, "rabbitmq-queues") }, options, nodes: nodes.length, waitSeconds: 150 }));
    return runAsync("ip", ["netns", "exec", nodes[via].ns, "bash", script], JSON.stringify(rabbitmqDefinitions(options, nodes.length, { orders: PASSWORD })));
}

function amqp(via: number, args: string[], password = PASSWORD): Promise<Record<string, number[] | number | string | boolean>> {
    return runAsync("ip", ["netns", "exec", nodes[via].ns, validator("pika-python"), path.join(__dirname, "support", "amqp.py"), ...args], undefined, { AMQP_PASSWORD: password }).then((r) => {
        if (r.status !== 0) throw new Error(`amqp.py ${args[0]} failed (${r.status}): ${r.stderr}`);
        return JSON.parse(r.stdout) as Record<string, number[] | number | string | boolean>;
    });
}

/** Whether RabbitMQ's guest user gets in over AMQP, from node `from`'s namespace to `to`. */
function guest(from: number, to: string) {
    return amqp(from, ["connect", `${to}:${options.amqpPort}`, "/", "guest"], "guest");
}

function metrics(i: number): string {
    return run("ip", ["netns", "exec", nodes[i].ns, "curl", "-fsS", "--max-time", "10", `http://127.0.0.1:${options.prometheusPort}/metrics`]).stdout;
}

/** The queue's members as `rabbitmq-queues quorum_status` reports them, asked of node `via`. */
function quorumStatus(via: number): { "Node Name": string; "Raft State": string }[] | string {
    const [file, ...rest] = cli(via, "rabbitmq-queues");
    const r = run("ip", ["netns", "exec", nodes[via].ns, "timeout", "20", file, ...rest, "-q", "quorum_status", "orders", "--vhost", "shop", "--formatter", "json"]);
    try {
        return JSON.parse(r.stdout) as { "Node Name": string; "Raft State": string }[];
    } catch {
        return `${r.stdout}${r.stderr}`.slice(0, 300);
    }
}

let guestBefore: Record<string, Record<string, unknown>> = {};
const logs = () => nodes.map((n) => `${n.identity.pi}: ${run("tail", ["-n", "15", path.join(n.dir, "rabbitmq.log")]).stdout}`).join("\n");

beforeAll(async () => {
    lab.addSwitch(`${PREFIX}sw`);
    nodes.forEach((n, i) => lab.addHost(n.ns, `${PREFIX}sw`, `port${i}`, `${n.identity.address}/24`));
    nodes.forEach((_, i) => prepare(i));
    nodes.forEach((_, i) => start(i));
    await waitFor("node 0 to take AMQP connections", 120_000, () => run("ip", ["netns", "exec", nodes[0].ns, "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${options.amqpPort}`]).status === 0, { intervalMs: 1000, context: logs });
    // Before the step: guest exists, but only from its node's own Pi, whatever the image's defaults say.
    guestBefore = { loopback: await guest(0, "127.0.0.1"), remote: await guest(1, identities[0].address) };
    const r = await definitionsStep();
    expect(r.status, `${r.stdout}\n${r.stderr}\n${logs()}`).toBe(0);
}, 240_000);
afterAll(async () => {
    await lab.stopAll();
    lab.remove();
});

describe(`RabbitMQ on picloud's rabbitmq.conf, ${RABBITMQ_WORKLOAD} nodes on three namespaced Pis`, () => {
    it("forms one cluster, makes the quorum queue on three members, removes guest, and changes nothing the second time", async () => {
        const status = JSON.parse(ctl(1, ["-q", "cluster_status", "--formatter", "json"]).out) as { running_nodes: string[]; cluster_name: string };
        expect(status.running_nodes.sort()).toEqual(identities.map(rabbitmqNodeName).sort());
        expect(status.cluster_name).toBe("picloud");
        const members = quorumStatus(2);
        expect(typeof members === "string" ? members : members.map((m) => m["Node Name"]).sort()).toEqual(identities.map(rabbitmqNodeName).sort());
        expect(guestBefore.loopback).toEqual({ connected: true });
        expect(guestBefore.remote).toEqual({ error: "ProbableAuthenticationError" });
        expect(ctl(0, ["-q", "list_users"]).out).not.toMatch(/^guest/m);
        expect(await guest(0, "127.0.0.1")).toEqual({ error: "ProbableAuthenticationError" });
        expect(ctl(0, ["-q", "authenticate_user", "orders", PASSWORD]).status).toBe(0);
        expect(ctl(0, ["-q", "authenticate_user", "orders", "wrong-password"]).status).not.toBe(0);
        expect(ctl(0, ["-q", "list_policies", "-p", "shop"]).out).toContain('"overflow":"reject-publish"');
        const again = await definitionsStep(1);
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toContain("picloud: ok quorum queue orders (shop), 3 members");
        expect(again.stdout).not.toContain("removed the guest user");
    });

    it("sizes the WAL and the memory watermark as rendered, and serves every series the alerts read", async () => {
        expect(ctl(0, ["eval", "application:get_env(ra, wal_max_size_bytes)."]).out).toContain(`{ok,${options.walMaxMb * 1024 * 1024}}`);
        const read = new Set(rabbitmqSpec(options, 3, []).alertRules.flatMap((r) => [...r.expr.matchAll(/([a-z_]+)\{/g)].map((m) => m[1])).filter((name) => name !== "up"));
        expect(read.size).toBeGreaterThan(10);
        let scraped = "";
        // A queue's own series appear once its leader has reported its statistics (every few seconds).
        await waitFor("every node's plugin to serve every series the alerts read", 30_000, () => {
            scraped = nodes.map((_, i) => metrics(i)).join("\n");
            const served = new Set([...scraped.matchAll(/^([a-z_]+)[{ ]/gm)].map((m) => m[1]));
            const missing = [...read].filter((name) => !served.has(name));
            return missing.length === 0 || `missing ${missing.join(", ")}`;
        }, { intervalMs: 1000 });
        expect(scraped).toMatch(new RegExp(`^rabbitmq_resident_memory_limit_bytes ${watermarkBytes(options)}$`, "m"));
    });

    it("loses the node leading the queue: the queue goes on taking and delivering, and every confirmed message is delivered", async () => {
        const before = await amqp(1, ["publish", addresses, "shop", "orders", "orders", "0", "50", "30"]);
        expect(before.confirmed).toHaveLength(50);
        const members = quorumStatus(0);
        if (typeof members === "string") throw new Error(members);
        const leader = identities.findIndex((m) => rabbitmqNodeName(m) === members.find((x) => x["Raft State"] === "leader")?.["Node Name"]);
        expect(leader).toBeGreaterThanOrEqual(0);
        const survivor = (leader + 1) % nodes.length;
        await lab.stop(servers.get(leader), "SIGKILL");
        const killedAt = Date.now();
        const after = await amqp(survivor, ["publish", addresses, "shop", "orders", "orders", "50", "50", "60"]);
        const seconds = (Date.now() - killedAt) / 1000;
        expect(after.confirmed, logs()).toHaveLength(50);
        const received = (await amqp(survivor, ["consume", addresses, "shop", "orders", "orders", "3"])).received as number[];
        const confirmed = [...(before.confirmed as number[]), ...(after.confirmed as number[])];
        console.log(`rabbitmq: leader ${identities[leader].pi} killed; the next 50 messages all confirmed within ${seconds.toFixed(1)} s of the kill (${after.retries} retries); ${received.length} delivered of ${confirmed.length} confirmed`);
        expect(confirmed.filter((n) => !received.includes(n))).toEqual([]);

        // The killed node comes back and rejoins the queue.
        start(leader);
        await waitFor(
            "the restarted node to be a member of the queue again",
            120_000,
            () => {
                const m = quorumStatus(survivor);
                return (typeof m !== "string" && m.filter((x) => x["Raft State"] === "leader" || x["Raft State"] === "follower").length === 3) || JSON.stringify(m);
            },
            { intervalMs: 2000, context: logs },
        );
    }, 300_000);

    it("replaces the node of a lost Pi on the spare: the join step forgets the lost node, and the new one joins by peer discovery", async () => {
        // pi-3 is lost; placement moves node 2 to pi-4, where the others' resolver file already finds it.
        await lab.stop(servers.get(2), "SIGKILL");
        identities = replicaIdentities(workload, ["pi-1", "pi-2", "pi-4"], addressOf, ["pi-1", "pi-2", "pi-3"]);
        expect(identities[2].joins).toBe(true);
        const script = path.join(lab.work, "join.sh");
        writeFileSync(script, renderRabbitmqJoin({ cli: { rabbitmqctl: cli(0, "rabbitmqctl"), rabbitmqQueues: cli(0, "rabbitmq-queues") }, members: identities }));
        const join = await runAsync("ip", ["netns", "exec", nodes[0].ns, "bash", script]);
        expect(join.status, `${join.stdout}${join.stderr}`).toBe(0);
        expect(join.stdout).toContain("picloud: forgot rabbit@pi-3");
        const members = quorumStatus(1);
        expect(typeof members === "string" ? members : members.map((m) => m["Node Name"]).sort()).toEqual(["rabbit@pi-1", "rabbit@pi-2"]);
        // Run again, it changes nothing.
        const again = await runAsync("ip", ["netns", "exec", nodes[0].ns, "bash", script]);
        expect([again.status, again.stdout]).toEqual([0, ""]);

        nodes[2] = { identity: identities[2], ns: `${PREFIX}spare`, dir: path.join(lab.work, "node-spare") };
        lab.addHost(nodes[2].ns, `${PREFIX}sw`, "port3", `${identities[2].address}/24`);
        prepare(2);
        start(2);
        addresses = identities.map((m) => `${m.address}:${options.amqpPort}`).join(",");
        await waitFor(
            "rabbit@pi-4 to run in the cluster",
            120_000,
            () => {
                const r = ctl(0, ["-q", "cluster_status", "--formatter", "json"]);
                try {
                    const status = JSON.parse(r.out) as { running_nodes: string[]; disk_nodes: string[] };
                    return (status.running_nodes.includes("rabbit@pi-4") && !status.disk_nodes.includes("rabbit@pi-3")) || r.out.slice(0, 300);
                } catch {
                    return r.out.slice(0, 300);
                }
            },
            { intervalMs: 2000, context: logs },
        );
        // The queue still takes and delivers through the new cluster.
        const sent = await amqp(2, ["publish", addresses, "shop", "orders", "orders", "1000", "10", "30"]);
        expect(sent.confirmed).toHaveLength(10);
        const received = (await amqp(2, ["consume", addresses, "shop", "orders", "orders", "3"])).received as number[];
        expect(received.filter((n) => n >= 1000).sort((a, b) => a - b)).toEqual(sent.confirmed);
        // The step as it runs on the Pis: the CLI inside the container of the node it speaks through.
        expect(renderRabbitmqJoin({ cli: containerCli("rabbitmq-0"), members: identities })).toContain('members=" rabbit@pi-1 rabbit@pi-2 rabbit@pi-4 "');
    }, 240_000);
});
