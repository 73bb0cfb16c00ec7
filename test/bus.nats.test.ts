/**
 * The bus for real: nats-server built from its Go module at the version the image pins, three
 * nodes in network namespaces at the addresses placement gives a three-Pi stack, each on the
 * nats.conf picloud renders (the store moved), the users' passwords in their environment as the
 * containers get them. The rendered streams step makes an R3 stream over NATS's protocol. One node
 * killed: publishing goes on. All three SIGKILLed at once and started again: every message
 * JetStream acknowledged before the kill is there, counted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStackConfig } from "../components/config/schema";
import { streamReplicas } from "../components/tiers/bus/nats";
import { NatsLab } from "./support/natsLab";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-nats-${process.pid}-`;
const lab = new NetnsLab("picloud-nats");

const pis = [11, 12, 13].map((n, i) => ({ name: `pi-${i + 1}`, address: `10.77.0.${n}`, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaWQtkkIJq7Iza/VlBf4dpDjLz1Rser9LqnV8bTJjAk", memoryMb: 4096, storage: "ssd", model: "pi4" }));
const config = parseStackConfig({
    values: { pis, tiers: { bus: { accounts: { shop: { users: { orders: {} }, streams: { ORDERS: { subjects: ["orders.>"] } } } } } } },
    secretKeys: ["sshPrivateKey"],
});
const options = config.tiers.bus!;
const bus = new NatsLab(lab, options, PREFIX, pis.map((p) => p.address));
const { nodes } = bus;
const start = (i: number) => bus.start(i);
const nats = (via: number, args: string[]) => bus.nats(via, "orders", args);
const logs = () => bus.logs();
const streamsStep = () => bus.streamsStep();

const acknowledged: number[] = [];
/** Publishes message `n` to the stream and waits for JetStream's acknowledgement; remembered only when acknowledged. */
function publish(via: number, n: number): boolean {
    const r = nats(via, ["request", `orders.${n}`, `order ${n}`]);
    const ok = r.status === 0 && /"stream":\s*"ORDERS"/.test(r.out) && !/"error"/.test(r.out);
    if (ok) acknowledged.push(n);
    return ok;
}

function streamMessages(via: number): number | string {
    const r = nats(via, ["stream", "info", "ORDERS", "--json"]);
    try {
        return (JSON.parse(r.out) as { state: { messages: number } }).state.messages;
    } catch {
        return r.out.slice(0, 200);
    }
}

beforeAll(async () => {
    bus.network(`${PREFIX}sw`);
    nodes.forEach((_, i) => start(i));
    const r = await streamsStep();
    expect(r.status, `${r.stdout}\n${r.stderr}\n${logs()}`).toBe(0);
    expect(r.stdout).toContain("picloud: ok stream ORDERS (shop)");
}, 180_000);
afterAll(async () => {
    await lab.stopAll();
    lab.remove();
});

describe("NATS JetStream on picloud's nats.conf, three nodes on three namespaced Pis", () => {
    it("makes the declared stream with three replicas, fsyncing every message, and the step changes nothing the second time", async () => {
        const info = nats(1, ["stream", "info", "ORDERS", "--json"]);
        const parsed = JSON.parse(info.out) as { config: { num_replicas: number; subjects: string[] }; cluster: { replicas?: unknown[] } };
        expect(parsed.config.num_replicas).toBe(streamReplicas(3));
        expect(parsed.config.subjects).toEqual(["orders.>"]);
        expect(parsed.cluster.replicas).toHaveLength(2);
        const again = await streamsStep();
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toContain("picloud: ok stream ORDERS (shop)");
        const varz = run("ip", ["netns", "exec", nodes[0].ns, "curl", "-fsS", `http://127.0.0.1:${options.monitorPort}/varz`]);
        expect(JSON.parse(varz.stdout).jetstream.config.sync_always).toBe(true);
    });

    it("refuses a client without a password", () => {
        const r = run("ip", ["netns", "exec", nodes[1].ns, "timeout", "10", validator("nats"), "--server", `nats://${nodes[0].identity.address}:${options.clientPort}`, "--timeout", "3s", "pub", "orders.x", "x"]);
        expect(r.status).not.toBe(0);
        expect(`${r.stdout}${r.stderr}`).toMatch(/[Aa]uthorization/);
    });

    it("goes on publishing with one node killed, and keeps every acknowledged message through a kill of all three at once", async () => {
        for (let i = 0; i < 50; i++) expect(publish(1, i)).toBe(true);
        await bus.kill(2);
        let n = 50;
        await waitFor("a message acknowledged with one node down", 30_000, () => publish(0, n++), { intervalMs: 200, context: logs });
        for (let i = 0; i < 50; i++) publish(0, n++);
        expect(acknowledged.length).toBeGreaterThanOrEqual(100);
        start(2);
        await waitFor("the third node to be back in the stream", 60_000, () => streamMessages(2) === acknowledged.length || String(streamMessages(2)), { intervalMs: 1000, context: logs });
        for (let i = 0; i < 50; i++) publish(1, n++);

        // A power cut: every node SIGKILLed at once, then all started again.
        await Promise.all([0, 1, 2].map((i) => bus.kill(i)));
        nodes.forEach((_, i) => start(i));
        const count = acknowledged.length;
        await waitFor("the stream to answer after the restart", 90_000, () => typeof streamMessages(0) === "number" || String(streamMessages(0)), { intervalMs: 1000, context: logs });
        const kept = streamMessages(0);
        console.log(`nats power cut: ${count} messages acknowledged before the kill of all three nodes, ${kept} in the stream after the restart`);
        expect(kept).toBe(count);
    }, 240_000);
});
