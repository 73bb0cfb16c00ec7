import { PicloudConfigError } from "../config/errors";
import type { PiConfig } from "../config/schema";
import type { PlacementConstraints } from "../config/workload";

/** What placement needs to know about a workload. */
export interface WorkloadDemand {
    /** Unique name in the stack. */
    readonly name: string;
    /** The component (tier) it belongs to, for reports. */
    readonly component: string;
    /** The config key that declared it, for error messages. */
    readonly configKey: string;
    readonly replicas: number;
    /** Each replica on a different Pi. */
    readonly spread: boolean;
    /** Memory limit per replica, MB. */
    readonly memoryMb: number;
    /** CPU limit per replica, cores. */
    readonly cpus: number;
    /** Host ports each replica publishes on its Pi. */
    readonly hostPorts: readonly number[];
    /** The config key that chose each host port, in `hostPorts` order, where it is not `configKey` itself (e.g. `…apps.web.hostPort`). */
    readonly portKeys?: readonly (string | undefined)[];
    readonly constraints: PlacementConstraints;
    /** Pin to these Pis by name, in replica order (a per-Pi agent, or a Pi the config names): a pin beats the previous placement. */
    readonly pinnedTo?: readonly string[];
    /** Why it is pinned there, for the list of moves; default: "pinned to <Pi> by <configKey>". */
    readonly pinnedBecause?: string;
    /** Its replicas are the members of a quorum group (a consensus cluster): each on a Pi of its own. */
    readonly quorum?: QuorumGroup;
    /**
     * It fsyncs on every write (a consensus log): it goes only to Pis with `storage: ssd`, unless
     * the config key `allowSdCard` names says SD cards are acceptable.
     */
    readonly fsyncHeavy?: { readonly allowSdCard: boolean; readonly allowSdCardKey: string };
    /** The least a Pi must have to carry a replica (Cassandra: 8 GB and an SSD); other Pis are refused, each with its reason. */
    readonly hardwareFloor?: HardwareFloor;
}

/** What a Pi must have to carry a workload, and the config key that asks for the workload. */
export interface HardwareFloor {
    readonly memoryMb: number;
    readonly ssd: boolean;
    readonly configKey: string;
}

/** Why `pi` is below `floor`, or nothing when it meets it. */
export function belowFloor(pi: PiConfig, floor: HardwareFloor): string | undefined {
    const why = [...(pi.memoryMb < floor.memoryMb ? [`has ${pi.memoryMb} MB of memory`] : []), ...(floor.ssd && pi.storage !== "ssd" ? [`has storage: ${pi.storage}`] : [])];
    return why.length ? `${pi.name} ${why.join(" and ")}` : undefined;
}

/** Members that agree by majority: the group keeps working while `quorum` of them are up. */
export interface QuorumGroup {
    /** Name in reports, e.g. "etcd". */
    readonly name: string;
    /** Members needed to keep working: a majority, floor(members / 2) + 1. */
    readonly quorum: number;
    /**
     * The cluster's own init step adds and drops members (Garage's layout): it may grow and shrink,
     * and a member on a new Pi needs no join step of its own, but each item is kept on
     * min(`maxCopies`, members) of them, a number fixed when the cluster forms. etcd's members join
     * one by one and never shrink.
     */
    readonly managedMembership?: { readonly maxCopies: number };
}

/** The majority of `members`: what a consensus group needs up to keep working. */
export function majority(members: number): number {
    return Math.floor(members / 2) + 1;
}

/** Where each replica ran before: workload name → its Pi per replica index (a stack's placement lock). */
export type PreviousPlacement = ReadonlyMap<string, readonly string[]>;

/** Options of {@link placeReplicas}. */
export interface PlaceOptions {
    /** Where each replica was placed before: every replica stays there while it still can. */
    readonly previous?: PreviousPlacement;
    /** Workloads placed afresh, as if they had never been placed ("all": every one). */
    readonly rebalance?: readonly string[] | "all";
}

/** A replica that is placed for the first time, moves, or goes away, and why. */
export interface PlacementChange {
    readonly workload: string;
    readonly replica: number;
    /** Its Pi before; undefined for a new replica. */
    readonly from?: string;
    /** Its Pi now; undefined for a replica that is gone. */
    readonly to?: string;
    readonly reason: string;
}

/** One replica on one Pi. */
export interface PlacedReplica {
    readonly workload: string;
    readonly component: string;
    readonly replica: number;
    readonly memoryMb: number;
    readonly cpus: number;
}

