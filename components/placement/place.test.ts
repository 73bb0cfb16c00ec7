import { describe, expect, it } from "vitest";
import type { PiConfig } from "../config/schema";
import { PlacementError, WorkloadDemand, majority, placeReplicas } from "./place";
import { analyseSinglePiLoss } from "./resilience";

const pi = (name: string, over: Partial<PiConfig> = {}): PiConfig => ({
    name,
    address: "192.168.1.1",
    sshUser: "pi",
    sshPort: 22,
    hostKey: "ssh-ed25519 AAAA",
    model: "pi4",
    memoryMb: 4096,
    cpus: 4,
    storage: "sd",
    labels: {},
    ...over,
});

const work = (name: string, over: Partial<WorkloadDemand> = {}): WorkloadDemand => ({
    name,
    component: "apps",
    configKey: `picloud:tiers.apps.${name}`,
    replicas: 1,
    spread: false,
    memoryMb: 256,
    cpus: 0.5,
    hostPorts: [],
    constraints: {},
    ...over,
});

describe("placeReplicas", () => {
    it("spreads replicas over distinct Pis when asked", () => {
        const plan = placeReplicas([pi("a"), pi("b"), pi("c")], 512, [work("web", { replicas: 3, spread: true })]);
        expect(new Set(plan.assignments.get("web"))).toEqual(new Set(["a", "b", "c"]));
    });

    it("puts each replica on the Pi with the most free memory", () => {
        const plan = placeReplicas([pi("a"), pi("b", { memoryMb: 8192 })], 512, [work("x", { replicas: 3, memoryMb: 1024 })]);
        // b has 7680 free, a 3584: b, b (6656 left), b (5632 left) before a would be preferred.
        expect(plan.assignments.get("x")).toEqual(["b", "b", "b"]);
    });

    it("accounts memory and CPU per Pi against the budget after the OS reserve", () => {
        const plan = placeReplicas([pi("a")], 512, [work("x", { memoryMb: 1000, cpus: 1.5 }), work("y", { memoryMb: 500, cpus: 0.25 })]);
        expect(plan.pis[0]).toMatchObject({ pi: "a", memoryBudgetMb: 3584, memoryUsedMb: 1500, cpusUsed: 1.75, cpuBudget: 4 });
        expect(plan.pis[0].replicas.map((r) => r.workload).sort()).toEqual(["x", "y"]);
    });

    it("refuses more spread replicas than eligible Pis, naming the replicas key", () => {
        expect(() => placeReplicas([pi("a"), pi("b")], 512, [work("web", { replicas: 3, spread: true })])).toThrow(
            /picloud:tiers\.apps\.web\.replicas: 3 replicas must run on distinct Pis but only 2 Pi\(s\) are eligible \(a, b\)/,
        );
    });

    it("fails over capacity listing each Pi, its budget and what was placed on it", () => {
        let error: unknown;
        try {
            placeReplicas([pi("a", { memoryMb: 2048 }), pi("b", { memoryMb: 2048 })], 512, [
                work("big", { memoryMb: 1200, replicas: 2, spread: true }),
                work("more", { memoryMb: 400 }),
            ]);
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(PlacementError);
        const message = (error as Error).message;
        expect(message).toContain('picloud:tiers.apps.more: replica 1 of 1 of "more" (400 MB, 0.5 CPU) does not fit');
        expect(message).toMatch(/a: budget 1536 MB \/ 4 CPU .* used 1200 MB \/ 0\.5 CPU by big#\d 1200 MB; needs 400 MB, 336 MB free/);
        expect(message).toMatch(/b: budget 1536 MB/);
    });

    it("respects label, model and storage constraints", () => {
        const pis = [pi("a", { labels: { role: "edge" } }), pi("b", { model: "pi5", storage: "ssd" }), pi("c", { model: "pi5" })];
        const plan = placeReplicas(pis, 512, [
            work("lb", { constraints: { labels: { role: "edge" } } }),
            work("db", { constraints: { storage: "ssd", models: ["pi5"] } }),
        ]);
        expect(plan.assignments.get("lb")).toEqual(["a"]);
        expect(plan.assignments.get("db")).toEqual(["b"]);
        expect(() => placeReplicas(pis, 512, [work("wh", { constraints: { models: ["pi5"], labels: { role: "edge" } } })])).toThrow(
            /picloud:tiers\.apps\.wh: expected at least one Pi meeting the placement constraints/,
        );
    });

    it("never puts two workloads on one host port of one Pi", () => {
        const plan = placeReplicas([pi("a"), pi("b")], 512, [work("x", { hostPorts: [8080] }), work("y", { hostPorts: [8080] })]);
        expect(new Set([plan.assignments.get("x")![0], plan.assignments.get("y")![0]]).size).toBe(2);
        expect(() => placeReplicas([pi("a")], 512, [work("x", { hostPorts: [8080] }), work("y", { hostPorts: [8080] })])).toThrow(
            /host port 8080 already taken/,
        );
    });

    it("places pinned per-Pi workloads exactly where pinned", () => {
        const plan = placeReplicas([pi("a"), pi("b")], 512, [work("agent", { replicas: 2, spread: true, pinnedTo: ["b", "a"] })]);
        expect(plan.assignments.get("agent")).toEqual(["b", "a"]);
    });

    it("keeps each Pi's SSH port for sshd, naming the port's key and the Pi's", () => {
        const web = work("web", { hostPorts: [2222], portKeys: ["picloud:tiers.apps.web.hostPort"] });
        expect(placeReplicas([pi("a"), pi("b")], 512, [web]).assignments.get("web")).toHaveLength(1);
        expect(() => placeReplicas([pi("a", { sshPort: 2222 }), pi("b", { sshPort: 2222 })], 512, [web])).toThrow(
            /picloud:tiers\.apps\.web\.hostPort: host port 2222 of "web" is already taken on every Pi it may run on: a by "sshd" \(picloud:pis\[0\]\.sshPort\)/,
        );
        // One Pi with SSH elsewhere is enough room.
        expect(placeReplicas([pi("a", { sshPort: 2222 }), pi("b")], 512, [web]).assignments.get("web")).toEqual(["b"]);
    });

    it("refuses a workload that publishes one host port twice, naming the second key", () => {
        const w = work("web", { hostPorts: [8080, 8080], portKeys: ["picloud:tiers.apps.web.hostPort", "picloud:tiers.apps.web.metrics.port"] });
        expect(() => placeReplicas([pi("a")], 512, [w])).toThrow("picloud:tiers.apps.web.metrics.port: expected a port of its own, got 8080, which picloud:tiers.apps.web.hostPort publishes already on the same Pi");
    });

    it("refuses a workload name used twice", () => {
        expect(() => placeReplicas([pi("a")], 512, [work("x"), work("x")])).toThrow(/workload name "x" is used twice/);
    });

    it("is deterministic", () => {
        const input = [work("a", { replicas: 2 }), work("b", { memoryMb: 700, replicas: 3 }), work("c", { replicas: 2, spread: true })];
        const pis = [pi("p1"), pi("p2"), pi("p3")];
        expect([...placeReplicas(pis, 512, input).assignments]).toEqual([...placeReplicas(pis, 512, input).assignments]);
    });
});

describe("placeReplicas with a previous placement (sticky)", () => {
    const pis = [pi("a"), pi("b"), pi("c")];
    const stack = [work("web", { replicas: 2, spread: true, memoryMb: 512 }), work("api", { replicas: 2, spread: true }), work("db", { memoryMb: 1024 })];
    const first = placeReplicas(pis, 512, stack);
    const previous = first.assignments;
    const moves = (plan: ReturnType<typeof placeReplicas>) => plan.changes.filter((c) => c.from !== undefined && c.to !== undefined);

    it("keeps every replica where it was when a Pi is added, even one with more room", () => {
        const plan = placeReplicas([...pis, pi("d", { memoryMb: 8192 })], 512, stack, { previous });
        expect([...plan.assignments]).toEqual([...previous]);
        expect(plan.changes).toEqual([]);
        // Without the previous placement the new, roomy Pi would have taken replicas: the test can fail.
        expect([...placeReplicas([...pis, pi("d", { memoryMb: 8192 })], 512, stack).assignments]).not.toEqual([...previous]);
    });

    it("keeps every replica where it was when a Pi's memory changes, a workload is added or replicas grow", () => {
        const grown = [work("web", { replicas: 3, spread: true, memoryMb: 512 }), stack[1], stack[2], work("cache", { memoryMb: 2000 })];
        const plan = placeReplicas([pi("a", { memoryMb: 8192 }), pi("b"), pi("c")], 512, grown, { previous });
        for (const [name, was] of previous) expect(plan.assignments.get(name)!.slice(0, was.length)).toEqual(was);
        expect(moves(plan)).toEqual([]);
        expect(plan.changes.map((c) => `${c.workload}#${c.replica} ${c.reason}`).sort()).toEqual(["cache#0 new replica", "web#2 new replica"]);
    });

    it("moves only the replicas of a Pi that is gone, saying so", () => {
        const gone = previous.get("web")![0];
        const plan = placeReplicas(pis.filter((p) => p.name !== gone), 512, stack, { previous });
        for (const c of plan.changes) {
            expect(c.from).toBe(gone);
            expect(c.reason).toBe(`${gone} is no longer in picloud:pis`);
        }
        expect(plan.changes.length).toBe(first.pis.find((u) => u.pi === gone)!.replicas.length);
        for (const [name, was] of previous) was.forEach((p, i) => p !== gone && expect(plan.assignments.get(name)![i]).toBe(p));
    });

    it("moves a replica that no longer fits, or no longer meets its constraints, naming why", () => {
        const small = placeReplicas([pi("a"), pi("b")], 512, [work("x", { memoryMb: 3000 })], { previous: new Map([["x", ["a"]]]) });
        expect(small.assignments.get("x")).toEqual(["a"]);
        const shrunk = placeReplicas([pi("a", { memoryMb: 2048 }), pi("b")], 512, [work("x", { memoryMb: 3000 })], { previous: new Map([["x", ["a"]]]) });
        expect(shrunk.changes).toEqual([{ workload: "x", replica: 0, from: "a", to: "b", reason: "it no longer fits on a: needs 3000 MB, 1536 MB free" }]);
        const labelled = placeReplicas([pi("a"), pi("b", { labels: { disk: "ssd" } })], 512, [work("x", { constraints: { labels: { disk: "ssd" } } })], { previous: new Map([["x", ["a"]]]) });
        expect(labelled.changes[0]).toMatchObject({ from: "a", to: "b", reason: expect.stringMatching(/^a no longer meets picloud:tiers\.apps\.x's placement constraints/) });
    });

    it("separates replicas that shared a Pi once spread is asked for, and follows a pin", () => {
        const spread = placeReplicas(pis, 512, [work("x", { replicas: 2, spread: true })], { previous: new Map([["x", ["a", "a"]]]) });
        expect(spread.assignments.get("x")![0]).toBe("a");
        expect(spread.changes).toEqual([expect.objectContaining({ replica: 1, from: "a", reason: expect.stringContaining("spreads its replicas over distinct Pis") })]);
        const pinned = placeReplicas(pis, 512, [work("x", { pinnedTo: ["c"] })], { previous: new Map([["x", ["a"]]]) });
        expect(pinned.changes).toEqual([{ workload: "x", replica: 0, from: "a", to: "c", reason: "pinned to c by picloud:tiers.apps.x" }]);
    });

    it("lists replicas that are gone: fewer replicas, a workload removed", () => {
        const plan = placeReplicas(pis, 512, [work("web", { replicas: 1, memoryMb: 512 })], { previous });
        expect(plan.changes.map((c) => `${c.workload}#${c.replica} ${c.to ?? "gone"}: ${c.reason}`)).toEqual([
            "web#1 gone: picloud:tiers.apps.web asks for 1 replica",
            "api#0 gone: the workload is no longer in the stack",
            "api#1 gone: the workload is no longer in the stack",
            "db#0 gone: the workload is no longer in the stack",
        ]);
    });

    it("places afresh what a rebalance names, and only that", () => {
        const prev = new Map([["web", ["a", "b"]], ["api", ["a", "b"]], ["db", ["a"]]]);
        const wider = [...pis, pi("d", { memoryMb: 8192 })];
        const one = placeReplicas(wider, 512, stack, { previous: prev, rebalance: ["db"] });
        expect(one.assignments.get("db")).toEqual(["d"]);
        expect(one.assignments.get("web")).toEqual(["a", "b"]);
        expect(one.changes).toEqual([{ workload: "db", replica: 0, from: "a", to: "d", reason: "rebalance asked for" }]);
        const all = placeReplicas(wider, 512, stack, { previous: prev, rebalance: "all" });
        expect([...all.assignments]).toEqual([...placeReplicas(wider, 512, stack).assignments]);
    });

    it("leaves a quorum group's members where they are on a rebalance of everything; naming it moves them", () => {
        const etcd = work("etcd", { replicas: 3, spread: true, memoryMb: 256, quorum: { name: "etcd", quorum: 2 } });
        const prev = new Map([["etcd", ["a", "b", "c"]]]);
        const wider = [pi("d", { memoryMb: 8192 }), pi("e", { memoryMb: 8192 }), ...pis];
        expect(placeReplicas(wider, 512, [etcd], { previous: prev, rebalance: "all" }).assignments.get("etcd")).toEqual(["a", "b", "c"]);
        expect(placeReplicas(wider, 512, [etcd], { previous: prev, rebalance: ["etcd"] }).changes.length).toBeGreaterThan(0);
    });
});

describe("analyseSinglePiLoss", () => {
    it("reports tiers that would lose every replica with one Pi", () => {
        const plan = placeReplicas([pi("a", { labels: { disk: "yes" } }), pi("b")], 512, [
            work("web", { replicas: 2, spread: true }),
            work("db", { component: "database", constraints: { labels: { disk: "yes" } } }),
        ]);
        const impact = analyseSinglePiLoss(plan, new Map([["web", "apps"], ["db", "database"]]));
        expect(impact.find((i) => i.pi === "a")).toEqual({ pi: "a", lostWorkloads: ["db"], lostComponents: ["database"], degradedWorkloads: ["web"], lostQuorums: [] });
        expect(impact.find((i) => i.pi === "b")).toEqual({ pi: "b", lostWorkloads: [], lostComponents: [], degradedWorkloads: ["web"], lostQuorums: [] });
    });

    it("reports a quorum group that one Pi's loss leaves below its quorum, not one that keeps it", () => {
        const three = placeReplicas([pi("a"), pi("b"), pi("c")], 512, [work("etcd", { replicas: 3, spread: true, quorum: { name: "etcd", quorum: 2 } })]);
        expect(analyseSinglePiLoss(three, new Map(), [{ workload: "etcd", name: "etcd", quorum: 2 }]).flatMap((i) => i.lostQuorums)).toEqual([]);
        const one = placeReplicas([pi("a"), pi("b")], 512, [work("etcd", { replicas: 1, spread: true, quorum: { name: "etcd", quorum: 1 } })]);
        const impact = analyseSinglePiLoss(one, new Map(), [{ workload: "etcd", name: "etcd", quorum: 1 }]);
        expect(impact.map((i) => [i.pi, i.lostQuorums])).toEqual([["a", ["etcd"]], ["b", []]]);
    });
});

describe("quorum groups and fsync-heavy members in placement", () => {
    const etcd = (replicas: number, over: Partial<WorkloadDemand> = {}) =>
        work("etcd", { replicas, spread: true, configKey: "picloud:tiers.registry", quorum: { name: "etcd", quorum: majority(replicas) }, ...over });
    const ssd = (name: string) => pi(name, { storage: "ssd" });

    it("puts every member on a Pi of its own", () => {
        expect(new Set(placeReplicas([pi("a"), pi("b"), pi("c")], 512, [etcd(3)]).assignments.get("etcd")).size).toBe(3);
        expect(() => placeReplicas([pi("a"), pi("b"), pi("c")], 512, [etcd(3, { spread: false })])).toThrow('picloud:tiers.registry: the members of quorum group "etcd" must run on distinct Pis');
    });

    it("refuses an even number of members, and fewer than three where three Pis could carry them, naming the key and the Pis", () => {
        expect(() => placeReplicas([pi("a"), pi("b"), pi("c")], 512, [etcd(2)])).toThrow(/picloud:tiers\.registry\.replicas: quorum group "etcd" needs an odd number of members, got 2/);
        expect(() => placeReplicas([pi("a"), pi("b"), pi("c")], 512, [etcd(1)])).toThrow(
            'picloud:tiers.registry.replicas: quorum group "etcd" has 1 member(s) and needs 1: losing the Pi of any one (of a, b, c) would stop it taking writes, and the stack has 3 eligible Pis; expected at least 3 members',
        );
        // One Pi (lab) cannot do better: allowed, and the analysis says what its loss costs.
        expect(placeReplicas([pi("a")], 512, [etcd(1)]).assignments.get("etcd")).toEqual(["a"]);
    });

    it("keeps fsync-heavy members off SD cards unless the config allows them, naming that key", () => {
        const heavy = (allowSdCard: boolean) => etcd(3, { fsyncHeavy: { allowSdCard, allowSdCardKey: "picloud:tiers.registry.allowSdCard" } });
        expect(placeReplicas([ssd("a"), pi("b"), ssd("c"), ssd("d")], 512, [heavy(false)]).assignments.get("etcd")!.slice().sort()).toEqual(["a", "c", "d"]);
        expect(() => placeReplicas([ssd("a"), pi("b"), pi("c")], 512, [heavy(false)])).toThrow(
            /^invalid picloud config: picloud:tiers\.registry\.allowSdCard: "etcd" fsyncs on every write and needs 3 Pi\(s\) with storage: ssd, got 1 \(a\); on SD cards it is known to miss heartbeats and lose leader elections/,
        );
        expect(placeReplicas([ssd("a"), pi("b"), pi("c")], 512, [heavy(true)]).assignments.get("etcd")).toHaveLength(3);
    });
});
