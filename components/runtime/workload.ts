import type * as pulumi from "@pulumi/pulumi";
import type { HealthcheckConfig, PlacementConstraints } from "../config/workload";
import type { HardwareFloor, QuorumGroup, WorkloadDemand } from "../placement/place";

/** Where a stateful replica keeps its data on its Pi: on the SSD when the Pi boots from one. */
export const DATA_ROOT = "/srv/picloud/data";

/** Who a replica of a stateful workload is: its index, its Pi, and its data on that Pi. */
export interface ReplicaIdentity {
    readonly index: number;
    readonly pi: string;
    readonly address: string;
    /** Its data folder on the Pi, when the workload has a data volume. */
    readonly dataPath?: string;
    /** It runs away from the Pi its cluster was formed on (a replaced or added member): it joins the running cluster. */
    readonly joins?: boolean;
}

/**
 * What a client workload gets from a tier it uses (an app naming a blob key or a database): where
 * to connect, plain, and its credentials as secrets.
 */
export interface ClientEnvironment {
    readonly env: Readonly<Record<string, string>>;
    readonly secretEnv: Readonly<Record<string, pulumi.Input<string>>>;
}

/** What a replica's own settings add to the workload's: computed from who it is and who its peers are. */
export interface ReplicaSettings {
    readonly command?: readonly string[];
    readonly env?: Readonly<Record<string, string>>;
}

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
    /** Bound to the Pi's loopback only (host networking): reserved on the Pi, reached by nothing beyond it, so no flow opens it. */
    readonly loopback?: boolean;
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
    /** Image pinned by digest; with `build`, the tag each Pi builds it under (content-addressed by the Dockerfile). */
    readonly image: string;
    /**
     * Built on each Pi its replicas run on, from this Dockerfile (no build context: every file it
     * needs comes from its pinned base and hash-pinned packages), by that Pi's Docker engine. The
     * container then runs the built image by its ID.
     */
    readonly build?: { readonly dockerfile: string };
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
    /**
     * A data folder per replica, `/srv/picloud/data/<name>-<n>` on its Pi, mounted at
     * `containerPath` and owned by `owner` (uid:gid). Placement keeps the replica on its Pi, so its
     * data stays with it. Deleting the workload keeps the folder unless `keep` is false.
     */
    readonly data?: { readonly containerPath: string; readonly owner?: { readonly uid: number; readonly gid: number }; readonly keep?: boolean };
    /** Each replica's own command and environment, from its identity and its peers' (a cluster member's name and peer list). */
    readonly perReplica?: (self: ReplicaIdentity, members: readonly ReplicaIdentity[]) => ReplicaSettings;
    /**
     * How a change reaches the replicas: "one-at-a-time" (default: replica n only once n - 1 is back
     * and healthy), "leader-last" (one at a time too, and a replica that leads its cluster first
     * hands leadership to a peer that is not about to restart: see {@link leaderHandOff}), or
     * "recreate" (all at once, for what cannot run two versions side by side).
     */
    readonly updateStrategy?: "one-at-a-time" | "leader-last" | "recreate";
    /**
     * With "leader-last": the script, run on the replica's Pi before every change to it, that hands
     * its leadership to a peer when it leads (and does nothing when it does not, or does not run).
     * Replicas change in index order, so the peer should be one already changed (a lower index),
     * or, for the first, the one changed last.
     */
    readonly leaderHandOff?: (self: ReplicaIdentity, members: readonly ReplicaIdentity[]) => string;
    /**
     * The join step of a member that {@link ReplicaIdentity.joins}: a script run on the Pi of `via`,
     * a member that stays, before the joining member starts (e.g. `etcdctl member remove` of the
     * member it replaces and `member add` of itself). Idempotent: it runs again when its inputs change.
     */
    readonly join?: (self: ReplicaIdentity, members: readonly ReplicaIdentity[], via: ReplicaIdentity) => string;
    /** Its replicas form a quorum group: each on a Pi of its own, and placement checks what losing one Pi does to it. */
    readonly quorum?: QuorumGroup;
    /** It fsyncs on every write: SSD Pis only, unless the config allows SD cards (`allowSdCardKey`). */
    readonly fsyncHeavy?: { readonly allowSdCard: boolean; readonly allowSdCardKey: string };
    /** The least a Pi must have to carry a replica; other Pis are refused, each named with its reason. */
    readonly hardwareFloor?: HardwareFloor;
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

/** The container label each of a workload's log labels becomes: `picloud.log.<key>`. */
export const LOG_LABEL_PREFIX = "picloud.log.";

/**
 * The journal field Docker's journald log driver makes of a container label it is told to pass
 * on (`--log-opt labels=`): letters upper-cased, anything else but digits `_`, no leading `_`
 * (moby's sanitizeKeyMod). `picloud.log.tier` becomes `PICLOUD_LOG_TIER`.
 */
export function journalFieldOf(label: string): string {
    return label
        .replace(/[a-z]/g, (c) => c.toUpperCase())
        .replace(/[^A-Z0-9]/g, "_")
        .replace(/^_+/, "");
}

/**
 * The peer a replica hands its leadership to before it changes, under "leader-last": one already
 * changed when there is one (the first), else the one changed last. Undefined for a lone replica.
 */
export function handOffTarget(self: ReplicaIdentity, members: readonly ReplicaIdentity[]): ReplicaIdentity | undefined {
    if (members.length < 2) return undefined;
    return self.index > 0 ? members[0] : members[members.length - 1];
}

/** The part of a workload that placement reasons about. */
export function demandOf(w: Workload): WorkloadDemand {
    const replicas = w.pinnedTo?.length ?? w.replicas ?? 1;
    // One port number over both UDP and TCP (DNS) is one claim on the Pi; the same one twice is a clash.
    const published = (w.ports ?? []).filter(
        (p, i, all) => p.host !== undefined && !all.slice(0, i).some((q) => q.host === p.host && (q.protocol ?? "tcp") !== (p.protocol ?? "tcp")),
    );
    return {
        name: w.name,
        component: w.component,
        configKey: w.configKey,
        replicas,
        spread: w.spread ?? replicas > 1,
        memoryMb: w.memoryMb,
        cpus: w.cpus,
        hostPorts: published.map((p) => p.host!),
        portKeys: published.map((p) => p.configKey),
        constraints: w.placement ?? {},
        pinnedTo: w.pinnedTo,
        pinnedBecause: w.pinnedBecause,
        quorum: w.quorum,
        fsyncHeavy: w.fsyncHeavy,
        hardwareFloor: w.hardwareFloor,
    };
}

/** The data folder of replica `index` of `workload` on its Pi. */
export function replicaDataPath(workload: string, index: number): string {
    return `${DATA_ROOT}/${workload}-${index}`;
}

/** Every replica's identity, in replica order, from where placement put them. */
export function replicaIdentities(
    w: Pick<Workload, "name" | "data">,
    placedOn: readonly string[],
    addressOf: (pi: string) => string,
    /** Where its cluster was formed, when a member runs elsewhere now (`CloudPlan.founders`). */
    founders?: readonly string[],
): ReplicaIdentity[] {
    return placedOn.map((pi, index) => ({
        index,
        pi,
        address: addressOf(pi),
        dataPath: w.data ? replicaDataPath(w.name, index) : undefined,
        ...(founders && founders[index] !== pi ? { joins: true } : {}),
    }));
}
