/**
 * Blob storage for real: Garage at the version the image pins (built from its crate), three nodes
 * each in a network namespace of its own on a bridge (a Pi each), started on exactly the
 * garage.toml picloud renders for the dev stack's nodes (their data folder aside), the RPC secret
 * and admin token in their environment as the containers get them. The cluster's init step, as
 * rendered, connects them, applies the layout and makes the buckets and keys; S3 is spoken with
 * curl's SigV4, as any client signs. One node killed: reads and writes go on. All three killed at
 * once (a power cut) and started again: every object acknowledged before is intact.
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicaIdentity } from "../components/runtime/workload";
import { replicaIdentities } from "../components/runtime/workload";
import { GARAGE_WORKLOAD, blobSpec, garageWorkload, garageZone } from "../components/tiers/blob/garage";
import { exampleStack } from "./support/exampleStacks";
import { GarageLab, GarageNode, garageKey } from "./support/garageLab";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-garage-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const lab = new NetnsLab("picloud-garage");

const dev = exampleStack("dev");
const options = dev.config.tiers.blob!;
const address = new Map(dev.config.pis.map((p) => [p.name, p.address]));
const identities: ReplicaIdentity[] = replicaIdentities(garageWorkload(options, dev.config.pis), dev.plan.placement.assignments.get(GARAGE_WORKLOAD)!, (pi) => address.get(pi)!);
const prefixLength = Number(dev.config.network!.subnet.split("/")[1]);

const KEY = garageKey("backups");
const READER = garageKey("reader");

const nodes: GarageNode[] = identities.map((identity) => ({ identity, ns: `${PREFIX}${identity.index}`, dir: path.join(lab.work, `node-${identity.index}`) }));
const garage = new GarageLab(lab, options, nodes);
const toml = (n: GarageNode) => garage.toml(n);
const start = (n: GarageNode) => garage.start(n);
const s3 = garage.s3.bind(garage);
const initStep = garage.initStep.bind(garage);

const acknowledged = new Map<string, string>();
/** Writes object `name` through `via`; remembered only when Garage acknowledged it. */
function put(via: GarageNode, name: string): number {
    const body = `object ${name}, ${randomBytes(8).toString("hex")}`;
    const r = s3(via, KEY, `backups/${name}`, body);
    if (r.code === 200) acknowledged.set(name, body);
    return r.code;
}

beforeAll(async () => {
    expect(identities).toHaveLength(3);
    lab.addSwitch(SWITCH);
    nodes.forEach((n, i) => lab.addHost(n.ns, SWITCH, `port${i}`, `${n.identity.address}/${prefixLength}`));
    nodes.forEach(start);
    const declared = { ...options, keys: { ...options.keys, reader: { buckets: { backups: "read" as const } } } };
    const r = await initStep([KEY, READER], declared);
    expect(r.status, `${r.stdout}\n${r.stderr}\n${garage.logs()}`).toBe(0);
    expect(r.stdout).toContain("applied layout version 1");
    expect(r.stdout).toContain("created bucket backups");
    await waitFor("a first write is acknowledged", 30_000, () => put(nodes[0], "first") === 200, { intervalMs: 500 });
}, 240_000);
afterAll(async () => {
    await lab.stopAll();
    lab.remove();
});

describe("Garage on picloud's garage.toml, three nodes on three namespaced Pis", () => {
    it("lays the cluster out as declared: one role per node in its Pi's zone, three copies, and the step changes nothing the second time", async () => {
        const layout = run("ip", ["netns", "exec", nodes[1].ns, validator("garage"), "-c", toml(nodes[1]), "layout", "show"], undefined, garage.env());
        expect(layout.status, layout.stderr).toBe(0);
        for (const n of nodes) expect(layout.stdout).toMatch(new RegExp(`\\s${garageZone(n.identity)}\\s`));
        expect(layout.stdout).toContain("Current cluster layout version: 1");
        const again = await initStep([KEY, READER], { ...options, keys: { ...options.keys, reader: { buckets: { backups: "read" as const } } } });
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toContain("the layout is as declared");
        expect(again.stdout).not.toContain("imported key");
    });

    it("gives each key exactly its declared access: a read-only key reads and may not write", () => {
        expect(put(nodes[1], "by-writer")).toBe(200);
        expect(s3(nodes[2], READER, "backups/by-writer").code).toBe(200);
        expect(s3(nodes[2], READER, "backups/by-reader", "nope").code).toBe(403);
        expect(s3(nodes[2], { id: KEY.id, secret: "0".repeat(64) }, "backups/by-writer").code).toBe(403);
    });

    it("serves every metric its alerts and dashboard read", () => {
        const metrics = run("ip", ["netns", "exec", nodes[0].ns, "curl", "-sS", `http://${nodes[0].identity.address}:${options.adminPort}/metrics`]).stdout;
        const spec = blobSpec(options, identities);
        const exprs = [...spec.alertRules.map((r) => r.expr), ...spec.dashboard.panels.map((p) => p.expr)];
        const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b([a-z_]+)\{job=/g)].map((m) => m[1])).filter((n) => n !== "up"));
        expect(names.size).toBeGreaterThan(5);
        const served = new Set([...metrics.matchAll(/^([a-z_]+)[{ ]/gm)].map((m) => m[1]));
        expect([...names].filter((n) => !served.has(n))).toEqual([]);
    });

    it("goes on reading and writing with one node killed", async () => {
        for (let i = 0; i < 20; i++) expect(put(nodes[i % 3], `before-${i}`)).toBe(200);
        const gone = nodes[2];
        await lab.stop(gone.process, "SIGKILL");
        const started = Date.now();
        await waitFor("a write through a surviving node is acknowledged", 30_000, () => put(nodes[0], "after-kill") === 200, { intervalMs: 250 });
        console.log(`garage: first write acknowledged ${Date.now() - started} ms after a node was killed`);
        for (let i = 0; i < 20; i++) expect(put(nodes[i % 2], `degraded-${i}`)).toBe(200);
        for (const [name, body] of acknowledged) {
            const r = s3(nodes[1], KEY, `backups/${name}`);
            expect(r.code, name).toBe(200);
            expect(r.body).toBe(body);
        }
        start(gone);
        await waitFor("the killed node is back in the cluster", 60_000, () => s3(gone, KEY, "backups/after-kill").code === 200, { intervalMs: 500 });
    }, 150_000);

    it("keeps every acknowledged object through a power cut of all three nodes at once", async () => {
        for (let i = 0; i < 30; i++) expect(put(nodes[i % 3], `cut-${i}`)).toBe(200);
        const count = acknowledged.size;
        await Promise.all(nodes.map((n) => lab.stop(n.process, "SIGKILL")));
        nodes.forEach(start);
        const restarted = Date.now();
        await waitFor("every node reports the cluster healthy again", 90_000, () => nodes.every((n) => garage.healthy(n)), { intervalMs: 500, context: () => garage.logs() });
        console.log(`garage: every node healthy again ${Date.now() - restarted} ms after all three were started again`);
        const lost: string[] = [];
        for (const [name, body] of acknowledged) {
            const r = s3(nodes[Number(name.length % 3)], KEY, `backups/${name}`);
            if (r.code !== 200 || r.body !== body) lost.push(`${name}: ${r.code}`);
        }
        console.log(`garage: ${count} objects acknowledged before the power cut, ${count - lost.length} intact after`);
        expect(lost).toEqual([]);
        expect(count).toBeGreaterThanOrEqual(70);
    }, 150_000);
});
