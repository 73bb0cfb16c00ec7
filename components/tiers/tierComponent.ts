import * as pulumi from "@pulumi/pulumi";
import type { PlacementPlan } from "../placement/place";
import type { DeployedReplica, WorkloadRuntime } from "../runtime/dockerRuntime";
import type { Workload } from "../runtime/workload";

/** What every tier component needs to run its workloads. */
export interface TierArgs {
    /** The runtime that turns workloads into replicas (Docker per Pi). */
    readonly runtime: WorkloadRuntime;
    /** Where each workload's replicas go, computed once for the whole stack. */
    readonly placement: PlacementPlan;
}

/**
 * The base of every picloud tier component: the one place where a tier's workloads become
 * replicas on the Pis placement chose, as children of the component. Shared behaviour that every
 * tier must have (monitoring attachment, naming) belongs here rather than in each tier.
 */
export abstract class TierComponent extends pulumi.ComponentResource {
    /** Every replica this component runs, by workload name. */
    readonly replicas: Readonly<Record<string, readonly DeployedReplica[]>> = {};

    constructor(type: string, name: string, opts?: pulumi.ComponentResourceOptions) {
        super(type, name, {}, opts);
    }

    /** Deploys `workloads` where `args.placement` put them. */
    protected runWorkloads(workloads: readonly Workload[], args: TierArgs): void {
        const replicas: Record<string, readonly DeployedReplica[]> = {};
        for (const w of workloads) {
            const placedOn = args.placement.assignments.get(w.name);
            if (!placedOn) {
                throw new Error(`${w.configKey}: workload "${w.name}" has no placement; add it to the workloads given to placeReplicas`);
            }
            replicas[w.name] = args.runtime.deploy(w, placedOn, this);
        }
        Object.assign(this.replicas, replicas);
    }
}
