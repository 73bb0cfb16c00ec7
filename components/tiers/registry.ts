import type * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config/schema";
import type { Workload } from "../runtime/workload";
import { AppServers, appWorkload } from "./apps/appServers";
import type { TierArgs, TierComponent } from "./tierComponent";

/** Secret config values by key (without the `picloud:` prefix). */
export type SecretValues = Readonly<Record<string, pulumi.Input<string>>>;

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
    /** The tier's components, as children of `parent`. */
    create(config: StackConfig, secrets: SecretValues, args: TierArgs, parent: pulumi.Resource): TierComponent[];
}

const appsTier: TierDefinition = {
    key: "apps",
    workloads: (config, secrets) => Object.entries(config.tiers.apps ?? {}).map(([name, app]) => appWorkload(name, app, secrets)),
    create: (config, secrets, args, parent) =>
        Object.entries(config.tiers.apps ?? {}).map(([name, app]) => new AppServers(name, { ...args, app, secrets }, { parent })),
};

/** Every tier this version of picloud can build, in the order they are composed. */
export const TIERS: readonly TierDefinition[] = [appsTier];
