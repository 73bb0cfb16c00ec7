/**
 * Blob storage's declaration, pure: Garage's nodes, the `garage.toml` each one reads, the
 * cluster's init step (nodes connected, layout assigned and applied, buckets and keys), its
 * monitoring, flows and load-balancer backend. The component (`blobStorage.ts`) deploys it.
 *
 * Power loss is the fault a Pi cluster sees most, all nodes at once: metadata is SQLite with
 * fsync on every write (LMDB, Garage's default, can corrupt on an unclean shutdown), plus a
 * periodic snapshot; `consistency_mode = "consistent"` makes reads and writes quorum operations.
 */
import type { PiConfig } from "../../config/schema";
import type { BlobConfig, BucketAccess } from "./config";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import type { Flow } from "../../network/flows";
import { majority } from "../../placement/place";
import type { ClientEnvironment, ReplicaIdentity, Workload } from "../../runtime/workload";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";
import type { EdgeBackend } from "../loadBalancer/specs";

/** Garage v2, multi-arch (arm64), pinned by digest; the host suite builds the same version from its crate. */
export const GARAGE_IMAGE = "dxflrs/garage:v2.4.1@sha256:9c96caa2612d3411acc5b0e6701fb238dbfba33e533a6d7d3d811a4b12d0d020";
export const GARAGE_WORKLOAD = "garage";
/** The Prometheus job of the nodes. */
export const GARAGE_JOB = "blob-garage";
const KEY = "picloud:tiers.blob";
/** Each Pi's garage.toml, mounted read-only at /etc/garage.toml (the image's default). */
export const GARAGE_CONFIG_DIR = "/srv/picloud/blob";
export const GARAGE_CONFIG_IN_CONTAINER = "/etc/garage.toml";
/** Where each node's data folder is mounted: metadata and blocks below it, on the Pi's SSD. */
export const GARAGE_DATA_IN_CONTAINER = "/var/lib/garage";

/** Pis that may carry a node: SSD Pis, unless SD cards are allowed. */
function eligiblePis(options: BlobConfig, pis: readonly PiConfig[]): PiConfig[] {
    return pis.filter((p) => options.allowSdCard || p.storage === "ssd");
}

/**
 * Nodes: `nodes`, else three where three Pis may carry one, else as many as may (at least one:
 * placement then names what is missing). A node more moves partitions onto it, so adding a Pi
 * grows the cluster only when `nodes` says so.
 */
export function garageNodes(options: BlobConfig, pis: readonly PiConfig[]): number {
    return options.nodes ?? Math.max(1, Math.min(3, eligiblePis(options, pis).length));
}

/** Copies of every object: min(3, nodes). */
export function replicationFactor(nodes: number): number {
    return Math.min(3, nodes);
}

/**
 * Nodes that must stay up for every partition to keep its quorum: each partition lives on
 * `replicationFactor` nodes and needs a majority of them, so the cluster tolerates losing
 * rf - majority(rf) nodes of any kind (one of three; none of two).
 */
export function garageQuorum(nodes: number): number {
    const rf = replicationFactor(nodes);
    return nodes - (rf - majority(rf));
}

/** The zone a node's Pi is in, for Garage to spread copies over: each Pi is its own. */
export function garageZone(self: Pick<ReplicaIdentity, "pi">): string {
    return self.pi;
}

/**
 * One node's `garage.toml` (keys of Garage v2's configuration reference). Secrets are not in it:
 * the RPC secret and the admin token reach the container as environment (`GARAGE_RPC_SECRET`,
 * `GARAGE_ADMIN_TOKEN`) from Pulumi secrets. `dataDir` is where the node's folder is mounted.
 */