/** A Pi's budget and what was placed on it. */
export interface PiUsage {
    readonly pi: string;
    /** Memory available to workloads: installed minus the OS reserve, MB. */
    readonly memoryBudgetMb: number;
    readonly cpuBudget: number;
    readonly memoryUsedMb: number;
    readonly cpusUsed: number;
    readonly replicas: readonly PlacedReplica[];
}

/** Where every replica goes. */
export interface PlacementPlan {
    /** Workload name → the Pi of each replica, in replica order. */
    readonly assignments: ReadonlyMap<string, readonly string[]>;
    /** One entry per Pi, in config order. */
    readonly pis: readonly PiUsage[];
    /** Every replica placed for the first time, moved or gone, against the previous placement, with its reason. */
    readonly changes: readonly PlacementChange[];
}

/**
 * Raised when workloads do not fit or a constraint cannot be met: a config problem like any other
 * (the config asks for what the Pis cannot give), naming the key to change.
 */
export class PlacementError extends PicloudConfigError {
    constructor(key: string, message: string) {
        super([{ key, message }]);
        this.name = "PlacementError";
    }
}

interface MutableUsage {
    pi: PiConfig;
    memoryBudgetMb: number;
    memoryUsedMb: number;
    cpusUsed: number;
    /** Host port → the workload holding it, and the key that chose it. */
    ports: Map<number, { workload: string; key: string }>;
    replicas: PlacedReplica[];
}

/**
 * Places every replica of every workload on a Pi. Deterministic: the same input always gives the
 * same plan. Sticky: a replica stays on the Pi `options.previous` gives it while that Pi is in the
 * stack, meets the workload's constraints, is not taken by another of its replicas (with spread)
 * and has room; only then, or when a pin or `options.rebalance` says so, does it move. Pinned
 * replicas are placed first, kept ones next, then the rest, larger workloads first, each on the
 * eligible Pi with the most free memory (spreading load), ties broken by config order. Throws
 * {@link PlacementError} naming the workload's config key and, for capacity, every eligible Pi
 * with its budget and what it holds.
 */
