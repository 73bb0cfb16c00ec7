import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { PiConfig } from "../config/schema";
import type { PiHost } from "../host/piHost";
import { contentHash } from "../renderers/contentHash";
import { knownHostsLine } from "../renderers/knownHosts";
import { remoteCommand } from "../host/remoteFiles";
import { renderImageBuild } from "../renderers/remoteCommands";
import { scoped } from "../host/renames";
import { shellQuote } from "../renderers/shellSteps";
import { LOG_LABEL_PREFIX, ReplicaIdentity, ReplicaSettings, Workload, replicaDataPath, replicaIdentities } from "./workload";

/** Turns workloads into running replicas on the Pis placement chose. */
export interface WorkloadRuntime {
    /**
     * Deploys replica n of `workload` on Pi `placedOn[n]`, as children of `owner` (the component
     * that owns the workload, so monitoring and policy see who runs what), named after it.
     */
    deploy(workload: Workload, placedOn: readonly string[], owner: RuntimeOwner, dependsOn?: readonly pulumi.Resource[], founders?: readonly string[]): DeployedReplica[];
}

/** The component a workload's replicas are children of, and its name, which theirs start with. */
export interface RuntimeOwner {
    readonly resource: pulumi.Resource;
    readonly name: string;
}

/** One running replica. */
export interface DeployedReplica {
    readonly pi: string;
    readonly replica: number;
    /** The runtime's resource for this replica (a container on Docker). */
    readonly resource: pulumi.CustomResource;
    /** Who it is: index, Pi, data folder. */
    readonly identity: ReplicaIdentity;
}

/** Label keys picloud sets on every container; monitoring and log collection read them. */
export const LABELS = {
    workload: "picloud.workload",
    component: "picloud.component",
    replica: "picloud.replica",
    metricsPort: "picloud.metrics.port",
    metricsPath: "picloud.metrics.path",
    logPrefix: LOG_LABEL_PREFIX,
} as const;

/** Options of {@link DockerRuntime}. */
export interface DockerRuntimeOptions {
    /** Private key file for Docker's ssh:// transport; default: the operator's ssh-agent. */
    readonly identityFile?: string;
}

/**
 * ssh options for Docker's ssh:// transport to one Pi: its pinned host key and no other (given by
 * `KnownHostsCommand`, OpenSSH 8.5 or later, so no known_hosts file has to exist anywhere: the
 * options travel in the provider's state and work for `refresh` and `destroy` too), never a prompt.
 */
export function dockerSshOptions(pi: Pick<PiConfig, "address" | "sshPort" | "hostKey">, identityFile?: string): string[] {
    const opts = [
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", `KnownHostsCommand=/bin/echo ${knownHostsLine(pi)}`,
        "-o", "BatchMode=yes",
    ];
    return identityFile ? [...opts, "-o", "IdentitiesOnly=yes", "-i", identityFile] : opts;
}

/** The Docker Engine URL of a Pi, over ssh://. */
export function dockerHost(pi: Pick<PiConfig, "address" | "sshPort" | "sshUser">): string {
    return `ssh://${pi.sshUser}@${pi.address}:${pi.sshPort}`;
}

/**
 * The Docker runtime: one Docker Engine per Pi, reached over ssh:// with the Pi's pinned host key
 * (one provider per Pi, a child of its {@link PiHost}). Images and networks are shared per Pi, so
 * two workloads on one Pi pull an image once. Nothing runs on a Pi before its host is ready.
 */
export class DockerRuntime implements WorkloadRuntime {
    private readonly providers = new Map<string, docker.Provider>();
    private readonly images = new Map<string, docker.RemoteImage>();
    private readonly builds = new Map<string, pulumi.Output<string>>();
    private readonly networks = new Map<string, docker.Network>();

    constructor(
        private readonly hosts: ReadonlyMap<string, PiHost>,
        private readonly options: DockerRuntimeOptions = {},
    ) {}

