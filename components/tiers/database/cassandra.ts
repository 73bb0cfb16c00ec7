/**
 * The ring option, pure: Apache Cassandra 5.0 as a homogeneous ring, each node on a Pi of its own
 * with at least 8 GB and an SSD, every keyspace replicated three times (QUORUM reads and writes
 * then survive one node down), the heap and memtables sized for a Pi, commits fsynced before they
 * are acknowledged, and its golden signals through Prometheus's JMX exporter. The component
 * (`cassandraRing.ts`) deploys it.
 */
import { stringify } from "yaml";
import type { PiConfig } from "../../config/schema";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import type { Flow } from "../../network/flows";
import type { HardwareFloor } from "../../placement/place";
import { contentHash } from "../../renderers/contentHash";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";
import type { ReplicaIdentity, Workload } from "../../runtime/workload";
import type { DatabaseConfig } from "./config";

const KEY = "picloud:tiers.database.cassandra";

/** Cassandra's options (`picloud:tiers.database.cassandra`). */
export type CassandraOptions = NonNullable<DatabaseConfig["cassandra"]>;

export const CASSANDRA_VERSION = "5.0.9";
/** The official image (Debian bookworm, multi-arch), pinned by digest. */
export const CASSANDRA_BASE_IMAGE = `cassandra:${CASSANDRA_VERSION}@sha256:c89d12282b69b38a78f23c37886fc35e732f33b7c18801016c0334e4c7cabf64`;
/** Prometheus's JMX exporter as a Java agent, from Maven Central, checked against its SHA-256. */
export const JMX_EXPORTER = {
    version: "1.0.1",
    sha256: "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1",
    url: "https://repo1.maven.org/maven2/io/prometheus/jmx/jmx_prometheus_javaagent/1.0.1/jmx_prometheus_javaagent-1.0.1.jar",
} as const;
const JMX_EXPORTER_JAR = "/opt/picloud/jmx_prometheus_javaagent.jar";

export const CASSANDRA_WORKLOAD = "cassandra";
export const CASSANDRA_JOB = "database-cassandra";
/** Each node's cassandra.yaml and exporter rules, mounted read-only. */
export const CASSANDRA_CONFIG_DIR = "/srv/picloud/cassandra";
const CONFIG_IN_CONTAINER = "/etc/picloud";
/** The official image's data folder and its cassandra user. */
export const CASSANDRA_DATA_IN_CONTAINER = "/var/lib/cassandra";
const CASSANDRA_USER = { uid: 999, gid: 999 } as const;
/** The ring's one datacenter; each Pi is a rack of its own, so replicas go to distinct Pis. */
export const CASSANDRA_DC = "picloud";

/** What a Pi must have for a node: 8 GB and an SSD (compaction and the JVM want both). */
export const CASSANDRA_FLOOR: HardwareFloor = { memoryMb: 8192, ssd: true, configKey: KEY };

/** Copies of each row: three, or every node on a smaller ring. */
export function cassandraReplication(nodes: number): number {
    return Math.min(3, nodes);
}

/** The heap: half the node's memory limit (the rest is off-heap memtables, caches and the JVM's own), at most 8 GB. */
export function cassandraHeapMb(options: CassandraOptions): number {
    return Math.min(8192, Math.floor(options.memoryMb / 2));
}

/** The image each Pi builds: the official one with the JMX exporter added, checked by its hash. */
export function renderCassandraDockerfile(): string {
    return [
        "# picloud: Apache Cassandra with Prometheus's JMX exporter; rendered, do not edit",
        `FROM ${CASSANDRA_BASE_IMAGE}`,
        `ADD ${JMX_EXPORTER.url} ${JMX_EXPORTER_JAR}`,
        `RUN echo '${JMX_EXPORTER.sha256}  ${JMX_EXPORTER_JAR}' | sha256sum -c - && chmod 0644 ${JMX_EXPORTER_JAR}`,
        "",
    ].join("\n");
}

/** The tag the image is built under: its versions and a hash of its Dockerfile. */
export function cassandraImageTag(dockerfile = renderCassandraDockerfile()): string {
    return `picloud/cassandra:${CASSANDRA_VERSION}-jmx${JMX_EXPORTER.version}-${contentHash(dockerfile).slice(0, 12)}`;
}

