/**
 * The registry's names for real: the prod stack's three etcd members (Debian's etcd, picloud's
 * flags) and CoreDNS built from its Go module at the image's version, each Pi a network namespace
 * on one bridge. Three members and one Pi without a member (edge-1) run the Corefiles picloud
 * renders for them; picloud's records script writes the records the stack declares; `dig` asks.
 * Everything outside the zone goes to an upstream of the test's own (a CoreDNS answering one name),
 * given as `dns.forwardTo`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackDeclarations } from "../components/cloud/network";
import type { ReplicaIdentity } from "../components/runtime/workload";
import { replicaIdentities } from "../components/runtime/workload";
import { DnsRecord, corefiles, dnsRecords, dnsSpecParts, dnsZone, renderRecordsScript } from "../components/tiers/serviceRegistry/dns";
import { ETCD_WORKLOAD, etcdMemberFlags, etcdWorkload } from "../components/tiers/serviceRegistry/specs";
import { exampleStack } from "./support/exampleStacks";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { must, run } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-dns-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const lab = new NetnsLab("picloud-dns");

const prod = exampleStack("prod");
const pis = prod.config.pis;
const prefixLength = Number(prod.config.network!.subnet.split("/")[1]);
const UPSTREAM = "10.20.0.250";
const options = { ...prod.config.tiers.registry!, dns: { ...prod.config.tiers.registry!.dns, forwardTo: [UPSTREAM] } };
const address = new Map(pis.map((p) => [p.name, p.address]));
const members: ReplicaIdentity[] = replicaIdentities(etcdWorkload(options, pis), prod.plan.placement.assignments.get(ETCD_WORKLOAD)!, (pi) => address.get(pi)!);
const zone = dnsZone(options, "prod");
const names = stackDeclarations({ config: prod.config, placement: prod.plan.placement }).names;
const records = dnsRecords(names, zone, options.dns.ttlSeconds);
const files = corefiles(options, pis, members, zone);
const outsider = pis.find((p) => !members.some((m) => m.pi === p.name))!;

interface Node {
    readonly pi: string;
    readonly address: string;
    readonly ns: string;
    readonly dir: string;
    etcd?: ChildProcess;
    coredns?: ChildProcess;
}
const node = (pi: string, addr: string, i: number): Node => ({ pi, address: addr, ns: `${PREFIX}${i}`, dir: path.join(lab.work, pi) });
const memberNodes = members.map((m, i) => node(m.pi, m.address, i));
const outsiderNode = node(outsider.name, outsider.address, members.length);
const upstreamNode = node("upstream", UPSTREAM, members.length + 1);
const allNodes = [...memberNodes, outsiderNode, upstreamNode];

/** etcdctl over a member's loopback listener, as the records script on a Pi reaches it. */
const localEtcdctl = [validator("etcdctl"), `--endpoints=http://127.0.0.1:${options.localClientPort}`];

function writeRecords(via: Node, list: readonly DnsRecord[]) {
    const script = path.join(via.dir, "records.sh");
    writeFileSync(script, renderRecordsScript({ zone, records: list, etcdctl: localEtcdctl, waitSeconds: 60 }));
    return run("ip", ["netns", "exec", via.ns, "bash", script]);
}

/** `dig +short` from `from` to the CoreDNS at `server`, sorted; or the status line's code with `status`. */
function dig(from: Node, server: string, name: string, what: "short" | "status" = "short"): string[] {
    const r = run("ip", ["netns", "exec", from.ns, validator("dig"), `@${server}`, name, "A", "+time=2", "+tries=1", ...(what === "short" ? ["+short"] : [])]);
    if (what === "status") return [/status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `no answer (${r.stdout.trim().split("\n").at(-1)})`];
    return r.stdout.trim().split("\n").filter(Boolean).sort();
}
const addressesOf = (name: string) => [...new Set(names.find((n) => n.name === name)!.addresses)].sort();

function startCoredns(n: Node, corefile: string) {
    mkdirSync(n.dir, { recursive: true });
    writeFileSync(path.join(n.dir, "Corefile"), corefile);
    n.coredns = lab.start(n.ns, path.join(n.dir, "coredns.log"), [validator("coredns"), "-conf", path.join(n.dir, "Corefile")]);
}
const tail = (n: Node, file: string) => {
    try {
        return `${n.pi}/${file}:\n${readFileSync(path.join(n.dir, file), "utf8").trim().split("\n").slice(-8).join("\n")}`;
    } catch {
        return `${n.pi}/${file}: (none)`;
    }
};

beforeAll(async () => {
    expect(members).toHaveLength(3);
    lab.addSwitch(SWITCH);
    allNodes.forEach((n, i) => {
        lab.addHost(n.ns, SWITCH, `port${i}`, `${n.address}/${prefixLength}`);
        mkdirSync(n.dir, { recursive: true });
    });
    memberNodes.forEach((n, i) => {
        n.etcd = lab.start(n.ns, path.join(n.dir, "etcd.log"), [validator("etcd"), ...etcdMemberFlags(members[i], members, options, path.join(n.dir, "data"))]);
    });
    // The upstream: one name of its own, for what the Pis forward.
    startCoredns(upstreamNode, [`upstream.test:53 {`, `    bind ${UPSTREAM}`, "    hosts {", "        203.0.113.7 www.upstream.test", "    }", "}", ""].join("\n"));
    for (const n of [...memberNodes, outsiderNode]) startCoredns(n, files.get(n.pi)!);
    const first = writeRecords(memberNodes[0], records);
    expect(first.status, `${first.stderr}\n${memberNodes.map((n) => tail(n, "etcd.log")).join("\n")}`).toBe(0);
    expect(first.stdout).toContain(`${zone}: ${records.length} records put, 0 removed`);
    await waitFor("every CoreDNS answers", 30_000, () => [...memberNodes, outsiderNode].every((n) => dig(n, n.address, `etcd.registry.${zone}`).length === 3), {
        context: () => [...memberNodes, outsiderNode].map((n) => tail(n, "coredns.log")).join("\n"),
    });
}, 120_000);
afterAll(() => lab.remove());

