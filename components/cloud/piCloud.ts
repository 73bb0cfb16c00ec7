import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config/schema";
import { PiHost } from "../host/piHost";
import { scoped } from "../host/renames";
import { planNetwork, stackDeclarations } from "./network";
import { renderNftables } from "../network/nftables";
import { PlacementLock, lockOf, previousPlacement } from "../placement/lock";
import { PlacementChange, PlacementError, PlacementPlan, PreviousPlacement, majority, placeReplicas } from "../placement/place";
import { DataTierSummary, PiLossImpact, analyseSinglePiLoss, summarizeDataTiers } from "../placement/resilience";
import { DockerRuntime } from "../runtime/dockerRuntime";
import { Workload, demandOf } from "../runtime/workload";
import { Monitoring, attachHostMonitoring } from "../tiers/monitoring/monitoring";
import { logShipping } from "../tiers/monitoring/specs";
import { SecretValues, TIERS } from "../tiers/registry";
import { TierComponent } from "../tiers/tierComponent";

/** Arguments of {@link PiCloud}. */
export interface PiCloudArgs {
    /** The validated stack config (see `parseStackConfig`). */
    readonly config: StackConfig;
    /** Secret config values by key: at least `sshPrivateKey`, plus any secretEnv references. */
    readonly secrets: SecretValues;
    /** Name of the cloud in alerts (Prometheus's `cloud` label); default the Pulumi stack name. */
    readonly cloudName?: string;
    /** Where placement starts from: the stack's placement lock. Without one, every run places afresh and replicas may move. */
    readonly placement?: PlacementInput;
}

/** What a stack would run, decided before any resource exists. */
export interface CloudPlan {
    readonly workloads: readonly Workload[];
    readonly placement: PlacementPlan;
    /** The "lose any one Pi" analysis (per-Pi agents left out: they are meant to die with their Pi). */
    readonly singlePiLoss: readonly PiLossImpact[];
    /** Each stateful workload's members, quorum and what losing members costs. */
    readonly dataTiers: readonly DataTierSummary[];
    /** The placement as a lock, to keep it on the next run. */
    readonly lock: PlacementLock;
    /** What changed against the lock placement started from: new, moved and removed replicas, with reasons. */
    readonly changes: readonly PlacementChange[];
    /** Quorum group → the Pis its cluster was formed on, for groups with a member elsewhere now (it joins). */
    readonly founders: ReadonlyMap<string, readonly string[]>;
}

/** Where placement starts from. */
export interface PlacementInput {
    /** The stack's placement lock: replicas stay where it puts them while they can. Without one, everything is placed afresh. */
    readonly lock?: PlacementLock;
    /** Workloads to place afresh, ignoring the lock ("all": every one). */
    readonly rebalance?: readonly string[] | "all";
}

/**
 * Collects every workload of the stack (the Monitoring tier's and every enabled tier's), places
 * them on the Pis and checks capacity. Pure apart from carrying secret inputs through; throws a
 * PlacementError naming the workload's config key.
 */
export function planCloud(config: StackConfig, secrets: SecretValues, input: PlacementInput = {}): CloudPlan {
    const renamed = input.lock ? renamedPlacement(previousPlacement(input.lock), config, input.lock.founders) : undefined;
    const previous = renamed?.placement;
    const workloads = TIERS.flatMap((tier) => tier.workloads(config, secrets, previous));
    const hostDemands = TIERS.flatMap((tier) => tier.hostDemands?.(config) ?? []);
    // Per-Pi agents run on every Pi and die with it by design: the lock and the analysis leave them out.
    const counted = [...workloads.filter((w) => !w.hostAgent), ...hostDemands];
    const lockedNames = new Set(counted.map((w) => w.name));
    const placement = placeReplicas(config.pis, config.osReserveMb, [...workloads.map(demandOf), ...hostDemands], { previous, rebalance: input.rebalance });
    const analysed: PlacementPlan = { ...placement, assignments: new Map(counted.map((w) => [w.name, placement.assignments.get(w.name)!])) };
    const founders = clusterFounders(workloads, placement.assignments, previous, renamed?.founders);
    return {
        workloads,
        placement,
        founders,
        singlePiLoss: analyseSinglePiLoss(
            analysed,
            new Map(counted.map((w) => [w.name, w.component])),
            workloads.flatMap((w) => (w.quorum ? [{ workload: w.name, ...w.quorum }] : [])),
        ),
        dataTiers: summarizeDataTiers(
            placement,
            workloads.filter((w) => w.data && !w.hostAgent).map((w) => ({ workload: w.name, component: w.component, ...(w.quorum ? { quorum: { workload: w.name, ...w.quorum } } : {}) })),
            new Map(config.pis.map((p) => [p.name, p.storage])),
        ),
        lock: lockOf(placement.assignments, [...lockedNames], founders),
        changes: [...(renamed?.changes ?? []), ...placement.changes.filter((c) => lockedNames.has(c.workload) || !c.to)],
    };
}