export function placeReplicas(pis: readonly PiConfig[], osReserveMb: number, workloads: readonly WorkloadDemand[], options: PlaceOptions = {}): PlacementPlan {
    const usage: MutableUsage[] = pis.map((pi) => ({
        pi,
        memoryBudgetMb: pi.memoryMb - osReserveMb,
        memoryUsedMb: 0,
        cpusUsed: 0,
        ports: new Map(),
        replicas: [],
    }));
    const byName = new Map(usage.map((u) => [u.pi.name, u]));
    // sshd holds each Pi's SSH port: nothing may publish it there.
    pis.forEach((pi, i) => usage[i].ports.set(pi.sshPort, { workload: "sshd", key: `picloud:pis[${i}].sshPort` }));
    const names = new Set<string>();
    for (const w of workloads) {
        if (names.has(w.name)) throw new PlacementError(w.configKey, `workload name "${w.name}" is used twice; names must be unique in a stack`);
        names.add(w.name);
        w.hostPorts.forEach((port, i) => {
            const first = w.hostPorts.indexOf(port);
            if (first !== i) {
                throw new PlacementError(portKey(w, port, i), `expected a port of its own, got ${port}, which ${portKey(w, port, first)} publishes already on the same Pi`);
            }
        });
    }

    const order = [...workloads].sort(
        (a, b) => Number(Boolean(b.pinnedTo)) - Number(Boolean(a.pinnedTo)) || b.memoryMb - a.memoryMb || a.name.localeCompare(b.name),
    );
    const eligibleFor = new Map<string, MutableUsage[]>();
    for (const w of order) {
        if (w.quorum && !w.spread) throw new PlacementError(w.configKey, `the members of quorum group "${w.quorum.name}" must run on distinct Pis; expected spread: true`);
        const onSsd = w.fsyncHeavy !== undefined && !w.fsyncHeavy.allowSdCard;
        const floor = w.hardwareFloor;
        if (floor) {
            const able = usage.filter((u) => !belowFloor(u.pi, floor));
            if (able.length < w.replicas) {
                const refused = usage.map((u) => belowFloor(u.pi, floor)).filter((why): why is string => why !== undefined);
                throw new PlacementError(
                    floor.configKey,
                    `"${w.name}" runs only on Pis with ${[...(floor.memoryMb > 0 ? [`at least ${floor.memoryMb} MB of memory`] : []), ...(floor.ssd ? ["storage: ssd"] : [])].join(" and ")} and needs ${w.replicas}, got ${able.length}${able.length ? ` (${able.map((u) => u.pi.name).join(", ")})` : ""}; refused: ${refused.join("; ")}; expected ${w.replicas} such Pis`,
                );
            }
        }
        const eligible = usage.filter((u) => meetsConstraints(u.pi, w.constraints) && (!onSsd || u.pi.storage === "ssd") && (!floor || !belowFloor(u.pi, floor)));
        if (onSsd && eligible.length < w.replicas) {
            const ssd = usage.filter((u) => u.pi.storage === "ssd").map((u) => u.pi.name);
            throw new PlacementError(
                w.fsyncHeavy!.allowSdCardKey,
                `"${w.name}" fsyncs on every write and needs ${w.replicas} Pi(s) with storage: ssd, got ${ssd.length}${ssd.length ? ` (${ssd.join(", ")})` : ""}; on SD cards it is known to miss heartbeats and lose leader elections. Expected more SSD Pis, or ${w.fsyncHeavy!.allowSdCardKey}: true to accept SD cards`,
            );
        }
        if (eligible.length === 0) {
            throw new PlacementError(w.configKey, `expected at least one Pi meeting the placement constraints ${JSON.stringify(w.constraints)}, got none; Pis: ${pis.map(describePi).join(", ")}`);
        }
        if (w.spread && w.replicas > eligible.length) {
            throw new PlacementError(
                `${w.configKey}.replicas`,
                `${w.replicas} replicas must run on distinct Pis but only ${eligible.length} Pi(s) are eligible (${eligible.map((u) => u.pi.name).join(", ")}); expected at most ${eligible.length} replicas, more Pis, or spread: false`,
            );
        }
        if (w.quorum) quorumCheck(w, w.quorum, eligible);
        eligibleFor.set(w.name, eligible);
    }

    // A quorum group's members carry its data and join one at a time: only a rebalance that names it moves them.
    const rebalanced = (w: WorkloadDemand) => (options.rebalance === "all" && !w.quorum) || (options.rebalance ?? []).includes(w.name);
    const was = (w: WorkloadDemand): readonly string[] => options.previous?.get(w.name) ?? [];
    const slots = new Map<string, (string | undefined)[]>(order.map((w) => [w.name, new Array<string | undefined>(w.replicas).fill(undefined)]));
    /** Why a replica that had a Pi did not keep it, decided where it is decided. */
    const moved = new Map<string, string>();
    for (const w of order.filter(rebalanced)) was(w).forEach((_, replica) => moved.set(`${w.name}#${replica}`, "rebalance asked for"));
    const take = (w: WorkloadDemand, replica: number, target: MutableUsage) => {
        target.memoryUsedMb += w.memoryMb;
        target.cpusUsed += w.cpus;
        w.hostPorts.forEach((p) => target.ports.set(p, { workload: w.name, key: portKey(w, p) }));
        target.replicas.push({ workload: w.name, component: w.component, replica, memoryMb: w.memoryMb, cpus: w.cpus });
        slots.get(w.name)![replica] = target.pi.name;
    };

    // Pins first: the config names the Pi.
    for (const w of order.filter((w) => w.pinnedTo)) {
        for (let replica = 0; replica < w.replicas; replica++) {
            const target = pinnedTarget(w, replica, byName);
            const before = was(w)[replica];
            if (before !== undefined && before !== target.pi.name) moved.set(`${w.name}#${replica}`, w.pinnedBecause ?? `pinned to ${target.pi.name} by ${w.configKey}`);
            take(w, replica, target);
        }
    }
    // Then every replica that can stay where it was.
    for (const w of order.filter((w) => !w.pinnedTo && !rebalanced(w))) {
        const eligible = eligibleFor.get(w.name)!;
        was(w).forEach((pi, replica) => {
            if (replica >= w.replicas) return;
            const why = cannotStay(w, pi, byName, eligible, slots.get(w.name)!);
            if (why) moved.set(`${w.name}#${replica}`, why);
            else take(w, replica, byName.get(pi)!);
        });
    }
    // Then the rest: new replicas, and those that could not stay.
    for (const w of order.filter((w) => !w.pinnedTo)) {
        const eligible = eligibleFor.get(w.name)!;
        const slot = slots.get(w.name)!;
        for (let replica = 0; replica < w.replicas; replica++) {
            if (slot[replica] !== undefined) continue;
            const chosen = slot.filter((p): p is string => p !== undefined);
            const target = bestPi(w, eligible, chosen);
            if (!target) throw capacityError(w, replica, eligible, chosen);
            take(w, replica, target);
        }
    }

    const assignments = new Map(order.map((w) => [w.name, slots.get(w.name) as string[]]));
    return {
        assignments,
        pis: usage.map((u) => ({
            pi: u.pi.name,
            memoryBudgetMb: u.memoryBudgetMb,
            cpuBudget: u.pi.cpus,
            memoryUsedMb: u.memoryUsedMb,
            cpusUsed: round(u.cpusUsed),
            replicas: [...u.replicas].sort((a, b) => a.workload.localeCompare(b.workload) || a.replica - b.replica),
        })),
        changes: placementChanges(order, assignments, options.previous ?? new Map(), moved),
    };
}

