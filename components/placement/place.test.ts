import { describe, expect, it } from "vitest";
import type { PiConfig } from "../config/schema";
import { PlacementError, WorkloadDemand, placeReplicas } from "./place";
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

    it("refuses a workload name used twice", () => {
        expect(() => placeReplicas([pi("a")], 512, [work("x"), work("x")])).toThrow(/workload name "x" is used twice/);
    });

    it("is deterministic", () => {
        const input = [work("a", { replicas: 2 }), work("b", { memoryMb: 700, replicas: 3 }), work("c", { replicas: 2, spread: true })];
        const pis = [pi("p1"), pi("p2"), pi("p3")];
        expect([...placeReplicas(pis, 512, input).assignments]).toEqual([...placeReplicas(pis, 512, input).assignments]);
    });
});

describe("analyseSinglePiLoss", () => {
    it("reports tiers that would lose every replica with one Pi", () => {
        const plan = placeReplicas([pi("a", { labels: { disk: "yes" } }), pi("b")], 512, [
            work("web", { replicas: 2, spread: true }),
            work("db", { component: "database", constraints: { labels: { disk: "yes" } } }),
        ]);
        const impact = analyseSinglePiLoss(plan, new Map([["web", "apps"], ["db", "database"]]));
        expect(impact.find((i) => i.pi === "a")).toEqual({ pi: "a", lostWorkloads: ["db"], lostComponents: ["database"], degradedWorkloads: ["web"] });
        expect(impact.find((i) => i.pi === "b")).toEqual({ pi: "b", lostWorkloads: [], lostComponents: [], degradedWorkloads: ["web"] });
    });
});