/** Where a node's folders are: in its container by default; the host suite moves them. */
export interface CassandraPaths {
    readonly dataDir: string;
}

/** The seeds: the first two nodes (a seed does not bootstrap, so not every node is one). */
export function cassandraSeeds(members: readonly Pick<ReplicaIdentity, "address">[], options: CassandraOptions): string {
    return members
        .slice(0, 2)
        .map((m) => `${m.address}:${options.storagePort}`)
        .join(",");
}

/**
 * One node's cassandra.yaml. Commits are fsynced in groups before they are acknowledged
 * (`commitlog_sync: group`, 10 ms), so a power cut of every Pi loses nothing acknowledged;
 * Cassandra's default (periodic, 10 s) would lose up to ten seconds of them on every replica at
 * once. Memtables, caches, concurrency and compaction are sized for a Pi.
 */
export function renderCassandraYaml(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: CassandraOptions, context: { readonly clusterName: string; readonly paths?: CassandraPaths }): string {
    const dataDir = context.paths?.dataDir ?? CASSANDRA_DATA_IN_CONTAINER;
    const heap = cassandraHeapMb(options);
    const config = {
        cluster_name: context.clusterName,
        num_tokens: 16,
        allocate_tokens_for_local_replication_factor: cassandraReplication(members.length),
        partitioner: "org.apache.cassandra.dht.Murmur3Partitioner",
        seed_provider: [{ class_name: "org.apache.cassandra.locator.SimpleSeedProvider", parameters: [{ seeds: cassandraSeeds(members, options) }] }],
        listen_address: self.address,
        rpc_address: self.address,
        storage_port: options.storagePort,
        native_transport_port: options.cqlPort,
        endpoint_snitch: "GossipingPropertyFileSnitch",
        data_file_directories: [`${dataDir}/data`],
        commitlog_directory: `${dataDir}/commitlog`,
        saved_caches_directory: `${dataDir}/saved_caches`,
        hints_directory: `${dataDir}/hints`,
        cdc_raw_directory: `${dataDir}/cdc_raw`,
        // Power cuts: acknowledged once on disk.
        commitlog_sync: "group",
        commitlog_sync_group_window: "10ms",
        commitlog_segment_size: "32MiB",
        commitlog_total_space: "1024MiB",
        // Memory for a Pi: memtables an eighth of the heap each, on and off it; caches small.
        memtable_allocation_type: "offheap_objects",
        memtable_heap_space: `${Math.floor(heap / 8)}MiB`,
        memtable_offheap_space: `${Math.floor(heap / 8)}MiB`,
        key_cache_size: `${Math.min(100, Math.floor(heap / 20))}MiB`,
        row_cache_size: "0MiB",
        disk_access_mode: "mmap_index_only",
        concurrent_reads: 16,
        concurrent_writes: 16,
        concurrent_counter_writes: 16,
        concurrent_compactors: 1,
        compaction_throughput: "16MiB/s",
        // A node down for up to three hours gets what it missed as hints.
        hinted_handoff_enabled: true,
        max_hint_window: "3h",
        authenticator: "AllowAllAuthenticator",
        authorizer: "AllowAllAuthorizer",
    };
    return `# picloud: Cassandra node ${self.index} on ${self.pi}; rendered, do not edit\n${stringify(config, { lineWidth: 0 })}`;
}

/** The snitch's rack file: the ring's datacenter, the Pi as the rack. */
export function renderRackDc(self: Pick<ReplicaIdentity, "pi">): string {
    return `dc=${CASSANDRA_DC}\nrack=${self.pi}\n`;
}