/**
 * Where each quorum group's cluster was formed, for the groups that have a member anywhere else
 * now: such a member joins the running cluster rather than forming one. A group placed for the
 * first time, or whose every member is gone (its data with them), forms a new cluster. Throws a
 * PlacementError when the members that stay could not let a member join: fewer than a majority of
 * the running cluster, or a cluster that would shrink (etcd cannot drop members it cannot reach).
 */
function clusterFounders(
    workloads: readonly Workload[],
    assignments: ReadonlyMap<string, readonly string[]>,
    previous: PreviousPlacement | undefined,
    previousFounders: ReadonlyMap<string, readonly string[]> | undefined,
): Map<string, readonly string[]> {
    const founders = new Map<string, readonly string[]>();
    for (const w of workloads.filter((x) => x.quorum)) {
        const was = previous?.get(w.name);
        const now = assignments.get(w.name) ?? [];
        if (!was || was.length === 0) continue;
        const managed = w.quorum!.managedMembership;
        if (managed) {
            // The copies of each item are fixed when the cluster forms (Garage's replication factor).
            const copies = (members: number) => Math.min(managed.maxCopies, members);
            if (copies(now.length) !== copies(was.length)) {
                throw new PlacementError(
                    w.configKey,
                    `quorum group "${w.quorum!.name}" was formed with ${was.length} member(s) keeping ${copies(was.length)} copies of everything, fixed for the life of its data; ${now.length} would keep ${copies(now.length)}, which the running cluster refuses; expected ${copies(was.length) > copies(now.length) ? `at least ${copies(was.length)} members (Pis that may carry one)` : `${was.length} members, or a new cluster with its data moved over`}`,
                );
            }
        }
        if (now.length < was.length && !managed) {
            throw new PlacementError(
                `${w.configKey}.replicas`,
                `quorum group "${w.quorum!.name}" would shrink from ${was.length} members to ${now.length}: its running cluster would keep counting the ${was.length - now.length} it loses and lose its quorum; expected the Pis to keep ${was.length} members (${was.join(", ")})`,
            );
        }
        const stayed = was.filter((pi, i) => now[i] === pi).length;
        // Every member gone, and its data with it: what is placed now forms a new cluster.
        if (stayed === 0) continue;
        if (stayed < majority(was.length)) {
            const moved = was.flatMap((pi, i) => (now[i] === pi ? [] : [`#${i} ${pi} → ${now[i]}`]));
            throw new PlacementError(
                `${w.configKey}.replicas`,
                `quorum group "${w.quorum!.name}" would replace ${moved.length} of its ${was.length} members at once (${moved.join(", ")}): the ${stayed} that stay are no majority and cannot let new members join; expected at most ${was.length - majority(was.length)} member(s) moved per pulumi up`,
            );
        }
        // Its own step brings a new member in: nothing joins by itself.
        if (managed) continue;
        const formedOn = previousFounders?.get(w.name) ?? was;
        if (now.some((pi, i) => formedOn[i] !== pi)) founders.set(w.name, formedOn);
    }
    return founders;
}

/**
 * The lock's placement under today's names: a Pi's or a workload's `renamedFrom` carries its
 * entries over, so a rename moves nothing; each carried replica is listed as a change. Founders
 * are carried over alike.
 */