/**
 * A quorum group whose members are on distinct Pis loses one member with any one Pi, so it keeps
 * its quorum only with three members or more; an even number adds a member without adding a loss
 * it survives. Fewer than three eligible Pis cannot do better: one member, and the plan's "lose any
 * one Pi" says what its Pi takes with it.
 */
function quorumCheck(w: WorkloadDemand, group: QuorumGroup, eligible: readonly MutableUsage[]): void {
    const members = w.replicas;
    const pis = eligible.map((u) => u.pi.name).join(", ");
    // A consensus group's quorum is a majority of all members; a managed one's is per partition (Garage: min(3, nodes) copies), so any count serves.
    if (members % 2 === 0 && !group.managedMembership) {
        throw new PlacementError(`${w.configKey}.replicas`, `quorum group "${group.name}" needs an odd number of members, got ${members}: ${members} tolerate no more lost Pis than ${members - 1}; expected ${members - 1} or ${members + 1}`);
    }
    if (members - 1 < group.quorum && eligible.length >= 3) {
        throw new PlacementError(
            `${w.configKey}.replicas`,
            `quorum group "${group.name}" has ${members} member(s) and needs ${group.quorum}: losing the Pi of any one (of ${pis}) would stop it taking writes, and the stack has ${eligible.length} eligible Pis; expected at least 3 members`,
        );
    }
}

/** Why a replica cannot stay on `was`, or undefined when it can. */
function cannotStay(w: WorkloadDemand, was: string, byName: Map<string, MutableUsage>, eligible: MutableUsage[], slot: (string | undefined)[]): string | undefined {
    const u = byName.get(was);
    if (!u) return `${was} is no longer in picloud:pis`;
    if (!eligible.includes(u)) return `${was} no longer meets ${w.configKey}'s placement constraints ${JSON.stringify(w.constraints)}`;
    if (w.spread && slot.includes(was)) return `another replica holds ${was} and ${w.configKey} spreads its replicas over distinct Pis`;
    if (!fits(u, w)) return `it no longer fits on ${was}: ${misfit(u, w).join("; ")}`;
    return undefined;
}

/** Every replica new, moved (with the reason `moved` gives) or gone against `previous`, workloads by name. */
function placementChanges(order: readonly WorkloadDemand[], assignments: ReadonlyMap<string, readonly string[]>, previous: PreviousPlacement, moved: ReadonlyMap<string, string>): PlacementChange[] {
    const changes: PlacementChange[] = [];
    for (const w of [...order].sort((a, b) => a.name.localeCompare(b.name))) {
        const was = previous.get(w.name) ?? [];
        assignments.get(w.name)!.forEach((to, replica) => {
            const from = was[replica];
            if (from !== to) changes.push({ workload: w.name, replica, from, to, reason: from === undefined ? "new replica" : moved.get(`${w.name}#${replica}`)! });
        });
        for (let replica = w.replicas; replica < was.length; replica++) {
            changes.push({ workload: w.name, replica, from: was[replica], reason: `${w.configKey} asks for ${w.replicas} replica${w.replicas === 1 ? "" : "s"}` });
        }
    }
    const known = new Set(order.map((w) => w.name));
    for (const [workload, was] of [...previous].sort(([a], [b]) => a.localeCompare(b))) {
        if (known.has(workload)) continue;
        was.forEach((from, replica) => changes.push({ workload, replica, from, reason: "the workload is no longer in the stack" }));
    }
    return changes;
}

function pinnedTarget(w: WorkloadDemand, replica: number, byName: Map<string, MutableUsage>): MutableUsage {
    const name = w.pinnedTo?.[replica];
    const target = name === undefined ? undefined : byName.get(name);
    if (!target) throw new PlacementError(w.configKey, `replica ${replica} is pinned to unknown Pi ${JSON.stringify(name)}`);
    if (!fits(target, w)) throw capacityError(w, replica, [target], []);
    return target;
}