/** The JMX exporter's rules: the metrics the alerts and the dashboard read, nothing else (a full scrape is heavy on a Pi). */
export function renderJmxExporterConfig(): string {
    const config = {
        lowercaseOutputName: true,
        lowercaseOutputLabelNames: true,
        includeObjectNames: ["org.apache.cassandra.metrics:type=ClientRequest,*", "org.apache.cassandra.metrics:type=DroppedMessage,*", "org.apache.cassandra.metrics:type=Compaction,*", "org.apache.cassandra.metrics:type=Storage,*", "org.apache.cassandra.net:type=FailureDetector"],
        rules: [
            { pattern: "org.apache.cassandra.metrics<type=ClientRequest, scope=(\\w+), name=(Latency)><>(99thPercentile)", name: "cassandra_client_request_latency_p99_microseconds", labels: { operation: "$1" }, type: "GAUGE" },
            { pattern: "org.apache.cassandra.metrics<type=ClientRequest, scope=(\\w+), name=(Latency)><>(Count)", name: "cassandra_client_requests_total", labels: { operation: "$1" }, type: "COUNTER" },
            { pattern: "org.apache.cassandra.metrics<type=ClientRequest, scope=(\\w+), name=(Timeouts|Unavailables|Failures)><>(Count)", name: "cassandra_client_request_errors_total", labels: { operation: "$1", error: "$2" }, type: "COUNTER" },
            { pattern: "org.apache.cassandra.metrics<type=DroppedMessage, scope=(\\w+), name=(Dropped)><>(Count)", name: "cassandra_dropped_messages_total", labels: { verb: "$1" }, type: "COUNTER" },
            { pattern: "org.apache.cassandra.metrics<type=Compaction, name=(PendingTasks)><>(Value)", name: "cassandra_compaction_pending_tasks", type: "GAUGE" },
            { pattern: "org.apache.cassandra.metrics<type=Storage, name=(Load)><>(Count)", name: "cassandra_storage_load_bytes", type: "GAUGE" },
            { pattern: "org.apache.cassandra.metrics<type=Storage, name=(TotalHintsInProgress)><>(Count)", name: "cassandra_hints_in_progress", type: "GAUGE" },
            { pattern: "org.apache.cassandra.net<type=FailureDetector><>(DownEndpointCount)", name: "cassandra_down_endpoints", type: "GAUGE" },
        ],
    };
    return `# picloud: Prometheus's JMX exporter on a Cassandra node; rendered, do not edit\n${stringify(config, { lineWidth: 0 })}`;
}

/** The JVM options the node starts with, beside the image's own: the exporter agent and picloud's cassandra.yaml. */
export function cassandraJvmOptions(options: CassandraOptions, files: { readonly yaml: string; readonly exporterConfig: string; readonly agentJar: string }): string {
    return [`-javaagent:${files.agentJar}=${options.metricsPort}:${files.exporterConfig}`, `-Dcassandra.config=file://${files.yaml}`].join(" ");
}

/** The nodes' workload: host networking, each on a Pi of its own that meets the floor, its data there, one node joining at a time. */
export function cassandraWorkload(options: CassandraOptions): Workload {
    const dockerfile = renderCassandraDockerfile();
    const heap = cassandraHeapMb(options);
    return {
        name: CASSANDRA_WORKLOAD,
        component: "database",
        configKey: KEY,
        image: cassandraImageTag(dockerfile),
        build: { dockerfile },
        replicas: options.nodes,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.cqlPort, host: options.cqlPort, configKey: `${KEY}.cqlPort` },
            { container: options.storagePort, host: options.storagePort, configKey: `${KEY}.storagePort` },
            { container: options.metricsPort, host: options.metricsPort, configKey: `${KEY}.metricsPort` },
        ],
        volumes: [
            { hostPath: `${CASSANDRA_CONFIG_DIR}/cassandra.yaml`, containerPath: `${CONFIG_IN_CONTAINER}/cassandra.yaml`, readOnly: true },
            { hostPath: `${CASSANDRA_CONFIG_DIR}/jmx-exporter.yaml`, containerPath: `${CONFIG_IN_CONTAINER}/jmx-exporter.yaml`, readOnly: true },
        ],
        env: {
            // The image's cassandra-env.sh sizes the JVM from these; G1 ignores the young generation's.
            MAX_HEAP_SIZE: `${heap}M`,
            HEAP_NEWSIZE: `${Math.floor(heap / 4)}M`,
            JVM_EXTRA_OPTS: cassandraJvmOptions(options, { yaml: `${CONFIG_IN_CONTAINER}/cassandra.yaml`, exporterConfig: `${CONFIG_IN_CONTAINER}/jmx-exporter.yaml`, agentJar: JMX_EXPORTER_JAR }),
            CASSANDRA_DC,
        },
        perReplica: (self) => ({ env: { CASSANDRA_RACK: self.pi } }),
        data: { containerPath: CASSANDRA_DATA_IN_CONTAINER, owner: CASSANDRA_USER },
        hardwareFloor: CASSANDRA_FLOOR,
        fsyncHeavy: { allowSdCard: false, allowSdCardKey: KEY },
        // One node at a time: a node joins the ring only once the one before serves CQL.
        updateStrategy: "one-at-a-time",
        // Healthy once CQL listens (the node has joined the ring): read from the kernel's socket table, no JVM started for it.
        healthcheck: { command: ["grep", "-qi", `:${options.cqlPort.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A`, "/proc/net/tcp"], intervalSeconds: 15, timeoutSeconds: 5, retries: 4, startPeriodSeconds: 600 },
        metrics: { port: options.metricsPort, path: "/metrics" },
        logLabels: { tier: "database", service: "cassandra" },
    };
}

