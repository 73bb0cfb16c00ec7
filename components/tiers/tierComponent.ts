import * as pulumi from "@pulumi/pulumi";
import type { PiConfig } from "../config/schema";
import { Attachment, MonitoringEndpoint } from "../monitoring/attachment";
import type { MonitoringSpec } from "../monitoring/contract";
import type { PlacementPlan } from "../placement/place";
import type { DeployedReplica, WorkloadRuntime } from "../runtime/dockerRuntime";
import type { Workload } from "../runtime/workload";

/** What every tier component needs to run its workloads. */
export interface TierArgs {
    /** The runtime that turns workloads into replicas (Docker per Pi). */
    readonly runtime: WorkloadRuntime;
    /** Where each workload's replicas go, computed once for the whole stack. */
    readonly placement: PlacementPlan;
    /** The Pis, for addresses of scrape targets. */
    readonly pis: readonly PiConfig[];
    /** Where monitoring declarations are delivered; without one they are recorded only. */
    readonly monitoring?: MonitoringEndpoint;
}

/**
 * Attaches monitoring to any component, picloud's or a user's own: a `picloud:monitoring:Attachment`
 * child that declares scrape targets, alerts, a dashboard and log labels and delivers them to the
 * Monitoring tier. The policy pack refuses a component that runs something without one.
 */
export function attachMonitoring(component: pulumi.ComponentResource, name: string, spec: MonitoringSpec, endpoint?: MonitoringEndpoint): Attachment {
    return new Attachment(`${name}-monitoring`, { spec, endpoint }, { parent: component });
}

/**
 * The base of every picloud tier component: the one place where a tier's workloads become
 * replicas on the Pis placement chose, as children of the component, and where its monitoring is
 * attached. A tier cannot run workloads without saying how they are monitored.
 */
export abstract class TierComponent extends pulumi.ComponentResource {
    /** Every replica this component runs, by workload name. */
    readonly replicas: Readonly<Record<string, readonly DeployedReplica[]>> = {};
    /** This component's monitoring. */
    monitoring?: Attachment;

    constructor(type: string, private readonly componentName: string, opts?: pulumi.ComponentResourceOptions) {
        super(type, componentName, {}, opts);
    }

    /** Attaches this component's monitoring; {@link runWorkloads} does it for tiers that run workloads. */
    protected attach(monitoring: MonitoringSpec, args: Pick<TierArgs, "monitoring">): Attachment {
        this.monitoring = attachMonitoring(this, this.componentName, monitoring, args.monitoring);
        return this.monitoring;
    }

    /** Deploys `workloads` where `args.placement` put them and attaches `monitoring`. */
    protected runWorkloads(workloads: readonly Workload[], monitoring: MonitoringSpec, args: TierArgs, dependsOn: readonly pulumi.Resource[] = []): void {
        this.attach(monitoring, args);
        const replicas: Record<string, readonly DeployedReplica[]> = {};
        for (const w of workloads) {
            const placedOn = args.placement.assignments.get(w.name);
            if (!placedOn) {
                throw new Error(`${w.configKey}: workload "${w.name}" has no placement; add it to the workloads given to placeReplicas`);
            }
            replicas[w.name] = args.runtime.deploy(w, placedOn, this, dependsOn);
        }
        Object.assign(this.replicas, replicas);
    }
}

/** `host:port` of each replica's published port `hostPort`, in replica order. */
export function replicaEndpoints(workload: string, hostPort: number, args: Pick<TierArgs, "placement" | "pis">): string[] {
    const address = new Map(args.pis.map((p) => [p.name, p.address]));
    return (args.placement.assignments.get(workload) ?? []).map((pi) => `${address.get(pi)}:${hostPort}`);
}
