/**
 * The cache, pure: Valkey nodes (a primary and its replicas, each on a Pi of its own), the
 * Sentinels that watch them and fail over by majority, redis_exporter beside each, the files each
 * reads, and what an app gets to connect. The component (`cache.ts`) deploys it.
 *
 * Nothing secret is in a rendered file: each node's and Sentinel's start script reads the password
 * from its environment and hands it to the server on stdin (`valkey-server <file> -`), and
 * Sentinel's own file, which it rewrites with the password in it, lives in its container's
 * memory (/dev/shm), never on the Pi's disk.
 *
 * Who is the primary is Sentinel's answer, not a file's: a node that starts asks the Sentinels
 * first and follows the primary they name. A primary without persistence that restarts before
 * the Sentinels noticed would come back empty, and its replicas would copy the emptiness; it asks
 * the Sentinels to fail over to a replica first, then follows it.
 */
import type { PiConfig } from "../../config/schema";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import { type Flow, clientFlows } from "../../network/flows";
import { majority } from "../../placement/place";
import { contentHash } from "../../renderers/contentHash";
import { shellQuote } from "../../renderers/shellSteps";
import type { ClientEnvironment, ReplicaIdentity, Workload } from "../../runtime/workload";
import type { CacheConfig } from "./config";

const KEY = "picloud:tiers.cache";

export const VALKEY_VERSION = "8.1.9";
/** Valkey's official image (Debian, multi-arch; sh and coreutils for the start scripts), pinned by its index digest: BSD-licensed, where Redis 7.4+ is not. */
export const VALKEY_IMAGE = `valkey/valkey:${VALKEY_VERSION}@sha256:f0ba225266310efba5fb33383e21c64fbd07907304224786c780606e7ebd7327`;
/** redis_exporter, which reads Valkey and Sentinel alike. */
export const REDIS_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.73.0@sha256:1a8f5e48b2af0fb02d182be3ddd623e7e39881b6464bdb5bf843b1f6d45ed050";

export const VALKEY_WORKLOAD = "valkey";
export const SENTINEL_WORKLOAD = "valkey-sentinel";
export const VALKEY_EXPORTER_WORKLOAD = "valkey-exporter";
export const SENTINEL_EXPORTER_WORKLOAD = "valkey-sentinel-exporter";
/** The name the Sentinels know the primary by; clients ask for it. */
export const MASTER_NAME = "picloud";
/** Each Pi's files, mounted read-only at /etc/picloud. */
export const CACHE_CONFIG_DIR = "/srv/picloud/cache";
const CONFIG_IN_CONTAINER = "/etc/picloud";
export const VALKEY_DATA_IN_CONTAINER = "/data";
/** The official image's valkey user. */
const VALKEY_USER = { uid: 999, gid: 999 } as const;
/** The environment variable each container reads the password from. */
export const PASSWORD_ENV = "VALKEY_PASSWORD";

/**
 * Settings only Valkey knows (Redis 7 refuses to start on them): rendered for Valkey, left out
 * for the Redis 7 stand-in the host suite runs.
 */
export const VALKEY_ONLY = new Set(["dual-channel-replication-enabled"]);

/** Which server reads the files: Valkey on the Pis; Debian's Redis 7 stands in for it in the host suite. */
export type CacheServer = "valkey" | "redis7";

/** Pis a node or a Sentinel may go on: any; nodes on distinct Pis. */
export function cacheNodes(options: CacheConfig, pis: readonly PiConfig[]): number {
    return options.nodes ?? Math.max(1, Math.min(3, pis.length));
}

/** Sentinels: three, each on a Pi of its own, or one per Pi on a smaller stack. */
export function sentinelCount(pis: readonly PiConfig[]): number {
    return Math.max(1, Math.min(3, pis.length));
}

/** Sentinels that must agree a primary is down (and a majority must authorize the failover): two of three. */
export function sentinelQuorum(sentinels: number): number {
    return majority(sentinels);
}

/** maxmemory, MB: three quarters of the limit (replication buffers, fragmentation), half with persistence (a fork's copy-on-write pages). */
export function maxMemoryMb(options: CacheConfig): number {
    return Math.floor(options.memoryMb * (options.persistence === "none" ? 0.75 : 0.5));
}

