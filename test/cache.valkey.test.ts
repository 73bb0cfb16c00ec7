/**
 * The cache for real: Debian's Redis 7 standing in for Valkey (the files picloud renders, the
 * Valkey-only settings left out), three nodes and three Sentinels on three namespaced Pis at the
 * dev stack's addresses (the cache's defaults), each started by the start script picloud renders, the password in its
 * environment. The primary is SIGKILLed: the Sentinels promote a replica and a client that asks
 * them writes again within 10 s. The old primary, started again by its script, comes back as a
 * replica. A primary that restarts empty before the Sentinels noticed has them fail over first,
 * so its replicas keep their data.
 */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replicaIdentities } from "../components/runtime/workload";
import { cacheSchema } from "../components/tiers/cache/config";
import { VALKEY_DATA_IN_CONTAINER, VALKEY_WORKLOAD } from "../components/tiers/cache/valkey";
import { exampleStack } from "./support/exampleStacks";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { type CacheHost, ValkeyLab } from "./support/valkeyLab";

const PREFIX = `pct-valkey-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const lab = new NetnsLab("picloud-valkey");

const dev = exampleStack("dev");
// The cache's defaults; a node and a Sentinel on each of dev's three Pis, as placement puts them there.
const options = cacheSchema.parse({});
const address = new Map(dev.config.pis.map((p) => [p.name, p.address]));
const identities = replicaIdentities({ name: VALKEY_WORKLOAD, data: { containerPath: VALKEY_DATA_IN_CONTAINER } }, dev.config.pis.map((p) => p.name), (pi) => address.get(pi)!);
const prefixLength = Number(dev.config.network!.subnet.split("/")[1]);
const hosts: CacheHost[] = identities.map((identity) => ({ identity, ns: `${PREFIX}${identity.index}`, dir: path.join(lab.work, `pi-${identity.index}`) }));
const cache = new ValkeyLab(lab, options, hosts);
const [first] = hosts;

beforeAll(async () => {
    expect(identities).toHaveLength(3);
    lab.addSwitch(SWITCH);
    hosts.forEach((h, i) => lab.addHost(h.ns, SWITCH, `port${i}`, `${h.identity.address}/${prefixLength}`));
    hosts.forEach((h) => cache.startNode(h));
    await cache.settled(first);
    hosts.forEach((h) => cache.startSentinel(h));
    await cache.sentinelsAgree(first);
}, 120_000);
afterAll(async () => {
    await lab.stopAll();
    lab.remove();
});

describe("Valkey's nodes and Sentinels on picloud's files, three namespaced Pis (Redis 7 standing in)", () => {
    it("forms one primary (node 0) and two replicas, and refuses a client without the password", () => {
        expect(hosts.map((h) => cache.role(h))).toEqual(["master", "slave", "slave"]);
        const r = cache.cli(hosts[1], first.identity, options.port, ["PING"]);
        expect(r.out).toContain("PONG");
        expect(cache.cli(hosts[1], first.identity, options.port, ["SET", "k", "v"], 3, null).out).toContain("NOAUTH");
        expect(cache.cli(hosts[1], first.identity, options.sentinelPort, ["SENTINEL", "masters"], 3, null).out).toContain("NOAUTH");
        expect(cache.cli(hosts[1], first.identity, options.port, ["PING"], 3, "wrong").out).toMatch(/^(NOAUTH|WRONGPASS)/);
        expect(cache.node(first, first, ["CONFIG", "GET", "maxmemory"])).toBe(`maxmemory\n${192 * 1024 * 1024}`);
        expect(cache.node(first, first, ["CONFIG", "GET", "protected-mode"])).toBe("protected-mode\nyes");
    });

    it("fails over when the primary is killed: a Sentinel-aware client writes again within 10 s, and the old primary returns as a replica", async () => {
        for (let i = 0; i < 100; i++) expect(cache.write(hosts[2], `before-${i}`, String(i))).toBe(true);
        const { ms, primary, old } = await cache.failover(hosts[2]);
        console.log(`cache failover: writes acknowledged again ${(ms / 1000).toFixed(1)} s after the primary was killed (down-after ${options.downAfterSeconds} s)`);
        expect(old).toBe(first);
        expect(primary).not.toBe(first);
        expect(ms).toBeLessThan(10_000);
        // Every write acknowledged before the kill is on the new primary.
        expect(Number(cache.node(primary, primary, ["EXISTS", ...Array.from({ length: 100 }, (_, i) => `before-${i}`)]))).toBe(100);

        cache.startNode(old);
        await waitFor("the old primary to come back as a replica of the new one", 60_000, () => {
            const info = cache.node(old, old, ["INFO", "replication"]);
            return (/role:slave/.test(info) && info.includes(`master_host:${primary.identity.address}`) && /master_link_status:up/.test(info)) || info.replace(/\s+/g, " ").slice(0, 120);
        }, { intervalMs: 500, context: () => cache.logs() });
        expect(cache.node(old, old, ["GET", "before-42"])).toBe("42");
        expect(cache.master(old)).toBe(primary.identity.address);
        await cache.settled(primary);
    }, 120_000);

    it("a primary restarted empty before the Sentinels noticed has a replica take over first, so no data is wiped", async () => {
        const primary = cache.host(cache.master(first)!);
        for (let i = 0; i < 50; i++) expect(cache.write(first, `kept-${i}`, String(i))).toBe(true);
        await waitFor("the writes to reach every replica", 10_000, () => hosts.every((h) => cache.node(h, h, ["GET", "kept-49"]) === "49"));
        await cache.killNode(primary);
        cache.startNode(primary);
        const other = hosts.find((h) => h !== primary)!;
        await waitFor("another node to be the primary", 60_000, () => { const m = cache.master(other); return (m !== undefined && m !== primary.identity.address) || String(m); }, { intervalMs: 500, context: () => cache.logs() });
        const next = cache.host(cache.master(other)!);
        await cache.settled(next);
        expect(cache.role(primary)).toBe("slave");
        expect(cache.nodeLog(primary)).toMatch(/restarts empty, so a replica takes over first\n.*answers: OK/);
        for (const h of hosts) expect(cache.node(h, h, ["GET", "kept-49"]), h.identity.address).toBe("49");
    }, 120_000);
});