function bestPi(w: WorkloadDemand, eligible: MutableUsage[], chosen: string[]): MutableUsage | undefined {
    let best: MutableUsage | undefined;
    for (const u of eligible) {
        if (w.spread && chosen.includes(u.pi.name)) continue;
        if (!fits(u, w)) continue;
        if (!best || free(u) > free(best)) best = u;
    }
    return best;
}

function fits(u: MutableUsage, w: WorkloadDemand): boolean {
    return (
        u.memoryUsedMb + w.memoryMb <= u.memoryBudgetMb &&
        u.cpusUsed + w.cpus <= u.pi.cpus + 1e-9 &&
        w.hostPorts.every((p) => !u.ports.has(p))
    );
}

function free(u: MutableUsage): number {
    return u.memoryBudgetMb - u.memoryUsedMb;
}

function meetsConstraints(pi: PiConfig, c: PlacementConstraints): boolean {
    if (c.models && !c.models.includes(pi.model)) return false;
    if (c.storage && pi.storage !== c.storage) return false;
    return Object.entries(c.labels ?? {}).every(([k, v]) => pi.labels[k] === v);
}

function capacityError(w: WorkloadDemand, replica: number, candidates: MutableUsage[], chosen: string[]): PlacementError {
    const lines = candidates.map((u) => {
        const why = [...(w.spread && chosen.includes(u.pi.name) ? ["already holds a replica"] : []), ...misfit(u, w)];
        const held = u.replicas.map((r) => `${r.workload}#${r.replica} ${r.memoryMb} MB`).join(", ") || "nothing";
        return `  ${u.pi.name}: budget ${u.memoryBudgetMb} MB / ${u.pi.cpus} CPU (${u.pi.memoryMb} MB minus the OS reserve), used ${u.memoryUsedMb} MB / ${round(u.cpusUsed)} CPU by ${held}; ${why.join("; ") || "full"}`;
    });
    // When a port clash is what keeps the replica off every Pi, the port's own key is the one to fix.
    const portBlocked = candidates.filter((u) => !(w.spread && chosen.includes(u.pi.name)));
    const clashes = portBlocked.map((u) => w.hostPorts.find((p) => u.ports.has(p)));
    if (portBlocked.length > 0 && clashes.every((p) => p !== undefined)) {
        const port = clashes[0]!;
        const holders = portBlocked.map((u) => {
            const holder = u.ports.get(clashes[portBlocked.indexOf(u)]!)!;
            return `${u.pi.name} by "${holder.workload}" (${holder.key})`;
        });
        // Name the key that chose the port: this workload's, or, when its port is fixed (HAProxy's
        // :80), the key of the workload already holding it.
        const holder = portBlocked[0].ports.get(port)!;
        const key = portKey(w, port) !== w.configKey ? portKey(w, port) : holder.key;
        return new PlacementError(key, `host port ${port} of "${w.name}" is already taken on every Pi it may run on: ${holders.join("; ")}; expected a port no other workload publishes there\n${lines.join("\n")}`,
        );
    }
    return new PlacementError(w.configKey, `replica ${replica + 1} of ${w.replicas} of "${w.name}" (${w.memoryMb} MB, ${w.cpus} CPU) does not fit on any eligible Pi:\n${lines.join("\n")}\nexpected less memory per replica, fewer replicas, or more Pis`,
    );
}

/** What keeps a replica of `w` off `u`: memory, CPU, host ports. */
function misfit(u: MutableUsage, w: WorkloadDemand): string[] {
    const why: string[] = [];
    if (u.memoryUsedMb + w.memoryMb > u.memoryBudgetMb) why.push(`needs ${w.memoryMb} MB, ${free(u)} MB free`);
    if (u.cpusUsed + w.cpus > u.pi.cpus + 1e-9) why.push(`needs ${w.cpus} CPU, ${round(u.pi.cpus - u.cpusUsed)} free`);
    const clash = w.hostPorts.filter((p) => u.ports.has(p));
    if (clash.length) {
        const holders = [...new Set(clash.map((p) => u.ports.get(p)!.workload))];
        why.push(`host port ${clash.join(", ")} already taken by ${holders.map((h) => `"${h}"`).join(", ")}`);
    }
    return why;
}

function portKey(w: WorkloadDemand, port: number, index = w.hostPorts.indexOf(port)): string {
    return w.portKeys?.[index] ?? w.configKey;
}

function describePi(pi: PiConfig): string {
    return `${pi.name} (${pi.model}, ${pi.storage}${Object.keys(pi.labels).length ? ", " + Object.entries(pi.labels).map(([k, v]) => `${k}=${v}`).join(",") : ""})`;
}

function round(n: number): number {
    return Math.round(n * 1000) / 1000;
}
