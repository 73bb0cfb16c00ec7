import * as pulumi from "@pulumi/pulumi";
import type { PiConfig } from "../config/schema";
import { MonitoredComponent, MonitoringEndpoint } from "../monitoring/attachment";
import type { PlacementPlan } from "../placement/place";
import type { PiHost } from "../host/piHost";
import type { DeployedReplica, WorkloadRuntime } from "../runtime/dockerRuntime";
import { ReplicaIdentity, Workload, replicaIdentities } from "../runtime/workload";

/** What every tier component needs to run its workloads. */
export interface TierArgs {
    /** The runtime that turns workloads into replicas (Docker per Pi). */
    readonly runtime: WorkloadRuntime;
    /** Where each workload's replicas go, computed once for the whole stack. */
    readonly placement: PlacementPlan;
    /** The Pis, for addresses of scrape targets. */
    readonly pis: readonly PiConfig[];
    /** Quorum group → the Pis its cluster was formed on, where a member runs elsewhere now (it joins the cluster). */
    readonly founders?: ReadonlyMap<string, readonly string[]>;
    /** Where monitoring declarations are delivered; without one they are recorded only. */
    readonly monitoring?: MonitoringEndpoint;
}

/**
 * The base of every picloud tier component: the one place where a tier's workloads become
 * replicas on the Pis placement chose, as children of the component. Its monitoring is attached
 * last ({@link MonitoredComponent.attach}) and covers every replica and command it created; a tier
 * that forgets to attach it fails when it registers its outputs.
 */
export abstract class TierComponent extends MonitoredComponent {
    /** Every replica this component runs, by workload name. */
    readonly replicas: Readonly<Record<string, readonly DeployedReplica[]>> = {};

    /** Deploys `workloads` where `args.placement` put them. */
    protected runWorkloads(workloads: readonly Workload[], args: TierArgs, dependsOn: readonly pulumi.Resource[] = []): void {
        const replicas: Record<string, readonly DeployedReplica[]> = {};
        for (const w of workloads) {
            const placedOn = args.placement.assignments.get(w.name);
            if (!placedOn) {
                throw new Error(`${w.configKey}: workload "${w.name}" has no placement; add it to the workloads given to placeReplicas`);
            }
            replicas[w.name] = args.runtime.deploy(w, placedOn, { resource: this, name: this.componentName }, dependsOn, args.founders?.get(w.name));
        }
        Object.assign(this.replicas, replicas);
    }
}

/** `host:port` of each replica's published port `hostPort`, in replica order. */
export function replicaEndpoints(workload: string, hostPort: number, args: Pick<TierArgs, "placement" | "pis">): string[] {
    const address = new Map(args.pis.map((p) => [p.name, p.address]));
    return (args.placement.assignments.get(workload) ?? []).map((pi) => `${address.get(pi)}:${hostPort}`);
}

/** The host of Pi `pi`, for a tier that configures the Pi itself; throws naming `configKey` when the stack has none. */
export function hostOf(hosts: ReadonlyMap<string, PiHost>, pi: string, configKey: string): PiHost {
    const host = hosts.get(pi);
    if (!host) throw new Error(`${configKey}: no host for Pi "${pi}"`);
    return host;
}

/** Who each replica of `workload` is, from where placement put them, before the runtime makes them. */
export function placedIdentities(workload: Pick<Workload, "name" | "data">, args: Pick<TierArgs, "placement" | "pis">): ReplicaIdentity[] {
    const address = new Map(args.pis.map((p) => [p.name, p.address]));
    return replicaIdentities(workload, args.placement.assignments.get(workload.name) ?? [], (pi) => address.get(pi)!);
}
