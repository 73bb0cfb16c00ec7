import type * as pulumi from "@pulumi/pulumi";
import type { HealthcheckConfig, PlacementConstraints } from "../config/tiers";
import type { WorkloadDemand } from "../placement/place";

/** A port a workload listens on. */
export interface WorkloadPort {
    /** Port inside the container. */
    readonly container: number;
    /** Port published on the Pi; default: not published. */
    readonly host?: number;
    /** Default "tcp". */
    readonly protocol?: "tcp" | "udp";
    /** The config key that chose the host port, for errors (default: the workload's own key). */
    readonly configKey?: string;
}

/** A volume mounted into a workload. */
export interface WorkloadVolume {
    /** Docker named volume (created on first use), or... */
    readonly volume?: string;
    /** ...a path on the Pi. Exactly one of the two. */
    readonly hostPath?: string;
    readonly containerPath: string;
    /** Default false. */
    readonly readOnly?: boolean;
}

/**
 * Everything a tier says about one thing it runs. A runtime (Docker per Pi now, k3s later) turns
 * it into real resources; no tier creates containers itself.
 */
export interface Workload {
    /** Unique name in the stack; replicas are `<name>-<n>`. */
    readonly name: string;
    /** The component (tier) that owns it, for reports and labels. */
    readonly component: string;
    /** The config key that declared it, for error messages. */
    readonly configKey: string;
    /** Image pinned by digest. */
    readonly image: string;
    /** Command override, exec form. */
    readonly command?: readonly string[];
    /** Replicas; default 1. */
    readonly replicas?: number;
    /** Put each replica on a different Pi; default true when there is more than one replica. */
    readonly spread?: boolean;
    /** Memory limit per replica, MB. */
    readonly memoryMb: number;
    /** CPU limit per replica, cores. */
    readonly cpus: number;
    readonly ports?: readonly WorkloadPort[];
    /** Plain environment. */
    readonly env?: Readonly<Record<string, string>>;
    /** Secret environment; values stay Pulumi secrets end to end. */
    readonly secretEnv?: Readonly<Record<string, pulumi.Input<string>>>;
    readonly volumes?: readonly WorkloadVolume[];
    /** Share the Pi's network namespace (host agents such as node_exporter); ports are then the Pi's. */
    readonly hostNetwork?: boolean;
    /** Full access to the Pi's devices (cAdvisor); only for host agents. */
    readonly privileged?: boolean;
    /** User the container's process starts as, overriding the image's (e.g. "root" for a daemon that binds :80 with host networking, then drops privileges itself). */
    readonly user?: string;
    /** Docker networks to join; default: the default bridge. */
    readonly networks?: readonly string[];
    readonly healthcheck?: HealthcheckConfig;
    /** Default "unless-stopped". */
    readonly restart?: "no" | "always" | "unless-stopped" | "on-failure";
    /** Placement constraints; default none. */
    readonly placement?: PlacementConstraints;
    /** Pin replica n to Pi `pinnedTo[n]`; overrides placement. */
    readonly pinnedTo?: readonly string[];
    /** Why it is pinned there, for the plan's list of moves. */
    readonly pinnedBecause?: string;
    /** A host agent (one per Pi, e.g. node_exporter): it dies with its Pi by design, so the single-Pi-loss analysis leaves it out. */
    readonly hostAgent?: boolean;
    /** Where the workload serves Prometheus metrics. */
    readonly metrics?: { readonly port: number; readonly path: string };
    /** Labels attached to the workload's log stream. */
    readonly logLabels?: Readonly<Record<string, string>>;
}

/** The part of a workload that placement reasons about. */
export function demandOf(w: Workload): WorkloadDemand {
    const replicas = w.pinnedTo?.length ?? w.replicas ?? 1;
    return {
        name: w.name,
        component: w.component,
        configKey: w.configKey,
        replicas,
        spread: w.spread ?? replicas > 1,
        memoryMb: w.memoryMb,
        cpus: w.cpus,
        hostPorts: (w.ports ?? []).flatMap((p) => (p.host === undefined ? [] : [p.host])),
        portKeys: (w.ports ?? []).flatMap((p) => (p.host === undefined ? [] : [p.configKey])),
        constraints: w.placement ?? {},
        pinnedTo: w.pinnedTo,
        pinnedBecause: w.pinnedBecause,
    };
}