    /** The Docker provider of a Pi: its URL and options are plain config, known in every preview. */
    provider(host: PiHost): docker.Provider {
        let provider = this.providers.get(host.pi.name);
        if (!provider) {
            provider = new docker.Provider(
                `${host.resourceName}-docker`,
                { host: dockerHost(host.pi), sshOpts: dockerSshOptions(host.pi, this.options.identityFile) },
                { parent: host },
            );
            this.providers.set(host.pi.name, provider);
        }
        return provider;
    }

    deploy(workload: Workload, placedOn: readonly string[], owner: RuntimeOwner, dependsOn: readonly pulumi.Resource[] = [], founders?: readonly string[]): DeployedReplica[] {
        const deployed: DeployedReplica[] = [];
        const hostOf = (piName: string) => {
            const host = this.hosts.get(piName);
            if (!host) throw new Error(`${workload.configKey}: workload "${workload.name}" was placed on unknown Pi "${piName}"`);
            return host;
        };
        const members = replicaIdentities(workload, placedOn, (pi) => hostOf(pi).pi.address, founders);
        // A joining member is let in by one that stays.
        const via = members.find((m) => !m.joins);
        placedOn.forEach((piName, replica) => {
            const host = hostOf(piName);
            const provider = this.provider(host);
            const image = workload.build ? this.built(host, workload.image, workload.build.dockerfile, owner) : this.image(host, workload.image).imageId;
            const networks = (workload.networks ?? []).map((n) => this.network(host, n));
            const identity = members[replica];
            const data = identity.dataPath ? [this.dataFolder(host, workload, identity, owner)] : [];
            const previous = rollsOneAtATime(workload) ? deployed.at(-1)?.resource : undefined;
            const named = scoped(owner.name, `${workload.name}-${replica}`, { parent: owner.resource } as pulumi.CustomResourceOptions);
            const own = workload.perReplica?.(identity, members);
            const handOff = this.handOff(host, workload, identity, members, own, named.name, owner, [...data, ...(previous ? [previous] : [])]);
            const join = identity.joins ? [this.joinStep(workload, identity, members, via, named.name, owner, previous)] : [];
            const resource = new docker.Container(
                named.name,
                {
                    ...containerArgs(workload, replica, piName, own),
                    image,
                    networksAdvanced: networks.map((n) => ({ name: n.name })),
                },
                {
                    ...named.opts,
                    provider,
                    dependsOn: [host.ready, ...dependsOn, ...data, ...(previous ? [previous] : []), ...handOff, ...join],
                    // The replacement has the same name and host ports, so the old container must
                    // go first; the chain above makes that one replica at a time.
                    deleteBeforeReplace: true,
                },
            );
            deployed.push({ pi: piName, replica, resource, identity });
        });
        return deployed;
    }

    /**
     * A replica's data folder on its Pi, made before its container starts and owned by the user
     * the image runs as. It outlives the container: only a workload whose `data.keep` is false
     * takes it away when the replica leaves the stack.
     */
    private dataFolder(host: PiHost, w: Workload, identity: ReplicaIdentity, owner: RuntimeOwner): pulumi.Resource {
        const user = w.data?.owner ?? { uid: 0, gid: 0 };
        const path = identity.dataPath!;
        const named = scoped(owner.name, `${w.name}-${identity.index}-data`, { parent: owner.resource, dependsOn: [host.ready] } as pulumi.CustomResourceOptions);
        return remoteCommand(
            named.name,
            {
                connection: host.connection,
                create: `sudo -n install -d -o ${user.uid} -g ${user.gid} -m 0700 ${shellQuote(path)}`,
                delete: w.data?.keep === false ? `sudo -n rm -rf --one-file-system ${shellQuote(path)}` : undefined,
            },
            named.opts,
        );
    }

