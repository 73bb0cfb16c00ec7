/**
 * The service registry for real: three etcd members, each in a network namespace of its own on a
 * bridge (a Pi each), started with exactly the flags picloud renders for the dev stack's members
 * (their data folder aside), TLS between peers and clients included. Debian's etcd 3.4 stands in
 * for the image's 3.5: the flags are the same. A leader hands its leadership over as a leader-last
 * update does; a member killed for good is replaced on a new host through its join step; with one
 * member killed, writes go on; with two, they stop. The time a write takes to succeed after the
 * first kill is printed, not asserted.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicaIdentity } from "../components/runtime/workload";
import { handOffTarget, replicaIdentities } from "../components/runtime/workload";
import { ETCD_WORKLOAD, etcdMemberFlags, etcdWorkload, renderEtcdHandOff } from "../components/tiers/serviceRegistry/specs";
import { exampleStack } from "./support/exampleStacks";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-etcd-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const lab = new NetnsLab("picloud-etcd");

const dev = exampleStack("dev");
const options = dev.config.tiers.registry!;
const address = new Map(dev.config.pis.map((p) => [p.name, p.address]));
const members: ReplicaIdentity[] = replicaIdentities(etcdWorkload(options, dev.config.pis), dev.plan.placement.assignments.get(ETCD_WORKLOAD)!, (pi) => address.get(pi)!);
const prefixLength = Number(dev.config.network!.subnet.split("/")[1]);

interface Member {
    readonly identity: ReplicaIdentity;
    readonly ns: string;
    readonly dir: string;
    process?: ChildProcess;
}
const nodes: Member[] = members.map((identity) => ({ identity, ns: `${PREFIX}${identity.index}`, dir: path.join(lab.work, `member-${identity.index}`) }));

/** etcdctl from the namespace of `via`, against its own member, with a short timeout. */
function etcdctl(via: Member, ...args: string[]) {
    return run("ip", [
        "netns",
        "exec",
        via.ns,
        validator("etcdctl"),
        `--endpoints=https://${via.identity.address}:${options.clientPort}`,
        "--insecure-transport=false", "--insecure-skip-tls-verify",
        "--dial-timeout=2s",
        "--command-timeout=3s",
        ...args,
    ]);
}

function tail(file: string): string {
    try {
        return readFileSync(file, "utf8").trim().split("\n").slice(-6).join("\n");
    } catch {
        return "(no log)";
    }
}

const write = (via: Member, key: string) => etcdctl(via, "put", key, `written through ${via.identity.pi}`);

beforeAll(async () => {
    expect(members).toHaveLength(3);
    lab.addSwitch(SWITCH);
    nodes.forEach((n, i) => {
        lab.addHost(n.ns, SWITCH, `port${i}`, `${n.identity.address}/${prefixLength}`);
        mkdirSync(n.dir, { recursive: true });
    });
    for (const n of nodes) {
        // What the container runs, its data folder moved to this test's work directory.
        const flags = etcdMemberFlags(n.identity, members, options, path.join(n.dir, "data"));
        n.process = lab.start(n.ns, path.join(n.dir, "etcd.log"), [validator("etcd"), ...flags]);
    }
    await waitFor("the three members elect a leader and take a write", 60_000, () => write(nodes[0], "/picloud/ready").status === 0, {
        intervalMs: 500,
        context: () => nodes.map((n) => `${n.identity.pi}:\n${tail(path.join(n.dir, "etcd.log"))}`).join("\n") + `\nlast write: ${write(nodes[0], "/picloud/ready").stderr}`,
    });
}, 90_000);
afterAll(() => lab.remove());