/**
 * Writes are refused by a primary that has lost every replica for 10 s, with three nodes or more:
 * a primary cut off from the others (which elect a new one) stops taking writes that the
 * failover would throw away. With two nodes a replica down would stop all writes, so it is off.
 */
export function minReplicasToWrite(nodes: number): number {
    return nodes >= 3 ? 1 : 0;
}

/** Where a node's and a Sentinel's files are: in their containers by default; the host suite moves them. */
export interface CachePaths {
    readonly dataDir: string;
    /** Sentinel's own rewritable file: in memory. */
    readonly sentinelFile: string;
    /** The server programs. */
    readonly server: string;
    readonly cli: string;
}

export const CONTAINER_PATHS: CachePaths = { dataDir: VALKEY_DATA_IN_CONTAINER, sentinelFile: "/dev/shm/sentinel.conf", server: "valkey-server", cli: "valkey-cli" };

/** One node's valkey.conf: no password in it (the start script adds it on stdin), no primary either (the Sentinels say). */
export function renderValkeyConf(self: ReplicaIdentity, nodes: number, options: CacheConfig, context: { readonly server?: CacheServer; readonly paths?: CachePaths } = {}): string {
    const server = context.server ?? "valkey";
    const dataDir = (context.paths ?? CONTAINER_PATHS).dataDir;
    const settings: [string, string][] = [
        ["bind", "0.0.0.0"],
        // With a password set, protected mode changes nothing; it stays on should the password ever be missing.
        ["protected-mode", "yes"],
        ["port", String(options.port)],
        ["dir", dataDir],
        ["replica-announce-ip", self.address],
        ["maxmemory", `${maxMemoryMb(options)}mb`],
        ["maxmemory-policy", options.evictionPolicy],
        ["maxclients", String(options.maxClients)],
        ["timeout", "300"],
        ["tcp-keepalive", "60"],
        // A full resync goes over the network, not through the SD card; a replica loads it into an empty dataset only.
        ["repl-diskless-sync", "yes"],
        ["repl-diskless-sync-delay", "1"],
        ["repl-diskless-load", "on-empty-db"],
        ["repl-backlog-size", "16mb"],
        ["client-output-buffer-limit", `replica ${Math.max(16, Math.floor(options.memoryMb / 4))}mb ${Math.max(8, Math.floor(options.memoryMb / 8))}mb 60`],
        ["replica-read-only", "yes"],
        ["replica-priority", "100"],
        ["min-replicas-to-write", String(minReplicasToWrite(nodes))],
        ["min-replicas-max-lag", "10"],
        ...persistenceSettings(options),
        ["dual-channel-replication-enabled", options.dualChannelReplication ? "yes" : "no"],
    ];
    return [
        `# picloud: Valkey node ${self.index} on ${self.pi}; rendered, do not edit`,
        ...settings.filter(([key]) => server === "valkey" || !VALKEY_ONLY.has(key)).map(([key, value]) => `${key} ${value}`),
        "",
    ].join("\n");
}

function persistenceSettings(options: CacheConfig): [string, string][] {
    switch (options.persistence) {
        case "none":
            return [
                ["save", '""'],
                ["appendonly", "no"],
            ];
        case "rdb":
            return [
                ["save", "900 1 300 100 60 10000"],
                ["appendonly", "no"],
            ];
        case "aof":
            return [
                ["save", '""'],
                ["appendonly", "yes"],
                ["appendfsync", "everysec"],
            ];
    }
}

/** `host:port` of every Sentinel, for the start scripts and the apps. */
export function sentinelAddresses(sentinels: readonly Pick<ReplicaIdentity, "address">[], options: Pick<CacheConfig, "sentinelPort">): string[] {
    return sentinels.map((s) => `${s.address}:${options.sentinelPort}`);
}

/** Shell lines, shared by both start scripts: `ask_master` prints the primary the first Sentinel that answers names, as "ip port". */
function askMasterLines(cli: string, sentinels: readonly string[]): string[] {
    return [
        `sentinels=${shellQuote(sentinels.join(" "))}`,
        "ask_master() {",
        "    for s in $sentinels; do",
        `        a=$(timeout 3 ${cli} --no-auth-warning -h "\${s%:*}" -p "\${s##*:}" --raw SENTINEL get-master-addr-by-name ${MASTER_NAME} 2>/dev/null | tr '\\n' ' ') || continue`,
        '        mip=${a%% *}; mport=${a#"$mip" }; mport=${mport%% *}',
        // An error (NOAUTH, IDONTKNOW) or no answer is not an address.
        '        case "$mip:$mport" in *[!0-9.:]* | :* | *:) continue ;; esac',
        '        echo "$mip $mport"',
        "        return 0",
        "    done",
        "    return 1",
        "}",
    ];
}