export function renderGarageToml(self: ReplicaIdentity, nodes: number, options: BlobConfig, dataDir = GARAGE_DATA_IN_CONTAINER): string {
    const lines = [
        `# picloud: Garage node ${self.index} on ${self.pi}; rendered, do not edit`,
        `metadata_dir = "${dataDir}/meta"`,
        `data_dir = "${dataDir}/data"`,
        // Power-loss safe: SQLite, fsynced on every write, and a snapshot to fall back on.
        'db_engine = "sqlite"',
        "metadata_fsync = true",
        "data_fsync = false",
        'metadata_auto_snapshot_interval = "6h"',
        `replication_factor = ${replicationFactor(nodes)}`,
        'consistency_mode = "consistent"',
        // A Pi's RAM: blocks waiting for slow peers are capped, small blocks, cheap compression.
        `block_ram_buffer_max = "${options.ramBufferMb}MiB"`,
        'block_size = "1MiB"',
        "compression_level = 1",
        `rpc_bind_addr = "0.0.0.0:${options.rpcPort}"`,
        `rpc_public_addr = "${self.address}:${options.rpcPort}"`,
        "",
        "[s3_api]",
        `s3_region = "${options.region}"`,
        `api_bind_addr = "0.0.0.0:${options.s3Port}"`,
        "",
        "[admin]",
        `api_bind_addr = "0.0.0.0:${options.adminPort}"`,
        "",
    ];
    return lines.join("\n");
}

/** The Garage workload: host networking, data on each node's Pi, one node at a time. */
export function garageWorkload(options: BlobConfig, pis: readonly PiConfig[], secretEnv: Workload["secretEnv"] = {}): Workload {
    const nodes = garageNodes(options, pis);
    return {
        name: GARAGE_WORKLOAD,
        component: "blob",
        configKey: KEY,
        image: GARAGE_IMAGE,
        command: ["/garage", "server"],
        replicas: nodes,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.s3Port, host: options.s3Port, configKey: `${KEY}.s3Port` },
            { container: options.rpcPort, host: options.rpcPort, configKey: `${KEY}.rpcPort` },
            { container: options.adminPort, host: options.adminPort, configKey: `${KEY}.adminPort` },
        ],
        volumes: [{ hostPath: `${GARAGE_CONFIG_DIR}/garage.toml`, containerPath: GARAGE_CONFIG_IN_CONTAINER, readOnly: true }],
        secretEnv,
        data: { containerPath: GARAGE_DATA_IN_CONTAINER },
        quorum: { name: "garage", quorum: garageQuorum(nodes), managedMembership: { maxCopies: replicationFactor(Infinity) } },
        fsyncHeavy: { allowSdCard: options.allowSdCard, allowSdCardKey: `${KEY}.allowSdCard` },
        // The image is FROM scratch: Garage itself is the only program in it.
        healthcheck: { command: ["/garage", "status"], intervalSeconds: 15, timeoutSeconds: 10, retries: 3, startPeriodSeconds: 30 },
        metrics: { port: options.adminPort, path: "/metrics" },
        logLabels: { tier: "blob", service: "garage" },
    };
}

/** A declared access key: its name and what it may do where (its id and secret come on the init step's stdin). */
export interface GarageKey {
    readonly name: string;
    readonly buckets: Readonly<Record<string, BucketAccess>>;
}

/** Garage's permission flags for an access. */
export function accessFlags(access: BucketAccess): { read: boolean; write: boolean; owner: boolean } {
    return { read: access !== "write", write: access !== "read", owner: access === "owner" };
}

/** What the cluster's init step needs. */
export interface GarageInitInput {
    /** Garage's CLI on the node the step runs beside (`docker exec garage-0 /garage`). */
    readonly garage: readonly string[];
    /** Every node: where its admin API and RPC listen, its zone and capacity. */
    readonly nodes: readonly { readonly address: string; readonly zone: string }[];
    readonly options: Pick<BlobConfig, "adminPort" | "rpcPort" | "capacityGb">;
    readonly buckets: readonly string[];
    readonly keys: readonly GarageKey[];
    /** The first node's peer list on its Pi (`<data folder>/meta/peer_list`): the step ends once Garage has saved its peers there. */
    readonly peerListFile: string;
    /** Seconds to wait for every node to answer, and for the peer list; default 180. */
    readonly waitSeconds?: number;
}

/**
 * The cluster's init and join step, run on the first node's Pi once every node runs; idempotent,
 * so it runs again whenever a node, a bucket or a key changes. Its stdin is the admin token on the
 * first line, then `<key name> <access key id> <secret>` per key: secrets go to Garage's admin API
 * in request bodies, never on a command line.
 *
 * 1. Each node's id, from its own admin API (all must answer: a layout is never changed around a
 *    node that is down, which would move its data); the first node connects to each.
 * 2. The layout: every node a role in its Pi's zone with its capacity; roles of nodes no longer
 *    declared removed; applied as the next layout version only when something changed.
 * 3. Buckets created when missing (never deleted: data outlives config); keys imported with the
 *    secrets picloud made, and given exactly the access the config declares.
 * 4. It ends once the first node has saved its connected peers to its peer list (Garage does so
 *    once a minute): nodes find each other after a power cut only through that file, so a cut in
 *    the first minute would otherwise leave every node alone.
 */