describe("etcd with picloud's flags, three members on three namespaced Pis", () => {
    it("forms one cluster of exactly the rendered members, over TLS", () => {
        const list = etcdctl(nodes[1], "member", "list", "-w", "json");
        expect(list.status, list.stderr).toBe(0);
        const found = (JSON.parse(list.stdout) as { members: { name: string; peerURLs: string[] }[] }).members.map((m) => `${m.name} ${m.peerURLs.join(",")}`).sort();
        expect(found).toEqual(members.map((m) => `etcd-${m.index} https://${m.address}:${options.peerPort}`).sort());
    });

    it("hands leadership over before a leader changes (leader-last), and leaves it be on a follower", async () => {
        const leaderNow = () => {
            const status = JSON.parse(etcdctl(nodes[0], "endpoint", "status", "--cluster", "-w", "json").stdout) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
            const leaderId = status[0].Status.leader;
            return nodes.find((n) => status.some((s) => s.Status.header.member_id === leaderId && s.Endpoint.includes(n.identity.address)))!;
        };
        const handOff = (n: Member) => {
            const script = path.join(n.dir, "hand-off.sh");
            const w = etcdWorkload(options, dev.config.pis);
            expect(w.updateStrategy).toBe("leader-last");
            // The script the runtime runs before the member changes, reaching the member over its loopback listener.
            const text = renderEtcdHandOff({ self: `etcd-${n.identity.index}`, to: handOffTarget(n.identity, members), etcdctl: [validator("etcdctl"), `--endpoints=http://127.0.0.1:${options.localClientPort}`], running: "true" });
            writeFileSync(script, text);
            return run("ip", ["netns", "exec", n.ns, "bash", script]);
        };
        const before = leaderNow();
        const follower = nodes.find((n) => n !== before)!;
        const quiet = handOff(follower);
        expect(quiet.status, quiet.stderr).toBe(0);
        expect(quiet.stdout).toContain("does not lead");
        expect(leaderNow()).toBe(before);

        const moved = handOff(before);
        expect(moved.status, moved.stderr).toBe(0);
        expect(moved.stdout).toContain("handed its leadership to member");
        const target = nodes[handOffTarget(before.identity, members)!.index];
        await waitFor("the leadership is where the hand-off sent it", 10_000, () => leaderNow() === target);
        // Writes go on right away: a hand-off is no election.
        expect(write(target, "/picloud/after-hand-off").status).toBe(0);
    });

    it("lets a member whose Pi is gone be replaced on a new Pi: the join step removes the old member and adds the new, which starts as existing", async () => {
        const gone = nodes[2];
        await lab.stop(gone.process, "SIGKILL");
        // With a member down, the next member's hand-off (the gate of a leader-last update) holds it back.
        const gate = path.join(nodes[0].dir, "gate.sh");
        writeFileSync(gate, renderEtcdHandOff({ self: "etcd-0", to: members[1], etcdctl: [validator("etcdctl"), `--endpoints=http://127.0.0.1:${options.localClientPort}`], running: "true", waitSeconds: 4 }));
        const held = run("ip", ["netns", "exec", nodes[0].ns, "bash", gate]);
        expect(held.status).toBe(1);
        expect(held.stderr).toContain("the etcd cluster is not healthy after 4 s: etcd-0 is left as it is, and the update stops here");
        // The new Pi: another address on the LAN, the same member index.
        const replacement: ReplicaIdentity = { ...gone.identity, pi: "dev-9", address: "192.168.10.50", joins: true };
        const now = members.map((m) => (m.index === gone.identity.index ? replacement : m));
        const fresh: Member = { identity: replacement, ns: `${PREFIX}new`, dir: path.join(lab.work, "member-new") };
        lab.addHost(fresh.ns, SWITCH, "portnew", `${replacement.address}/${prefixLength}`);
        mkdirSync(fresh.dir, { recursive: true });

        // The runtime runs the workload's own join step through a member that stays.
        const w = etcdWorkload(options, dev.config.pis);
        const via = nodes[0];
        const script = w.join!(replacement, now, via.identity).replace(/'docker' 'exec' 'etcd-\d+' 'etcdctl'/, `'${validator("etcdctl")}'`);
        writeFileSync(path.join(fresh.dir, "join.sh"), script);
        const joined = run("ip", ["netns", "exec", via.ns, "bash", path.join(fresh.dir, "join.sh")]);
        expect(joined.status, joined.stderr).toBe(0);
        expect(joined.stdout).toContain(`removed the member etcd-${replacement.index} was before`);
        expect(joined.stdout).toContain(`added etcd-${replacement.index} at https://${replacement.address}:${options.peerPort}`);

        const flags = etcdMemberFlags(replacement, now, options, path.join(fresh.dir, "data"));
        expect(flags).toContain("--initial-cluster-state=existing");
        fresh.process = lab.start(fresh.ns, path.join(fresh.dir, "etcd.log"), [validator("etcd"), ...flags]);
        await waitFor("the new member serves a write", 60_000, () => write(fresh, "/picloud/joined").status === 0, { intervalMs: 500, context: () => tail(path.join(fresh.dir, "etcd.log")) });
        const list = JSON.parse(etcdctl(fresh, "member", "list", "-w", "json").stdout) as { members: { name: string; peerURLs: string[] }[] };
        expect(list.members.map((m) => `${m.name} ${m.peerURLs.join(",")}`).sort()).toEqual(now.map((m) => `etcd-${m.index} https://${m.address}:${options.peerPort}`).sort());
        // Run again (an up that changes nothing for it), it changes nothing.
        const again = run("ip", ["netns", "exec", via.ns, "bash", path.join(fresh.dir, "join.sh")]);
        expect(again.stdout).toContain("is a member at");
        nodes[2] = fresh;
    }, 120_000);

    it("goes on taking writes with its leader killed, and stops with two members gone", async () => {
        // The leader, as the members report it: the hardest member to lose.
        const status = JSON.parse(etcdctl(nodes[0], "endpoint", "status", "-w", "json").stdout) as { Status: { header: { member_id: number }; leader: number } }[];
        const leaderId = status[0].Status.leader;
        const ids = nodes.map((n) => (JSON.parse(etcdctl(n, "endpoint", "status", "-w", "json").stdout) as typeof status)[0].Status.header.member_id);
        const leader = nodes[ids.indexOf(leaderId)];
        expect(leader).toBeDefined();
        const [survivor, other] = nodes.filter((n) => n !== leader);

        await lab.stop(leader.process, "SIGKILL");
        const killed = Date.now();
        await waitFor("a write succeeds with the leader down", 30_000, () => write(survivor, "/picloud/one-down").status === 0, { intervalMs: 200 });
        console.log(`registry: a write succeeded ${((Date.now() - killed) / 1000).toFixed(1)} s after the etcd leader (1 of 3 members) was killed`);
        expect(etcdctl(other, "get", "/picloud/one-down", "--print-value-only").stdout.trim()).toBe(`written through ${survivor.identity.pi}`);

        await lab.stop(other.process, "SIGKILL");
        // A lone member cannot commit: every attempt times out, for as long as we try.
        for (let attempt = 0; attempt < 3; attempt++) {
            const r = write(survivor, `/picloud/two-down-${attempt}`);
            expect(r.status, r.stdout).not.toBe(0);
            expect(r.stderr).toMatch(/context deadline exceeded|timed out|no leader|request timed out/i);
        }
    }, 120_000);
});