describe("the registry's names, CoreDNS on every Pi, records in etcd", () => {
    it("answers every replica of a name with one A record each, and each replica by its index, on a member's Pi", () => {
        const m = memberNodes[0];
        expect(dig(m, m.address, `hello.apps.${zone}`)).toEqual(addressesOf("hello.apps"));
        expect(dig(m, m.address, `etcd.registry.${zone}`)).toEqual(members.map((x) => x.address).sort());
        for (const [i, member] of members.entries()) expect(dig(m, m.address, `${i}.etcd.registry.${zone}`)).toEqual([member.address]);
        expect(dig(m, m.address, `prometheus.monitoring.${zone}`)).toEqual(addressesOf("prometheus.monitoring"));
        expect(dig(m, m.address, `${outsider.name}.pi.${zone}`)).toEqual([outsider.address]);
    });

    it("sends clients of lb to the virtual IP, where the load balancer checks what answers", () => {
        expect(prod.config.tiers.loadBalancer!.virtualIp).toBeDefined();
        expect(dig(memberNodes[1], memberNodes[1].address, `lb.${zone}`)).toEqual([prod.config.tiers.loadBalancer!.virtualIp]);
    });

    it("answers the same on a Pi without a member, which forwards the zone to the members' CoreDNS", () => {
        for (const name of ["hello.apps", "etcd.registry", "gateway.functions", "lb"]) {
            expect(dig(outsiderNode, outsiderNode.address, `${name}.${zone}`)).toEqual(addressesOf(name));
        }
    });

    it("says NXDOMAIN for a name the zone does not have, and forwards every other name", () => {
        for (const n of [memberNodes[2], outsiderNode]) {
            expect(dig(n, n.address, `nothing.apps.${zone}`, "status")).toEqual(["NXDOMAIN"]);
            expect(dig(n, n.address, "www.upstream.test")).toEqual(["203.0.113.7"]);
        }
    });

    it("keeps answering the zone on the outsider with one member's CoreDNS killed", async () => {
        const victim = memberNodes[1];
        await lab.stop(victim.coredns, "SIGKILL");
        // Names the outsider has not been asked yet, so its cache cannot answer them.
        const fresh = pis.map((p) => p.name);
        const took = await waitFor(
            "the outsider answers names it had not cached, without the killed upstream",
            20_000,
            () => fresh.every((pi) => dig(outsiderNode, outsiderNode.address, `${pi}.pi.${zone}`).join(",") === address.get(pi)),
            { intervalMs: 100 },
        );
        console.log(`registry dns: ${fresh.length} uncached names answered on ${outsider.name} ${(took / 1000).toFixed(1)} s after one of its three upstream members' CoreDNS was killed`);
        startCoredns(victim, files.get(victim.pi)!);
        await waitFor("the killed CoreDNS is back", 20_000, () => dig(victim, victim.address, `lb.${zone}`).length === 1);
    }, 60_000);

    it("rewrites the zone when names change: new records answer, records no name has any more are removed", async () => {
        const moved = dnsRecords(
            names.filter((n) => n.name !== "gateway.functions").map((n) => (n.name === "hello.apps" ? { ...n, addresses: [n.addresses[0]] } : n)),
            zone,
            options.dns.ttlSeconds,
        );
        const r = writeRecords(memberNodes[2], moved);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain(`${moved.length} records put, ${records.length - moved.length} removed`);
        const m = memberNodes[0];
        // The cache keeps an answer up to 10 s.
        const kept = names.find((n) => n.name === "hello.apps")!.addresses[0];
        await waitFor("the moved name answers its one replica", 20_000, () => dig(m, m.address, `hello.apps.${zone}`).join(",") === kept);
        expect(dig(m, m.address, `1.hello.apps.${zone}`, "status")).toEqual(["NXDOMAIN"]);
        await waitFor("the removed name is gone", 20_000, () => dig(m, m.address, `gateway.functions.${zone}`, "status")[0] === "NXDOMAIN");
        // Written again as declared, it answers as before (the script is idempotent).
        expect(writeRecords(memberNodes[0], records).stdout).toContain(`${records.length} records put, 0 removed`);
        expect(writeRecords(memberNodes[0], records).stdout).toContain(`${records.length} records put, 0 removed`);
    }, 60_000);

    it("serves every metric its alerts and dashboard read", () => {
        const parts = dnsSpecParts(options, pis);
        const used = new Set([...parts.alertRules.map((r) => r.expr), ...parts.panels.map((p) => p.expr)].flatMap((e) => e.match(/coredns_[a-z_]+/g) ?? []));
        // Histograms are served as _bucket, _sum and _count.
        const served = (n: Node) => must("ip", ["netns", "exec", n.ns, "curl", "-fsS", `http://${n.address}:${options.dns.metricsPort}/metrics`]);
        const text = served(memberNodes[0]) + served(outsiderNode);
        const missing = [...used].filter((metric) => !new RegExp(`^${metric}[{ ]`, "m").test(text));
        expect(missing).toEqual([]);
        expect(used.size).toBeGreaterThanOrEqual(5);
    });
});