    /**
     * Under "leader-last", the replica's hand-off: run on its Pi before every change to its
     * container (its settings are the command's rerun key, so it runs whenever they change, and
     * the container waits for it), after the replica before it is back.
     */
    private handOff(
        host: PiHost,
        w: Workload,
        identity: ReplicaIdentity,
        members: readonly ReplicaIdentity[],
        own: ReplicaSettings | undefined,
        replicaName: string,
        owner: RuntimeOwner,
        after: readonly pulumi.Resource[],
    ): pulumi.Resource[] {
        if (w.updateStrategy !== "leader-last") return [];
        if (!w.leaderHandOff) throw new Error(`${w.configKey}: workload "${w.name}" updates leader-last but declares no leaderHandOff`);
        const settings = contentHash(JSON.stringify({ image: w.image, command: own?.command ?? w.command ?? null, env: { ...w.env, ...own?.env }, memoryMb: w.memoryMb, cpus: w.cpus, ports: w.ports ?? [], volumes: w.volumes ?? [], healthcheck: w.healthcheck ?? null }));
        return [
            remoteCommand(
                `${replicaName}-hand-off`,
                { connection: host.connection, create: w.leaderHandOff(identity, members), rerunWhen: [settings] },
                { parent: owner.resource, dependsOn: [host.ready, ...after] },
            ),
        ];
    }

    /**
     * A joining member's join step, on the Pi of a member that stays, after the replica before it
     * is up (members join one at a time, each keeping the cluster's quorum). It does not wait for
     * the staying member's container, which is already running (a join happens on a later up).
     */
    private joinStep(
        w: Workload,
        identity: ReplicaIdentity,
        members: readonly ReplicaIdentity[],
        via: ReplicaIdentity | undefined,
        replicaName: string,
        owner: RuntimeOwner,
        previous: pulumi.Resource | undefined,
    ): pulumi.Resource {
        if (!w.join) throw new Error(`${w.configKey}: replica ${identity.index} of "${w.name}" joins its cluster but the workload declares no join step`);
        if (!via) throw new Error(`${w.configKey}: every replica of "${w.name}" would join its cluster: none stays to let them in`);
        const host = this.hosts.get(via.pi)!;
        return remoteCommand(
            `${replicaName}-join`,
            { connection: host.connection, create: w.join(identity, members, via) },
            { parent: owner.resource, dependsOn: [host.ready, ...(previous ? [previous] : [])] },
        );
    }

    /**
     * An image built on the Pi from `dockerfile` under `tag` (once per Pi and tag), by a command
     * whose output is the image's ID: a tag already there is not built again, and a changed
     * Dockerfile is a new tag, so a new resource. The old image stays on the Pi for a rollback. The
     * build belongs to the component whose workload it is, whose monitoring covers it.
     */
    private built(host: PiHost, tag: string, dockerfile: string, owner: RuntimeOwner): pulumi.Output<string> {
        const key = `${host.pi.name}/${tag}`;
        let image = this.builds.get(key);
        if (!image) {
            const named = scoped(owner.name, `${host.pi.name}-image-${contentHash(tag).slice(0, 12)}`, { parent: owner.resource, dependsOn: [host.ready] } as pulumi.CustomResourceOptions);
            const build = remoteCommand(named.name, { connection: host.connection, create: renderImageBuild(tag), stdin: dockerfile }, named.opts);
            image = build.stdout.apply((id) => (id ?? "").trim());
            this.builds.set(key, image);
        }
        return image;
    }

    private image(host: PiHost, ref: string): docker.RemoteImage {
        const key = `${host.pi.name}/${ref}`;
        let image = this.images.get(key);
        if (!image) {
            const digest = contentHash(ref).slice(0, 12);
            image = new docker.RemoteImage(
                `${host.resourceName}-image-${digest}`,
                { name: ref, keepLocally: true, platform: "linux/arm64" },
                { parent: host, provider: this.provider(host), dependsOn: [host.ready] },
            );
            this.images.set(key, image);
        }
        return image;
    }

    private network(host: PiHost, name: string): docker.Network {
        const key = `${host.pi.name}/${name}`;
        let network = this.networks.get(key);
        if (!network) {
            network = new docker.Network(
                `${host.resourceName}-net-${name}`,
                { name },
                { parent: host, provider: this.provider(host), dependsOn: [host.ready] },
            );
            this.networks.set(key, network);
        }
        return network;
    }
}