/** What a node's start script needs. */
export interface ValkeyStartInput {
    readonly self: ReplicaIdentity;
    /** Every node, the first the primary when the Sentinels have never named one. */
    readonly nodes: readonly ReplicaIdentity[];
    readonly sentinels: readonly Pick<ReplicaIdentity, "address">[];
    readonly options: CacheConfig;
    readonly configFile: string;
    readonly paths?: CachePaths;
    /** Seconds to wait for a failover away from this node when it restarts as an empty primary; default 30. */
    readonly failoverWaitSeconds?: number;
}

/**
 * A node's start script (POSIX sh, the container's command): asks the Sentinels for the primary
 * and starts as its replica, or as the primary when they name this node or none answers (a new
 * cluster: the first node). A primary without persistence that the Sentinels still name asks
 * them to fail over first (it would otherwise come back empty and its replicas copy that), and
 * follows the new primary once they name it; when no replica can take over it starts as the
 * primary, empty. The password reaches the server on stdin, never a file or the command line.
 */
export function renderValkeyStart(input: ValkeyStartInput): string {
    const { self, options } = input;
    const paths = input.paths ?? CONTAINER_PATHS;
    const first = input.nodes[0];
    const wait = input.failoverWaitSeconds ?? 30;
    const lines = [
        "#!/bin/sh",
        `# picloud: starts Valkey node ${self.index} on ${self.pi}, as the Sentinels' primary's replica; rendered, do not edit`,
        "set -eu",
        `: "\${${PASSWORD_ENV}:?picloud: ${PASSWORD_ENV} is not set}"`,
        `export REDISCLI_AUTH="\$${PASSWORD_ENV}"`,
        ...askMasterLines(paths.cli, sentinelAddresses(input.sentinels, options)),
        `self=${shellQuote(self.address)}`,
        'if master=$(ask_master); then',
        '    if [ "${master% *}" = "$self" ]; then',
        ...(options.persistence === "none"
            ? [
                  '        echo "picloud: the Sentinels still name this node the primary; it restarts empty, so a replica takes over first" >&2',
                  "        asked=no",
                  "        for s in $sentinels; do",
                  `            out=$(timeout 3 ${paths.cli} --no-auth-warning -h "\${s%:*}" -p "\${s##*:}" SENTINEL FAILOVER ${MASTER_NAME} 2>&1) || true`,
                  '            echo "picloud: Sentinel $s answers: $out" >&2',
                  // OK, or one already under way; NOGOODSLAVE: no replica can take over, so this node starts as the primary.
                  '            case "$out" in OK* | INPROG*) asked=yes; break ;; esac',
                  "        done",
                  '        if [ "$asked" = yes ]; then',
                  `            i=0; while [ $i -lt ${wait} ]; do`,
                  '                master=$(ask_master) || master=""',
                  '                if [ -n "$master" ] && [ "${master% *}" != "$self" ]; then break; fi',
                  "                i=$((i + 1)); sleep 1",
                  "            done",
                  "        fi",
                  `        if [ -z "$master" ]; then master="$self ${options.port}"; fi`,
              ]
            : ['        echo "picloud: the Sentinels name this node the primary; it starts as the primary from its own data" >&2']),
        "    fi",
        "else",
        `    master=${shellQuote(`${first.address} ${options.port}`)}`,
        '    echo "picloud: no Sentinel answers; node 0 is the primary" >&2',
        "fi",
        'if [ "${master% *}" = "$self" ]; then role=""; echo "picloud: starting as the primary" >&2',
        'else role="replicaof $master"; echo "picloud: starting as a replica of ${master% *}" >&2; fi',
        `exec ${paths.server} ${shellQuote(input.configFile)} - <<EOF`,
        `requirepass \$${PASSWORD_ENV}`,
        `masterauth \$${PASSWORD_ENV}`,
        "$role",
        "EOF",
        "",
    ];
    return lines.join("\n");
}

/** A Sentinel's id: 40 hex digits from the stack and its index, the same across restarts, so its peers never count it twice. */
export function sentinelId(cloud: string, index: number): string {
    return contentHash(`picloud sentinel ${cloud} ${index}`).slice(0, 40);
}