export function renderGarageInit(input: GarageInitInput): string {
    const { options } = input;
    const wait = input.waitSeconds ?? 180;
    const capacity = `${options.capacityGb}G`;
    const lines = [
        "#!/usr/bin/env bash",
        "# picloud: Garage's init and join step (nodes, layout, buckets, keys)",
        "set -euo pipefail",
        `garage() { ${input.garage.map(shellQuote).join(" ")} "$@"; }`,
        "IFS= read -r token",
        "declare -A keyid=() secret=()",
        'while read -r name id value; do [ -n "$name" ] && keyid[$name]=$id && secret[$name]=$value; done',
        // The admin token in a header file only root reads, not on curl's command line.
        "auth=$(mktemp)",
        "trap 'rm -f \"$auth\"' EXIT",
        "chmod 600 \"$auth\"",
        "printf 'Authorization: Bearer %s\\n' \"$token\" >\"$auth\"",
        'admin() { local addr=$1 path=$2; shift 2; curl -fsS --max-time 10 -H @"$auth" "$@" "http://$addr/v2/$path"; }',
        "node_id() { admin \"$1\" 'GetNodeInfo?node=self' | grep -o '\"nodeId\": *\"[0-9a-f]\\{64\\}\"' | head -n1 | cut -d'\"' -f4; }",
        "declare -a ids=()",
    ];
    input.nodes.forEach((node, i) => {
        const admin = `${node.address}:${options.adminPort}`;
        lines.push(
            ...waitUntilLines(`id=$(node_id ${shellQuote(admin)} 2>/dev/null) && [ -n "$id" ]`, wait, (s) => `picloud: Garage node ${i} (${admin}) does not answer after ${s} s: the layout is left as it is`),
            `ids[${i}]=$id`,
        );
        if (i > 0) lines.push(`garage node connect "$id@${node.address}:${options.rpcPort}" >/dev/null`);
    });
    lines.push(
        // Every node up and connected before the layout changes.
        ...waitUntilLines(
            `[ "$(garage status 2>/dev/null | grep -c -E '^[0-9a-f]{16} ')" -ge ${input.nodes.length} ]`,
            wait,
            (s) => `picloud: Garage's nodes do not all see each other after ${s} s: the layout is left as it is`,
        ),
        // The layout as JSON on one line: roles first, then what is staged.
        `layout() { admin ${shellQuote(`${input.nodes[0].address}:${options.adminPort}`)} GetClusterLayout | tr -d ' \\n'; }`,
        "current=$(layout)",
    );
    // Assigning a role a node has already stages nothing, so every node is assigned every time.
    input.nodes.forEach((node, i) => {
        lines.push(`garage layout assign -z ${shellQuote(node.zone)} -c ${capacity} "\${ids[${i}]}" >/dev/null`);
    });
    lines.push(
        // Roles of nodes that are not declared any more (their Pi left the stack).
        "roles=${current%%stagedRoleChanges*}",
        "while read -r old; do",
        '    keep=0; for id in "${ids[@]}"; do [ "$id" = "$old" ] && keep=1; done',
        '    if [ "$keep" = 0 ]; then garage layout remove "$old" >/dev/null; echo "picloud: removed node ${old:0:16} from the layout"; fi',
        String.raw`done < <(grep -o '"id":"[0-9a-f]\{64\}"' <<<"$roles" | cut -d'"' -f4)`,
        "staged=$(layout)",
        String.raw`if grep -q '"stagedRoleChanges":\[\]' <<<"$staged"; then`,
        '    echo "picloud: the layout is as declared"',
        "else",
        `    version=$(grep -o '"version":[0-9]*' <<<"$staged" | head -n1 | cut -d: -f2)`,
        '    garage layout apply --version $((version + 1)) >/dev/null',
        '    echo "picloud: applied layout version $((version + 1))"',
        "fi",
    );
    for (const bucket of input.buckets) {
        lines.push(`if ! garage bucket info ${shellQuote(bucket)} >/dev/null 2>&1; then garage bucket create ${shellQuote(bucket)} >/dev/null; echo "picloud: created bucket ${bucket}"; fi`);
    }
    const first = `${input.nodes[0].address}:${options.adminPort}`;
    for (const key of input.keys) {
        const id = `"\${keyid[${key.name}]:-}"`;
        lines.push(
            `if [ -z ${id} ] || [ -z "\${secret[${key.name}]:-}" ]; then echo "picloud: no id and secret for key ${key.name} on stdin" >&2; exit 1; fi`,
            `if ! garage key info ${id} >/dev/null 2>&1; then`,
            `    printf '{"accessKeyId":"%s","secretAccessKey":"%s","name":"%s"}' ${id} "\${secret[${key.name}]}" ${shellQuote(key.name)} | admin ${shellQuote(first)} ImportKey -H 'Content-Type: application/json' --data-binary @- >/dev/null`,
            `    echo "picloud: imported key ${key.name}"`,
            "fi",
        );
        for (const bucket of input.buckets) {
            // Exactly the declared access: what is granted is allowed, everything else denied.
            const access = key.buckets[bucket];
            const flags = access ? accessFlags(access) : { read: false, write: false, owner: false };
            const granted = (["read", "write", "owner"] as const).filter((f) => flags[f]).map((f) => `--${f}`);
            const denied = (["read", "write", "owner"] as const).filter((f) => !flags[f]).map((f) => `--${f}`);
            if (granted.length > 0) lines.push(`garage bucket allow ${granted.join(" ")} ${shellQuote(bucket)} --key ${id} >/dev/null`);
            if (denied.length > 0) lines.push(`garage bucket deny ${denied.join(" ")} ${shellQuote(bucket)} --key ${id} >/dev/null`);
        }
    }
    if (input.nodes.length > 1) {
        // An empty list is one byte (MessagePack's empty array): wait for more.
        lines.push(
            ...waitUntilLines(
                `[ "$(stat -c %s ${shellQuote(input.peerListFile)} 2>/dev/null || echo 0)" -gt 1 ]`,
                wait,
                (s) => `picloud: Garage did not save its peers to ${input.peerListFile} within ${s} s: after a power cut its nodes could not find each other`,
            ),
        );
    }
    lines.push(`echo "picloud: Garage has ${input.nodes.length} node(s), ${input.buckets.length} bucket(s) and ${input.keys.length} key(s) as declared"`, "");
    return lines.join("\n");
}