function renamedPlacement(
    previous: PreviousPlacement,
    config: StackConfig,
    previousFounders: Readonly<Record<string, readonly string[]>> = {},
): { placement: PreviousPlacement; changes: PlacementChange[]; founders: Map<string, readonly string[]> } {
    const piNames = new Map(config.pis.flatMap((pi) => (pi.renamedFrom === undefined ? [] : [[pi.renamedFrom, pi.name] as const])));
    const workloadNames = new Map(TIERS.flatMap((tier) => tier.workloadRenames?.(config) ?? []).map((r) => [r.from, r.to] as const));
    const changes: PlacementChange[] = [];
    const placement = new Map<string, readonly string[]>();
    for (const [workload, pis] of previous) {
        const name = workloadNames.get(workload) ?? workload;
        if (placement.has(name) && name !== workload) continue;
        const now = pis.map((pi) => piNames.get(pi) ?? pi);
        now.forEach((pi, replica) => {
            if (name !== workload) changes.push({ workload: name, replica, from: pis[replica], to: pi, reason: `renamed from ${workload}` });
            else if (pi !== pis[replica]) changes.push({ workload, replica, from: pis[replica], to: pi, reason: `Pi ${pis[replica]} renamed to ${pi}` });
        });
        placement.set(name, now);
    }
    const founders = new Map(Object.entries(previousFounders).map(([w, pis]) => [workloadNames.get(w) ?? w, pis.map((pi) => piNames.get(pi) ?? pi)] as const));
    return { placement, changes, founders };
}

/**
 * A whole picloud: one {@link PiHost} per Pi, the Docker runtime over them, the Monitoring tier,
 * and every tier the stack's config enables, each with its monitoring attached. Placement and
 * capacity are checked before anything is registered.
 */
export class PiCloud extends pulumi.ComponentResource {
    /** The plan this cloud was built from. */
    readonly plan: CloudPlan;
    /** The config it was built from. */
    readonly config: StackConfig;
    /** Hosts by Pi name. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** The Monitoring tier every component attaches to. */
    readonly monitoring: Monitoring;
    /** Tier components, in composition order. */
    readonly components: readonly TierComponent[];

    constructor(name: string, args: PiCloudArgs, opts?: pulumi.ComponentResourceOptions) {
        const plan = planCloud(args.config, args.secrets, args.placement);
        super("picloud:cloud:PiCloud", name, {}, opts);
        this.plan = plan;
        this.config = args.config;
        const privateKey = args.secrets.sshPrivateKey;
        if (privateKey === undefined) throw new Error("picloud:sshPrivateKey: expected the SSH private key secret, got nothing");
        const { config } = args;

        // Every Pi's firewall opens exactly the flows the stack's tiers declare.
        const network = planNetwork(config, plan, { mgmtNetwork: config.network?.mgmt });
        // Children are named after the cloud (`<cloud>-<pi>`, `<cloud>-monitoring`, …) so two
        // PiClouds in one program never share a URN; each keeps its earlier name as an alias.
        const scope = (child: string) => scoped(name, child, { parent: this } as pulumi.ComponentResourceOptions);
        // Every Pi's journal goes to VictoriaLogs, when the stack has it.
        const logs = logShipping(plan.placement, config.pis, config.tiers.monitoring);
        this.hosts = new Map(
            config.pis.map((pi) => {
                const host = scope(pi.name);
                return [pi.name, new PiHost(host.name, { pi, privateKey, bootstrap: config.bootstrap, firewall: renderNftables(pi.name, network), logShipping: logs }, host.opts)];
            }),
        );
        const base = { runtime: new DockerRuntime(this.hosts, { identityFile: config.sshIdentityFile }), placement: plan.placement, founders: plan.founders, pis: config.pis };
        const cloudName = args.cloudName ?? pulumi.getStack();
        const declared = stackDeclarations({ config, placement: plan.placement });
        const components: TierComponent[] = [];
        let monitoring: Monitoring | undefined;
        for (const tier of TIERS) {
            const made = tier.create({ config, secrets: args.secrets, args: { ...base, monitoring: monitoring?.endpoint }, hosts: this.hosts, scope, created: components, cloudName, declared });
            components.push(...made);
            const tierMonitoring = made.find((c): c is Monitoring => c instanceof Monitoring);
            if (tierMonitoring) {
                monitoring = tierMonitoring;
                // Hosts come first (the monitoring Pi is one of them), so they attach once monitoring exists.
                for (const host of this.hosts.values()) attachHostMonitoring(host, monitoring.endpoint, config.tiers.monitoring.victoriaLogs);
            }
        }
        if (!monitoring) throw new Error("picloud:tiers.monitoring: expected the Monitoring tier among the tiers, got none");
        this.monitoring = monitoring;
        this.components = components;
        this.registerOutputs({});
    }
}