/** What a Sentinel's start script needs. */
export interface SentinelStartInput {
    readonly self: ReplicaIdentity;
    readonly nodes: readonly ReplicaIdentity[];
    readonly sentinels: readonly ReplicaIdentity[];
    readonly options: CacheConfig;
    /** The stack's name, for the Sentinel's stable id. */
    readonly cloud: string;
    readonly paths?: CachePaths;
}

/**
 * A Sentinel's start script (POSIX sh, the container's command): writes Sentinel's own file in
 * memory (it rewrites it; the password is in it), monitoring the primary its peers name, else
 * the first node, then starts Sentinel on it. Its id is stable, so a restarted Sentinel is the
 * same one to its peers; its epoch comes back from their announcements.
 */
export function renderSentinelStart(input: SentinelStartInput): string {
    const { self, options } = input;
    const paths = input.paths ?? CONTAINER_PATHS;
    const peers = input.sentinels.filter((s) => s.index !== self.index);
    const quorum = sentinelQuorum(input.sentinels.length);
    const file = paths.sentinelFile;
    const lines = [
        "#!/bin/sh",
        `# picloud: starts Sentinel ${self.index} on ${self.pi}; rendered, do not edit`,
        "set -eu",
        `: "\${${PASSWORD_ENV}:?picloud: ${PASSWORD_ENV} is not set}"`,
        `export REDISCLI_AUTH="\$${PASSWORD_ENV}"`,
        ...askMasterLines(paths.cli, sentinelAddresses(peers, options)),
        `if ! master=$(ask_master); then master=${shellQuote(`${input.nodes[0].address} ${options.port}`)}; fi`,
        `file=${shellQuote(file)}`,
        'umask 077',
        'cat >"$file" <<EOF',
        `# picloud: Sentinel ${self.index} on ${self.pi}; written at each start, rewritten by Sentinel`,
        `port ${options.sentinelPort}`,
        "bind 0.0.0.0",
        "protected-mode yes",
        "dir /tmp",
        `sentinel myid ${sentinelId(input.cloud, self.index)}`,
        `sentinel announce-ip ${self.address}`,
        `sentinel announce-port ${options.sentinelPort}`,
        `requirepass \$${PASSWORD_ENV}`,
        `sentinel sentinel-pass \$${PASSWORD_ENV}`,
        `sentinel monitor ${MASTER_NAME} \$master ${quorum}`,
        `sentinel auth-pass ${MASTER_NAME} \$${PASSWORD_ENV}`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${options.downAfterSeconds * 1000}`,
        `sentinel failover-timeout ${MASTER_NAME} ${options.failoverTimeoutSeconds * 1000}`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        "EOF",
        `exec ${paths.server} "$file" --sentinel`,
        "",
    ];
    return lines.join("\n");
}

/** The container of node or Sentinel `index`. */
export function cacheContainer(workload: string, index: number): string {
    return `${workload}-${index}`;
}

/**
 * A node's hand-off before its container changes: when it is the primary, the Sentinels fail
 * over to a replica (already changed: nodes change one at a time, the primary last) and the
 * script waits until this node is a replica. A node that does not run, or is a replica, has
 * nothing to hand over.
 */
export function renderValkeyHandOff(self: ReplicaIdentity, nodes: readonly ReplicaIdentity[], sentinels: readonly Pick<ReplicaIdentity, "address">[], options: CacheConfig, exec?: readonly string[]): string {
    const container = cacheContainer(VALKEY_WORKLOAD, self.index);
    if (nodes.length < 2) return `echo "picloud: ${container} has no replica to hand the primary to"`;
    const inContainer = (command: string) => `${(exec ?? ["docker", "exec", container]).map(shellQuote).join(" ")} sh -c ${shellQuote(`REDISCLI_AUTH="$${PASSWORD_ENV}" ${command}`)}`;
    const role = inContainer(`${CONTAINER_PATHS.cli} --no-auth-warning -p ${options.port} --raw ROLE | head -n1`);
    const failover = sentinelAddresses(sentinels, options)
        .map((s) => inContainer(`${CONTAINER_PATHS.cli} --no-auth-warning -h ${s.split(":")[0]} -p ${s.split(":")[1]} SENTINEL FAILOVER ${MASTER_NAME}`))
        .join(" || ");
    return [
        `if [ "$(${role} 2>/dev/null)" != master ]; then echo "picloud: ${container} is not the primary"; exit 0; fi`,
        `${failover} >&2`,
        "for _ in $(seq 1 30); do",
        `    if [ "$(${role} 2>/dev/null)" = slave ]; then echo "picloud: ${container} handed the primary over"; exit 0; fi`,
        "    sleep 2",
        "done",
        `echo "picloud: ${container} is still the primary after 60 s" >&2`,
        "exit 1",
    ].join("\n");
}

/** The Valkey nodes: host networking (Sentinel and replicas see each Pi's own address), one per Pi, the primary changed last. */
export function valkeyWorkload(options: CacheConfig, pis: readonly PiConfig[], sentinels: readonly Pick<ReplicaIdentity, "address">[] = [], secretEnv: Workload["secretEnv"] = {}): Workload {
    const nodes = cacheNodes(options, pis);
    return {
        name: VALKEY_WORKLOAD,
        component: "cache",
        configKey: KEY,
        image: VALKEY_IMAGE,
        command: ["sh", `${CONFIG_IN_CONTAINER}/valkey-start.sh`],
        replicas: nodes,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        user: `${VALKEY_USER.uid}:${VALKEY_USER.gid}`,
        ports: [{ container: options.port, host: options.port, configKey: `${KEY}.port` }],
        volumes: [{ hostPath: CACHE_CONFIG_DIR, containerPath: CONFIG_IN_CONTAINER, readOnly: true }],
        secretEnv,
        data: { containerPath: VALKEY_DATA_IN_CONTAINER, owner: VALKEY_USER },
        // A changed file restarts the node (its hash is in its environment), the primary last and handed over first.
        perReplica: (self, members) => ({ env: { PICLOUD_FILES_SHA256: cacheFilesHash(self, members, sentinels, options) } }),
        updateStrategy: "leader-last",
        leaderHandOff: (self, members) => renderValkeyHandOff(self, members, sentinels, options),
        healthcheck: { command: ["sh", "-c", `REDISCLI_AUTH="$${PASSWORD_ENV}" ${CONTAINER_PATHS.cli} --no-auth-warning -p ${options.port} PING | grep -q PONG`], intervalSeconds: 10, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 60 },
        logLabels: { tier: "cache", service: "valkey" },
    };
}

/** The hash of what a node reads at start: a change restarts it. */
function cacheFilesHash(self: ReplicaIdentity, members: readonly ReplicaIdentity[], sentinels: readonly Pick<ReplicaIdentity, "address">[], options: CacheConfig): string {
    return contentHash(renderValkeyConf(self, members.length, options) + renderValkeyStart({ self, nodes: members, sentinels, options, configFile: `${CONFIG_IN_CONTAINER}/valkey.conf` }));
}

/** The Sentinels: host networking, one per Pi, three at most; a majority of them elects the failover's leader. */
export function sentinelWorkload(options: CacheConfig, pis: readonly PiConfig[], secretEnv: Workload["secretEnv"] = {}, startScriptHash: (self: ReplicaIdentity) => string = () => ""): Workload {
    const sentinels = sentinelCount(pis);
    return {
        name: SENTINEL_WORKLOAD,
        component: "cache",
        configKey: `${KEY}.sentinelPort`,
        image: VALKEY_IMAGE,
        command: ["sh", `${CONFIG_IN_CONTAINER}/sentinel-start.sh`],
        replicas: sentinels,
        spread: true,
        memoryMb: 32,
        cpus: 0.05,
        hostNetwork: true,
        user: `${VALKEY_USER.uid}:${VALKEY_USER.gid}`,
        ports: [{ container: options.sentinelPort, host: options.sentinelPort, configKey: `${KEY}.sentinelPort` }],
        volumes: [{ hostPath: CACHE_CONFIG_DIR, containerPath: CONFIG_IN_CONTAINER, readOnly: true }],
        secretEnv,
        perReplica: (self) => ({ env: { PICLOUD_FILES_SHA256: startScriptHash(self) } }),
        // Not a quorum group for placement: a Sentinel on a new Pi needs no join step (it finds its peers through the nodes), and one gone is forgotten by the others' restart.
        healthcheck: { command: ["sh", "-c", `REDISCLI_AUTH="$${PASSWORD_ENV}" ${CONTAINER_PATHS.cli} --no-auth-warning -p ${options.sentinelPort} PING | grep -q PONG`], intervalSeconds: 10, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 30 },
        logLabels: { tier: "cache", service: "sentinel" },
    };
}

/** redis_exporter beside each node or each Sentinel, reading it at its Pi's address with the password from its environment. */
export function cacheExporterWorkload(kind: "valkey" | "sentinel", options: CacheConfig, pis: readonly PiConfig[], targets: readonly Pick<ReplicaIdentity, "address">[] = [], secretEnv: Workload["secretEnv"] = {}): Workload {
    const sentinel = kind === "sentinel";
    const port = sentinel ? options.sentinelExporterPort : options.exporterPort;
    const key = sentinel ? `${KEY}.sentinelExporterPort` : `${KEY}.exporterPort`;
    const target = sentinel ? options.sentinelPort : options.port;
    return {
        name: sentinel ? SENTINEL_EXPORTER_WORKLOAD : VALKEY_EXPORTER_WORKLOAD,
        component: "cache",
        configKey: key,
        image: REDIS_EXPORTER_IMAGE,
        command: [`--web.listen-address=:${port}`],
        replicas: sentinel ? sentinelCount(pis) : cacheNodes(options, pis),
        spread: true,
        memoryMb: 32,
        cpus: 0.05,
        ports: [{ container: port, host: port, configKey: key }],
        secretEnv,
        perReplica: (self) => ({ env: { REDIS_ADDR: `redis://${targets[self.index]?.address ?? "127.0.0.1"}:${target}` } }),
        metrics: { port, path: "/metrics" },
        logLabels: { tier: "cache", service: sentinel ? "sentinel-exporter" : "valkey-exporter" },
    };
}