/** How blob storage is watched: Garage's own cluster metrics (upstream ships no alerts). */
export function blobSpec(options: BlobConfig, nodes: readonly ReplicaIdentity[]): MonitoringSpec {
    const sel = `job="${GARAGE_JOB}"`;
    const target = { job: GARAGE_JOB, targets: nodes.map((m) => `${m.address}:${options.adminPort}`), labels: { tier: "blob" } };
    const free = `garage_local_disk_avail{${sel}} / garage_local_disk_total{${sel}}`;
    return {
        component: "blob",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "GarageClusterUnavailable",
                expr: `max(cluster_available{${sel}}) == 0`,
                for: "1m",
                severity: "critical",
                summary: "Garage is unavailable: some objects can be neither read nor written",
                description: "Some partitions have fewer than a quorum of their nodes up: S3 requests for objects there fail. Bring the nodes that are down back (garage status on any node lists them).",
            },
            {
                alert: "GaragePartitionsWithoutQuorum",
                expr: `min(cluster_partitions_quorum{${sel}}) < max(cluster_partitions{${sel}})`,
                for: "1m",
                severity: "critical",
                summary: "Garage has partitions without a quorum of nodes",
                description: "{{ $value }} partitions are missing a quorum: their objects cannot be read or written until a node that holds them is back.",
            },
            {
                alert: "GarageClusterUnhealthy",
                expr: `min(cluster_healthy{${sel}}) == 0`,
                for: "5m",
                severity: "warning",
                summary: "Garage is degraded: a node is down or a partition has lost a copy",
                description: "Every object is still served, but with fewer copies than the replication factor: one more loss can make some unavailable. Bring the missing node back, or remove its Pi from the stack so the layout moves its partitions.",
            },
            {
                alert: "GarageResyncErrors",
                expr: `max by (instance) (block_resync_errored_blocks{${sel}}) > 0`,
                for: "15m",
                severity: "warning",
                summary: "Garage on {{ $labels.instance }} cannot resync some blocks",
                description: "{{ $value }} blocks keep failing to copy to or from their nodes: a disk error or a node that stays away. garage block list-errors on the node lists them.",
            },
            {
                alert: "GarageLowDisk",
                expr: `min by (instance, volume) (${free}) < ${options.lowDiskPercent / 100}`,
                for: "15m",
                severity: "warning",
                summary: "Garage on {{ $labels.instance }} has under ${options.lowDiskPercent} % of its {{ $labels.volume }} disk free",
                description: "When the disk fills, the node refuses writes of new blocks and its metadata can no longer grow. Free space, add a Pi, or lower picloud:tiers.blob.capacityGb on this one.",
            },
        ],
        dashboard: {
            uid: "picloud-blob",
            title: "picloud / blob storage",
            panels: [
                { title: "Healthy", expr: `min(cluster_healthy{${sel}})`, kind: "stat" },
                { title: "Nodes connected", expr: `max(cluster_connected_nodes{${sel}})`, kind: "stat" },
                { title: "Partitions with quorum", expr: `min(cluster_partitions_quorum{${sel}})` },
                { title: "S3 requests by endpoint", expr: `sum by (api_endpoint) (rate(api_s3_request_counter{${sel}}[5m]))`, unit: "reqps" },
                { title: "S3 errors", expr: `sum by (api_endpoint) (rate(api_s3_error_counter{${sel}}[5m]))`, unit: "reqps" },
                { title: "Resync queue", expr: `block_resync_queue_length{${sel}}` },
                { title: "Disk free", expr: free, unit: "percentunit" },
            ],
        },
        logLabels: { tier: "blob" },
    };
}