/** The CQL that keeps the declared keyspaces: each created when missing, replicated min(3, nodes) times in the ring's datacenter; nothing dropped. */
export function renderKeyspacesCql(options: CassandraOptions): string {
    const rf = cassandraReplication(options.nodes);
    return Object.keys(options.keyspaces)
        .map((k) => `CREATE KEYSPACE IF NOT EXISTS ${k} WITH replication = {'class': 'NetworkTopologyStrategy', '${CASSANDRA_DC}': ${rf}};`)
        .join("\n");
}

/**
 * The ring's init step, on the first node's Pi once every node runs: waits until every node is
 * up and normal in the first one's view (`nodetool status`: UN), then applies the keyspaces' CQL
 * (stdin) through cqlsh.
 */
export function renderCassandraInit(input: { readonly nodetool: readonly string[]; readonly cqlsh: readonly string[]; readonly nodes: number; readonly waitSeconds?: number }): string {
    const nodetool = input.nodetool.map(shellQuote).join(" ");
    const cqlsh = input.cqlsh.map(shellQuote).join(" ");
    return [
        "#!/usr/bin/env bash",
        "# picloud: the Cassandra ring's init step (keyspaces)",
        "set -euo pipefail",
        "cql=$(cat)",
        `up() { [ "$(${nodetool} status 2>/dev/null | grep -c '^UN ')" -ge ${input.nodes} ]; }`,
        ...waitUntilLines("up", input.waitSeconds ?? 900, (s) => `picloud: fewer than ${input.nodes} Cassandra nodes are up and normal after ${s} s: keyspaces are left as they are`),
        `if [ -n "$cql" ]; then printf '%s\\n' "$cql" | ${cqlsh}; fi`,
        `echo "picloud: ${input.nodes} Cassandra nodes up; keyspaces as declared"`,
        "",
    ].join("\n");
}

