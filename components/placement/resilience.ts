import type { PlacementPlan } from "./place";

/** What losing one Pi would cost. */
export interface PiLossImpact {
    readonly pi: string;
    /** Workloads whose every replica runs on this Pi: they go down with it. */
    readonly lostWorkloads: readonly string[];
    /** Components (tiers) that lose at least one workload entirely. */
    readonly lostComponents: readonly string[];
    /** Workloads that keep running with fewer replicas. */
    readonly degradedWorkloads: readonly string[];
    /** Quorum groups that would drop below their quorum: they stop taking writes. */
    readonly lostQuorums: readonly string[];
}

/** A quorum group as the analysis reads it: its workload and the members it needs. */
export interface QuorumMembers {
    readonly workload: string;
    readonly name: string;
    readonly quorum: number;
}

/**
 * The "lose any one Pi" analysis: for each Pi, which workloads and tiers would lose all their
 * replicas if it died, and which would merely run degraded. Pinned per-Pi agents (node
 * exporters and the like) are expected to die with their Pi and can be left out by the caller.
 */
export function analyseSinglePiLoss(plan: PlacementPlan, componentOf: ReadonlyMap<string, string>, quorums: readonly QuorumMembers[] = []): PiLossImpact[] {
    return plan.pis.map(({ pi }) => {
        const lostQuorums = quorums.filter((q) => (plan.assignments.get(q.workload) ?? []).filter((p) => p !== pi).length < q.quorum).map((q) => q.name);
        const lost: string[] = [];
        const degraded: string[] = [];
        for (const [workload, placedOn] of plan.assignments) {
            if (!placedOn.includes(pi)) continue;
            if (placedOn.every((p) => p === pi)) lost.push(workload);
            else degraded.push(workload);
        }
        const components = new Set(lost.map((w) => componentOf.get(w) ?? w));
        return { pi, lostWorkloads: lost.sort(), lostComponents: [...components].sort(), degradedWorkloads: degraded.sort(), lostQuorums: lostQuorums.sort() };
    });
}

/** A stateful workload as the data-tier summary reads it. */
export interface DataWorkload {
    readonly workload: string;
    readonly component: string;
    /** Its quorum group, when its members vote (etcd, Garage); else a primary and standbys, or one copy. */
    readonly quorum?: QuorumMembers;
}

/** A data tier's members and what losing them costs, for the plan. */
export interface DataTierSummary {
    readonly workload: string;
    readonly component: string;
    /** Each member's Pi and that Pi's storage, in member order. */
    readonly members: readonly { readonly pi: string; readonly storage: string }[];
    /** Members that must stay up for writes, when it votes. */
    readonly quorum?: number;
    /** Members it may lose and still take writes: beyond its quorum, or all but one (a standby is promoted). */
    readonly mayLose: number;
}

/** Each stateful workload's members on their Pis (with the Pis' storage), its quorum and how many members it may lose. */
export function summarizeDataTiers(plan: PlacementPlan, workloads: readonly DataWorkload[], storageOf: ReadonlyMap<string, string>): DataTierSummary[] {
    return workloads.map((w) => {
        const pis = plan.assignments.get(w.workload) ?? [];
        const members = pis.map((pi) => ({ pi, storage: storageOf.get(pi) ?? "unknown" }));
        const quorum = w.quorum?.quorum;
        return { workload: w.workload, component: w.component, members, ...(quorum === undefined ? {} : { quorum }), mayLose: Math.max(0, quorum === undefined ? members.length - 1 : members.length - quorum) };
    });
}
