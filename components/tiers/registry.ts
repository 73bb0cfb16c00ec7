import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config/schema";
import type { PiHost } from "../host/piHost";
import type { WorkloadDemand } from "../placement/place";
import type { Workload } from "../runtime/workload";
import { AppServers, appWorkload } from "./apps/appServers";
import { Functions } from "./functions/functionsTier";
import { faasdDemand } from "./functions/specs";
import { LoadBalancer } from "./loadBalancer/loadBalancer";
import { EdgeBackend, loadBalancerWorkload } from "./loadBalancer/specs";
import type { TierArgs, TierComponent } from "./tierComponent";

/** Secret config values by key (without the `picloud:` prefix). */
export type SecretValues = Readonly<Record<string, pulumi.Input<string>>>;

/** What a tier's components are built from. */
export interface TierContext {
    readonly config: StackConfig;
    readonly secrets: SecretValues;
    /** Runtime, placement, Pis and the monitoring endpoint. */
    readonly args: TierArgs;
    /** Hosts by Pi name, for tiers that configure a Pi itself over SSH. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    readonly parent: pulumi.Resource;
    /** The components of the tiers composed before this one. */
    readonly created: readonly TierComponent[];
}

/**
 * How {@link PiCloud} composes a tier from a stack's config: first the workloads it will run
 * (so the whole stack is placed and capacity-checked before any resource exists), then its
 * components.
 */
export interface TierDefinition {
    /** Key under `picloud:tiers`. */
    readonly key: keyof StackConfig["tiers"];
    /** The tier's workloads for this config; empty when the tier is not enabled. */
    workloads(config: StackConfig, secrets: SecretValues): Workload[];
    /** What the tier installs on Pis itself, outside the runtime (faasd), for placement to reserve. */
    hostDemands?(config: StackConfig): WorkloadDemand[];
    /** The tier's components, as children of `context.parent`. */
    create(context: TierContext): TierComponent[];
}

/** A component that sits behind the load balancer. */
export interface EdgeComponent {
    /** Its backend and routes; undefined when it cannot be reached from the load balancer. */
    readonly edge?: EdgeBackend;
}

const appsTier: TierDefinition = {
    key: "apps",
    workloads: (config, secrets) => Object.entries(config.tiers.apps ?? {}).map(([name, app]) => appWorkload(name, app, secrets)),
    create: ({ config, secrets, args, parent }) =>
        Object.entries(config.tiers.apps ?? {}).map(
            ([name, app]) => new AppServers(name, { ...args, app, secrets, loadBalanced: config.tiers.loadBalancer !== undefined }, { parent }),
        ),
};

const functionsTier: TierDefinition = {
    key: "functions",
    workloads: () => [],
    hostDemands: (config) => (config.tiers.functions ? [faasdDemand(config.tiers.functions, config.pis)] : []),
    create: ({ config, args, hosts, parent }) => {
        const options = config.tiers.functions;
        if (!options) return [];
        return [new Functions("functions", { ...args, options, hosts, loadBalanced: config.tiers.loadBalancer !== undefined }, { parent })];
    },
};

const loadBalancerTier: TierDefinition = {
    key: "loadBalancer",
    workloads: (config) => (config.tiers.loadBalancer ? [loadBalancerWorkload(config.tiers.loadBalancer, config.pis)] : []),
    create: ({ config, secrets, args, hosts, parent, created }) => {
        const options = config.tiers.loadBalancer;
        if (!options) return [];
        const backends = created.flatMap((c) => (c as Partial<EdgeComponent>).edge ?? []);
        return [new LoadBalancer("loadbalancer", { ...args, options, backends, hosts, secrets, subnet: config.network?.subnet }, { parent })];
    },
};

/** Every tier this version of picloud can build, in the order they are composed (the load balancer after what it fronts). */
export const TIERS: readonly TierDefinition[] = [appsTier, functionsTier, loadBalancerTier];