/** The ring's golden signals: nodes down (one is survivable at QUORUM, two are not), latency, errors, dropped messages, compaction backlog, heap. */
export function cassandraSpec(options: CassandraOptions, members: readonly ReplicaIdentity[]): MonitoringSpec {
    const target = { job: CASSANDRA_JOB, targets: members.map((m) => `${m.address}:${options.metricsPort}`), labels: { tier: "database" } };
    const j = `job="${CASSANDRA_JOB}"`;
    const rf = cassandraReplication(members.length);
    return {
        component: "cassandra",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "CassandraNodeDown",
                expr: `max(cassandra_down_endpoints{${j}}) > 0`,
                for: "1m",
                severity: "warning",
                summary: "{{ $value }} Cassandra node(s) are down as the ring sees it",
                description: `QUORUM reads and writes go on with one of ${rf} replicas down; hints keep what it misses for 3 h. Bring it back, or replace the Pi.`,
            },
            {
                alert: "CassandraQuorumAtRisk",
                // The copies a row may lose and keep its QUORUM, plus one.
                expr: `max(cassandra_down_endpoints{${j}}) >= ${rf - (Math.floor(rf / 2) + 1) + 1}`,
                for: "1m",
                severity: "critical",
                summary: "Enough Cassandra nodes are down that some rows lose their QUORUM",
                description: `With ${rf} copies a QUORUM needs ${Math.floor(rf / 2) + 1}: rows with two copies on down nodes can be neither read nor written at QUORUM.`,
            },
            {
                alert: "CassandraRequestErrors",
                expr: `sum by (instance, operation, error) (rate(cassandra_client_request_errors_total{${j}}[5m])) > 0`,
                for: "5m",
                severity: "warning",
                summary: "Cassandra {{ $labels.operation }} requests fail on {{ $labels.instance }} ({{ $labels.error }})",
                description: "Timeouts, unavailable replicas or failures seen by the coordinator: replicas are down, overloaded or too slow for their disk.",
            },
            {
                alert: "CassandraSlowRequests",
                expr: `max by (instance, operation) (cassandra_client_request_latency_p99_microseconds{${j}, operation=~"Read|Write"}) > 100000`,
                for: "10m",
                severity: "warning",
                summary: "Cassandra {{ $labels.operation }} p99 latency on {{ $labels.instance }} is over 100 ms",
                description: "The 99th percentile of requests this coordinator served is slow: compaction, a slow disk or a GC-bound heap.",
            },
            {
                alert: "CassandraDroppedMessages",
                expr: `sum by (instance, verb) (increase(cassandra_dropped_messages_total{${j}}[5m])) > 0`,
                for: "5m",
                severity: "warning",
                summary: "Cassandra dropped {{ $labels.verb }} messages on {{ $labels.instance }}",
                description: "The node shed work it could not do in time: it is overloaded. Replicas repair writes later; reads may be stale meanwhile.",
            },
            {
                alert: "CassandraCompactionBacklog",
                expr: `max by (instance) (cassandra_compaction_pending_tasks{${j}}) > 50`,
                for: "30m",
                severity: "warning",
                summary: "{{ $value }} compactions wait on {{ $labels.instance }}",
                description: "Compaction does not keep up with writes (compaction_throughput 16 MiB/s, one compactor on a Pi): reads slow down and disk fills.",
            },
            {
                alert: "CassandraHeapHigh",
                expr: `max by (instance) (jvm_memory_used_bytes{${j}, area="heap"} / jvm_memory_max_bytes{${j}, area="heap"}) > 0.9`,
                for: "15m",
                severity: "warning",
                summary: "Cassandra's heap on {{ $labels.instance }} is over 90 % full",
                description: `The heap (${cassandraHeapMb(options)} MB, half of memoryMb) is too small for the load: long GC pauses follow. Raise ${KEY}.memoryMb.`,
            },
        ],
        dashboard: {
            uid: "picloud-cassandra",
            title: "picloud / cassandra",
            panels: [
                { title: "Nodes down", expr: `max(cassandra_down_endpoints{${j}})`, kind: "stat" },
                { title: "Requests", expr: `sum by (operation) (rate(cassandra_client_requests_total{${j}}[5m]))`, unit: "ops" },
                { title: "p99 latency", expr: `cassandra_client_request_latency_p99_microseconds{${j}}`, unit: "µs" },
                { title: "Errors", expr: `sum by (operation, error) (rate(cassandra_client_request_errors_total{${j}}[5m]))`, unit: "ops" },
                { title: "Pending compactions", expr: `cassandra_compaction_pending_tasks{${j}}` },
                { title: "Load", expr: `cassandra_storage_load_bytes{${j}}`, unit: "bytes" },
                { title: "Heap used", expr: `jvm_memory_used_bytes{${j}, area="heap"}`, unit: "bytes" },
            ],
        },
        logLabels: { tier: "database", service: "cassandra" },
    };
}

/** Gossip between the nodes, CQL from every Pi and the operator, metrics from monitoring (every Pi). */
export function cassandraFlows(options: CassandraOptions, members: readonly ReplicaIdentity[], pis: readonly PiConfig[]): Flow[] {
    const flows: Flow[] = [];
    for (const to of members) {
        for (const from of members.filter((m) => m.pi !== to.pi)) {
            flows.push({ from: { pi: from.pi }, to: to.pi, protocol: "tcp", port: options.storagePort, purpose: `cassandra gossip from node ${from.index}`, declaredBy: `${KEY}.storagePort` });
        }
        for (const from of pis.filter((p) => p.name !== to.pi)) {
            flows.push({ from: { pi: from.name }, to: to.pi, protocol: "tcp", port: options.cqlPort, purpose: `cql from ${from.name}`, declaredBy: `${KEY}.cqlPort` });
        }
        flows.push({ from: { zone: "mgmt" }, to: to.pi, protocol: "tcp", port: options.cqlPort, purpose: "operator to cql", declaredBy: `${KEY}.cqlPort` });
    }
    return flows;
}