/**
 * Whether a workload's replicas are created and replaced one after the other. The engine only
 * starts on replica n once replica n-1's step has finished, and a replica with a healthcheck only
 * finishes once Docker reports it healthy (`wait`), so a rolling update never has more than one
 * replica down and stops at the first replica that does not come up healthy (under leader-last,
 * the next replica's hand-off waits for the whole cluster instead). Host agents (one per
 * Pi, dying with their Pi by design) roll out everywhere at once, or a hundred Pis would take a
 * hundred steps.
 */
export function rollsOneAtATime(w: Workload): boolean {
    return !w.hostAgent && w.updateStrategy !== "recreate";
}

/**
 * The container settings of one replica, image and networks aside: limits, ports, environment
 * (secret values stay secret), volumes, healthcheck, restart policy, labels, and logs to journald
 * (in RAM on the Pi, tagged for log collection).
 */
export function containerArgs(w: Workload, replica: number, pi: string, own: ReplicaSettings = {}): Omit<docker.ContainerArgs, "image"> {
    const plainEnv = Object.entries({ ...w.env, ...own.env }).map(([k, v]) => `${k}=${v}`);
    const secretEntries = Object.entries(w.secretEnv ?? {});
    const envs =
        secretEntries.length === 0
            ? plainEnv
            : pulumi.secret(
                  pulumi.all(secretEntries.map(([k, v]) => pulumi.output(v).apply((value) => `${k}=${value}`))).apply((secret) => [...plainEnv, ...secret]),
              );
    const labels: Record<string, string> = {
        [LABELS.workload]: w.name,
        [LABELS.component]: w.component,
        [LABELS.replica]: String(replica),
        ...(w.metrics ? { [LABELS.metricsPort]: String(w.metrics.port), [LABELS.metricsPath]: w.metrics.path } : {}),
        ...Object.fromEntries(Object.entries(w.logLabels ?? {}).map(([k, v]) => [`${LABELS.logPrefix}${k}`, v])),
    };
    const hc = w.healthcheck;
    return {
        name: `${w.name}-${replica}`,
        hostname: `${w.name}-${replica}`,
        command: w.command || own.command ? [...(w.command ?? []), ...(own.command ?? [])] : undefined,
        memory: w.memoryMb,
        memorySwap: w.memoryMb,
        cpus: String(w.cpus),
        envs,
        networkMode: w.hostNetwork ? "host" : undefined,
        privileged: w.privileged || undefined,
        user: w.user,
        // With host networking the ports are the Pi's own; Docker refuses mappings there.
        ports: w.hostNetwork ? [] : (w.ports ?? []).map((p) => ({ internal: p.container, external: p.host, protocol: p.protocol ?? "tcp" })),
        volumes: [
            ...(w.volumes ?? []).map((v) => ({ volumeName: v.volume, hostPath: v.hostPath, containerPath: v.containerPath, readOnly: v.readOnly ?? false })),
            ...(w.data ? [{ hostPath: replicaDataPath(w.name, replica), containerPath: w.data.containerPath, readOnly: false }] : []),
        ],
        healthcheck: hc && {
            tests: ["CMD", ...hc.command],
            interval: `${hc.intervalSeconds}s`,
            timeout: `${hc.timeoutSeconds}s`,
            retries: hc.retries,
            startPeriod: `${hc.startPeriodSeconds}s`,
        },
        restart: w.restart ?? "unless-stopped",
        labels: Object.entries(labels).map(([label, value]) => ({ label, value })),
        logDriver: "journald",
        logOpts: { tag: `${pi}/${w.name}-${replica}`, labels: Object.keys(labels).join(",") },
        // A replica counts as deployed only once Docker reports it healthy (or running, without a healthcheck).
        // Under leader-last the next member's hand-off waits for the whole cluster instead: a cluster
        // member alone is never healthy, so waiting for each would never finish a first deploy.
        wait: hc !== undefined && w.updateStrategy !== "leader-last",
        // Long enough for the start period plus every retry: a slow starter is not a failed rollout.
        waitTimeout: hc && w.updateStrategy !== "leader-last" ? hc.startPeriodSeconds + (hc.retries + 1) * (hc.intervalSeconds + hc.timeoutSeconds) : undefined,
        mustRun: true,
    };
}