/** Nodes to each other's RPC port; the first node to every admin API (its init step); every Pi and the operator to S3. */
export function blobFlows(options: BlobConfig, nodes: readonly ReplicaIdentity[], pis: readonly PiConfig[]): Flow[] {
    const flows: Flow[] = [];
    for (const to of nodes) {
        for (const from of nodes.filter((m) => m.pi !== to.pi)) {
            flows.push({ from: { pi: from.pi }, to: to.pi, protocol: "tcp", port: options.rpcPort, purpose: `garage rpc from node ${from.index}`, declaredBy: `${KEY}.rpcPort` });
        }
        if (nodes[0].pi !== to.pi) {
            flows.push({ from: { pi: nodes[0].pi }, to: to.pi, protocol: "tcp", port: options.adminPort, purpose: "garage init step to its admin API", declaredBy: `${KEY}.adminPort` });
        }
        for (const from of pis.filter((p) => p.name !== to.pi)) {
            flows.push({ from: { pi: from.name }, to: to.pi, protocol: "tcp", port: options.s3Port, purpose: `s3 from ${from.name}`, declaredBy: `${KEY}.s3Port` });
        }
        flows.push({ from: { zone: "mgmt" }, to: to.pi, protocol: "tcp", port: options.s3Port, purpose: "operator to s3", declaredBy: `${KEY}.s3Port` });
    }
    return flows;
}

/** S3 behind the load balancer, for requests with the configured Host; health from each node's admin `/health`. */
export function blobBackend(options: BlobConfig, nodes: readonly ReplicaIdentity[]): EdgeBackend | undefined {
    if (!options.loadBalancer) return undefined;
    return {
        backend: { name: "blob-s3", servers: nodes.map((m) => ({ name: `${GARAGE_WORKLOAD}-${m.index}`, address: `${m.address}:${options.s3Port}` })), healthPath: "/health", checkPort: options.adminPort, balance: "leastconn" },
        routes: [{ backend: "blob-s3", host: options.loadBalancer.host }],
    };
}

/** What an app that names a blob key gets: the endpoint and region plain, the key as secrets. */
export type BlobEnvironment = ClientEnvironment;

/**
 * Where clients reach S3: the registry's name `s3.blob.<zone>` when the stack has a registry
 * (every node answers to it), else the load balancer's host when S3 is behind it, else the first
 * node. Plain HTTP on the LAN, path-style.
 */
export function blobEndpoint(options: BlobConfig, nodes: readonly Pick<ReplicaIdentity, "address">[], zone?: string): string {
    if (zone !== undefined) return `http://s3.blob.${zone}:${options.s3Port}`;
    if (options.loadBalancer) return `http://${options.loadBalancer.host}`;
    return `http://${nodes[0].address}:${options.s3Port}`;
}
