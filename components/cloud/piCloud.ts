import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config/schema";
import { PiHost } from "../host/piHost";
import { PlacementPlan, placeReplicas } from "../placement/place";
import { PiLossImpact, analyseSinglePiLoss } from "../placement/resilience";
import { DockerRuntime } from "../runtime/dockerRuntime";
import { Workload, demandOf } from "../runtime/workload";
import type { TierComponent } from "../tiers/tierComponent";
import { SecretValues, TIERS } from "../tiers/registry";

/** Arguments of {@link PiCloud}. */
export interface PiCloudArgs {
    /** The validated stack config (see `parseStackConfig`). */
    readonly config: StackConfig;
    /** Secret config values by key: at least `sshPrivateKey`, plus any secretEnv references. */
    readonly secrets: SecretValues;
    /** A known_hosts file with every Pi's host key (see `renderKnownHosts`), for Docker over ssh://. */
    readonly knownHostsFile: string;
}

/** What a stack would run, decided before any resource exists. */
export interface CloudPlan {
    readonly workloads: readonly Workload[];
    readonly placement: PlacementPlan;
    /** The "lose any one Pi" analysis. */
    readonly singlePiLoss: readonly PiLossImpact[];
}

/**
 * Collects every enabled tier's workloads, places them on the Pis and checks capacity. Pure apart
 * from carrying secret inputs through; throws a PlacementError naming the workload's config key.
 */
export function planCloud(config: StackConfig, secrets: SecretValues): CloudPlan {
    const workloads = TIERS.flatMap((tier) => tier.workloads(config, secrets));
    const placement = placeReplicas(config.pis, config.osReserveMb, workloads.map(demandOf));
    const componentOf = new Map(workloads.filter((w) => !w.pinnedTo).map((w) => [w.name, w.component]));
    const perPiAgents = new Set(workloads.filter((w) => w.pinnedTo).map((w) => w.name));
    const replicated: PlacementPlan = {
        ...placement,
        assignments: new Map([...placement.assignments].filter(([name]) => !perPiAgents.has(name))),
    };
    return { workloads, placement, singlePiLoss: analyseSinglePiLoss(replicated, componentOf) };
}

/**
 * A whole picloud: one {@link PiHost} per Pi, the Docker runtime over them, and every tier the
 * stack's config enables. Placement and capacity are checked before anything is registered.
 */
export class PiCloud extends pulumi.ComponentResource {
    /** The plan this cloud was built from. */
    readonly plan: CloudPlan;
    /** Hosts by Pi name. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** Tier components, in composition order. */
    readonly components: readonly TierComponent[];

    constructor(name: string, args: PiCloudArgs, opts?: pulumi.ComponentResourceOptions) {
        const plan = planCloud(args.config, args.secrets);
        super("picloud:cloud:PiCloud", name, {}, opts);
        this.plan = plan;
        const privateKey = args.secrets.sshPrivateKey;
        if (privateKey === undefined) throw new Error("picloud:sshPrivateKey: expected the SSH private key secret, got nothing");

        this.hosts = new Map(
            args.config.pis.map((pi) => [
                pi.name,
                new PiHost(
                    pi.name,
                    {
                        pi,
                        privateKey,
                        bootstrap: args.config.bootstrap,
                        knownHostsFile: args.knownHostsFile,
                        identityFile: args.config.sshIdentityFile,
                    },
                    { parent: this },
                ),
            ]),
        );
        const tierArgs = { runtime: new DockerRuntime(this.hosts), placement: plan.placement };
        this.components = TIERS.flatMap((tier) => tier.create(args.config, args.secrets, tierArgs, this));
        this.registerOutputs({});
    }
}