/** The Prometheus jobs: the exporters beside the nodes, and beside the Sentinels. */
export const VALKEY_JOB = "cache-valkey";
export const SENTINEL_JOB = "cache-sentinel";

/**
 * The cache's alerts and dashboard, from redis_exporter's series. `exporters` and
 * `sentinelExporters` are the exporters' `host:port`, in node and Sentinel order.
 */
export function cacheSpec(options: CacheConfig, nodes: number, sentinels: number, exporters: readonly string[], sentinelExporters: readonly string[]): MonitoringSpec {
    const valkey = { job: VALKEY_JOB, targets: [...exporters], labels: { tier: "cache" } };
    const sentinel = { job: SENTINEL_JOB, targets: [...sentinelExporters], labels: { tier: "cache" } };
    const v = `job="${VALKEY_JOB}"`;
    const s = `job="${SENTINEL_JOB}"`;
    const quorum = sentinelQuorum(sentinels);
    return {
        component: "cache",
        scrapeTargets: [valkey, sentinel],
        alertRules: [
            targetDownRule(valkey),
            targetDownRule(sentinel),
            {
                alert: "ValkeyDown",
                expr: `redis_up{${v}} == 0`,
                for: "30s",
                severity: "critical",
                summary: "Valkey on {{ $labels.instance }} does not answer its exporter",
                description: "The exporter runs but its node does not answer (or refuses the password). When it was the primary, the Sentinels fail over; docker logs valkey-N on its Pi says why.",
            },
            {
                alert: "ValkeyNoPrimary",
                expr: `(count(redis_instance_info{${v},role="master"}) or vector(0)) == 0`,
                for: "30s",
                severity: "critical",
                summary: "The cache has no primary: writes fail",
                description: `No node is the primary. The Sentinels promote a replica ${options.downAfterSeconds} s after the primary stops answering; if this lasts, fewer than ${quorum} Sentinels agree, or no replica is fit.`,
            },
            {
                alert: "ValkeyTwoPrimaries",
                expr: `count(redis_instance_info{${v},role="master"}) > 1`,
                for: "1m",
                severity: "critical",
                summary: "{{ $value }} cache nodes say they are the primary",
                description: "A node came back as the primary after a failover and the Sentinels have not made it a replica. Clients that ask the Sentinels write only to theirs; writes to the other are lost when it is made a replica.",
            },
            {
                alert: "ValkeyReplicationBroken",
                expr: `redis_master_link_up{${v}} == 0`,
                for: "1m",
                severity: "warning",
                summary: "Replica {{ $labels.instance }} has lost its link to the primary",
                description: "The replica serves stale data and cannot be promoted safely. Its primary is down or unreachable, or the full resync keeps failing (client-output-buffer-limit on the primary): docker logs valkey-N on both Pis.",
            },
            {
                alert: "ValkeyMemoryNearLimit",
                expr: `redis_memory_used_bytes{${v}} / (redis_memory_max_bytes{${v}} > 0) > 0.9`,
                for: "10m",
                severity: "warning",
                summary: "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its maxmemory",
                description: `Beyond maxmemory the node ${options.evictionPolicy === "noeviction" ? "refuses writes (evictionPolicy is noeviction)" : `evicts keys (${options.evictionPolicy}): the hit ratio falls`}. Raise picloud:tiers.cache.memoryMb or keep less.`,
            },
            {
                alert: "ValkeyRejectedConnections",
                expr: `increase(redis_rejected_connections_total{${v}}[5m]) > 0`,
                severity: "warning",
                summary: "{{ $labels.instance }} refused {{ $value }} connections in 5 minutes",
                description: `The node has maxclients (${options.maxClients}) connections: pool connections in the apps, or raise picloud:tiers.cache.maxClients.`,
            },
            {
                alert: "ValkeyTooFewSentinels",
                expr: `min(redis_sentinel_master_ok_sentinels{${s},master_name="${MASTER_NAME}"}) < ${sentinels} or (count(up{${s}} == 1) or vector(0)) < ${sentinels}`,
                for: "1m",
                severity: sentinels > quorum ? "warning" : "critical",
                summary: `Fewer than ${sentinels} Sentinels watch the cache`,
                description: `A failover needs ${quorum} Sentinels that agree and a majority to elect its leader; with one more down the primary's death is not repaired. docker logs valkey-sentinel-N on the Pi of the missing one.`,
            },
        ],
        dashboard: {
            uid: "picloud-cache",
            title: "picloud / cache",
            panels: [
                { title: "Primary", expr: `redis_instance_info{${v},role="master"}`, kind: "stat" },
                { title: "Sentinels that agree", expr: `min(redis_sentinel_master_ok_sentinels{${s}})`, kind: "stat" },
                { title: "Memory used / maxmemory", expr: `redis_memory_used_bytes{${v}} / (redis_memory_max_bytes{${v}} > 0)`, unit: "percentunit" },
                { title: "Commands", expr: `sum by (instance) (rate(redis_commands_processed_total{${v}}[5m]))`, unit: "ops" },
                { title: "Hit ratio", expr: `sum(rate(redis_keyspace_hits_total{${v}}[5m])) / (sum(rate(redis_keyspace_hits_total{${v}}[5m])) + sum(rate(redis_keyspace_misses_total{${v}}[5m])))`, unit: "percentunit" },
                { title: "Evicted keys", expr: `sum by (instance) (rate(redis_evicted_keys_total{${v}}[5m]))`, unit: "ops" },
                { title: "Clients", expr: `redis_connected_clients{${v}}` },
                { title: "Replicas connected", expr: `redis_connected_slaves{${v}}` },
            ],
        },
        logLabels: { tier: "cache" },
    };
}

/**
 * Valkey from every other Pi (replicas, Sentinels, exporters, apps) and the operator; Sentinel
 * likewise (its peers, the exporters, the apps asking for the primary).
 */
export function cacheFlows(options: CacheConfig, nodes: readonly Pick<ReplicaIdentity, "pi">[], sentinels: readonly Pick<ReplicaIdentity, "pi">[], pis: readonly PiConfig[]): Flow[] {
    return [...nodes.flatMap((n) => clientFlows(n.pi, options.port, "valkey", `${KEY}.port`, pis)), ...sentinels.flatMap((s) => clientFlows(s.pi, options.sentinelPort, "sentinel", `${KEY}.sentinelPort`, pis))];
}

/**
 * What an app that sets `cache: true` gets: the Sentinels to ask for the primary, the name they
 * know it by, and the password (a secret) that both the Sentinels and the nodes take.
 */
export function cacheEnvironment(sentinels: readonly string[], password: ClientEnvironment["secretEnv"][string]): ClientEnvironment {
    return { env: { VALKEY_SENTINELS: sentinels.join(","), VALKEY_MASTER_NAME: MASTER_NAME }, secretEnv: { VALKEY_PASSWORD: password } };
}
