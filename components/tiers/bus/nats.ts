/**
 * The message bus, pure: NATS with JetStream, three nodes where there are three Pis or more,
 * each on a Pi of its own; every declared stream replicated to min(3, nodes) of them;
 * acknowledged only once fsynced (`sync_interval: always`) unless the config says otherwise;
 * accounts isolated from each other, each user's password a Pulumi secret that reaches the
 * server as environment (nats.conf names the variable, never the value); and
 * prometheus-nats-exporter beside each node. The component (`bus.ts`) deploys it.
 */
import type { PiConfig } from "../../config/schema";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import { type Flow, clientFlows } from "../../network/flows";
import { majority } from "../../placement/place";
import { contentHash } from "../../renderers/contentHash";
import { GoProgram, goModuleImageTag, renderGoModuleDockerfile } from "../../renderers/goModuleImage";
import { shellQuote } from "../../renderers/shellSteps";
import type { ClientEnvironment, ReplicaIdentity, Workload } from "../../runtime/workload";
import type { BusConfig } from "./config";

const KEY = "picloud:tiers.bus";

/** The NATS server version the image pins; the host suite builds the same from its Go module. */
export const NATS_VERSION = "2.14.7";
export const NATS_IMAGE = `nats:${NATS_VERSION}-alpine@sha256:4063edae0717ba5f7501bfde75f97fd9b57f5b93597b92c70b6a6fbbf6a74e06`;
/** prometheus-nats-exporter, built on each Pi from its Go module (verified by Go's checksum database) on Go's official image, pinned by digest; no digest of its own image could be checked. */
export const NATS_EXPORTER_VERSION = "0.17.3";
const NATS_EXPORTER: GoProgram = { pkg: "github.com/nats-io/prometheus-nats-exporter", version: NATS_EXPORTER_VERSION };

/** The exporter's Dockerfile: built from its module in Go's image, the binary alone in the image that runs. */
export function renderNatsExporterDockerfile(): string {
    return renderGoModuleDockerfile(NATS_EXPORTER);
}

/** The tag the exporter's image is built under: its version and a hash of its Dockerfile. */
export function natsExporterImageTag(dockerfile = renderNatsExporterDockerfile()): string {
    return goModuleImageTag("nats-exporter", NATS_EXPORTER, dockerfile);
}

export const NATS_WORKLOAD = "nats";
export const NATS_EXPORTER_WORKLOAD = "nats-exporter";
export const NATS_JOB = "bus-nats";
/** The cluster's name: routes from a server of another cluster are refused. */
export const NATS_CLUSTER = "picloud";
/** Each Pi's nats.conf, mounted read-only. */
export const BUS_CONFIG_DIR = "/srv/picloud/bus";
const CONFIG_IN_CONTAINER = "/etc/nats/nats.conf";
export const NATS_DATA_IN_CONTAINER = "/data";
/** NATS's system account, for the servers' own traffic; it has no users apps get. */
const SYSTEM_ACCOUNT = "SYS";

/** Nodes: `nodes`, else three where there are three Pis or more, else one. */
export function natsNodes(options: BusConfig, pis: readonly PiConfig[]): number {
    return options.nodes ?? (pis.length >= 3 ? 3 : 1);
}

/** Copies of each stream: min(3, nodes). */
export function streamReplicas(nodes: number): number {
    return Math.min(3, nodes);
}

/** GOMEMLIMIT, MiB: four fifths of the limit, so Go's collector works harder before the kernel kills the node. */
export function goMemLimitMb(options: BusConfig): number {
    return Math.floor(options.memoryMb * 0.8);
}

/** In-memory streams' share, MB: a quarter of the limit. */
export function maxMemoryStoreMb(options: BusConfig): number {
    return Math.floor(options.memoryMb / 4);
}

/** The environment variable a user's password reaches the server in. */
export function passwordVariable(account: string, user: string): string {
    return `PICLOUD_NATS_${account}_${user}`.toUpperCase().replace(/-/g, "_");
}

/** Every declared user, with its account. */
export function natsUsers(options: BusConfig): { account: string; user: string }[] {
    return Object.entries(options.accounts).flatMap(([account, a]) => Object.keys(a.users).map((user) => ({ account, user })));
}

/** Where a node's data is: in its container by default; the host suite moves it. */
export interface NatsPaths {
    readonly dataDir: string;
}

/**
 * One node's nats.conf. Passwords are `$VARIABLE` references, which nats-server reads from its
 * environment. Routes are unauthenticated: the cluster port is open only between the nodes' Pis.
 */
export function renderNatsConf(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: BusConfig, paths: NatsPaths = { dataDir: NATS_DATA_IN_CONTAINER }): string {
    const lines = [
        `# picloud: NATS node ${self.index} on ${self.pi}; rendered, do not edit`,
        `server_name: ${JSON.stringify(`${self.pi}-${self.index}`)}`,
        `listen: "0.0.0.0:${options.clientPort}"`,
        `http: "0.0.0.0:${options.monitorPort}"`,
        "max_payload: 1MB",
        "max_connections: 1024",
        // A slow consumer is cut off once 64 MB are waiting for it, rather than growing the node's memory.
        "max_pending: 64MB",
        "write_deadline: \"10s\"",
        "jetstream {",
        `    store_dir: ${JSON.stringify(paths.dataDir)}`,
        `    max_memory_store: ${maxMemoryStoreMb(options)}MB`,
        `    max_file_store: ${options.storeGb}GB`,
        `    sync_interval: ${options.syncInterval === "always" ? "always" : JSON.stringify(options.syncInterval)}`,
        "}",
    ];
    if (members.length > 1) {
        lines.push(
            "cluster {",
            `    name: ${NATS_CLUSTER}`,
            `    listen: "0.0.0.0:${options.clusterPort}"`,
            `    routes: [${members.filter((m) => m.index !== self.index).map((m) => JSON.stringify(`nats-route://${m.address}:${options.clusterPort}`)).join(", ")}]`,
            "}",
        );
    }
    lines.push("accounts {", `    ${SYSTEM_ACCOUNT}: {}`);
    for (const [account, a] of Object.entries(options.accounts)) {
        const users = Object.keys(a.users).map((user) => `{ user: ${JSON.stringify(user)}, password: $${passwordVariable(account, user)} }`);
        lines.push(`    ${JSON.stringify(account)}: {`, "        jetstream: enabled", `        users: [${users.join(", ")}]`, "    }");
    }
    lines.push("}", `system_account: ${SYSTEM_ACCOUNT}`, "");
    return lines.join("\n");
}

/** The NATS nodes: host networking (routes and clients see each Pi's address), one per Pi, one at a time. */
export function natsWorkload(options: BusConfig, pis: readonly PiConfig[], secretEnv: Workload["secretEnv"] = {}): Workload {
    const nodes = natsNodes(options, pis);
    return {
        name: NATS_WORKLOAD,
        component: "bus",
        configKey: KEY,
        image: NATS_IMAGE,
        command: ["nats-server", "--config", CONFIG_IN_CONTAINER],
        replicas: nodes,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.clientPort, host: options.clientPort, configKey: `${KEY}.clientPort` },
            { container: options.clusterPort, host: options.clusterPort, configKey: `${KEY}.clusterPort` },
            { container: options.monitorPort, host: options.monitorPort, configKey: `${KEY}.monitorPort` },
        ],
        env: { GOMEMLIMIT: `${goMemLimitMb(options)}MiB` },
        secretEnv,
        volumes: [{ hostPath: `${BUS_CONFIG_DIR}/nats.conf`, containerPath: CONFIG_IN_CONTAINER, readOnly: true }],
        data: { containerPath: NATS_DATA_IN_CONTAINER },
        // A changed nats.conf restarts the node (its hash is in the environment), one node at a time, each back before the next.
        perReplica: (self, members) => ({ env: { PICLOUD_FILES_SHA256: natsConfHash(self, members, options) } }),
        quorum: { name: "jetstream", quorum: majority(nodes) },
        fsyncHeavy: { allowSdCard: options.allowSdCard || options.syncInterval !== "always", allowSdCardKey: `${KEY}.allowSdCard` },
        // /healthz answers 200 once the server runs and its JetStream is current.
        healthcheck: { command: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${options.monitorPort}/healthz`], intervalSeconds: 10, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 60 },
        logLabels: { tier: "bus", service: "nats" },
    };
}

/** The hash of what a node reads at start. */
function natsConfHash(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: BusConfig): string {
    return contentHash(renderNatsConf(self, members, options));
}

/** prometheus-nats-exporter beside each node, reading its monitoring port. */
export function natsExporterWorkload(options: BusConfig, pis: readonly PiConfig[], members: readonly Pick<ReplicaIdentity, "address">[] = []): Workload {
    const dockerfile = renderNatsExporterDockerfile();
    return {
        name: NATS_EXPORTER_WORKLOAD,
        component: "bus",
        configKey: `${KEY}.exporterPort`,
        image: natsExporterImageTag(dockerfile),
        build: { dockerfile },
        replicas: natsNodes(options, pis),
        spread: true,
        memoryMb: 32,
        cpus: 0.05,
        ports: [{ container: options.exporterPort, host: options.exporterPort, configKey: `${KEY}.exporterPort` }],
        perReplica: (self) => ({ command: natsExporterArgs(options, members[self.index]?.address ?? "127.0.0.1") }),
        metrics: { port: options.exporterPort, path: "/metrics" },
        logLabels: { tier: "bus", service: "nats-exporter" },
    };
}

/** The exporter's arguments: the server's general, route, JetStream and health endpoints. */
export function natsExporterArgs(options: BusConfig, address: string): string[] {
    return [`-port=${options.exporterPort}`, "-varz", "-routez", "-jsz=all", "-healthz", `http://${address}:${options.monitorPort}`];
}

/** A stream as JetStream's API takes it (`$JS.API.STREAM.CREATE.<name>`). */
export function streamConfig(name: string, stream: BusConfig["accounts"][string]["streams"][string], nodes: number): Record<string, unknown> {
    return {
        name,
        subjects: stream.subjects,
        retention: "limits",
        storage: "file",
        num_replicas: streamReplicas(nodes),
        max_age: stream.maxAgeHours * 3600 * 1_000_000_000,
        max_bytes: stream.maxMb * 1024 * 1024,
        discard: "old",
        duplicate_window: 120 * 1_000_000_000,
    };
}

/** What the streams step needs. */
export interface StreamsStepInput {
    /** The node the step speaks to: its address and client port. */
    readonly address: string;
    readonly options: BusConfig;
    readonly nodes: number;
    /** Seconds to wait for JetStream to answer (a new cluster elects its meta leader first); default 120. */
    readonly waitSeconds?: number;
}

/**
 * The streams step, run on a node's Pi once every node runs: for each account with streams,
 * it connects as one of the account's users (whose password comes on stdin, `<account> <user>
 * <password>` a line) and asks JetStream's API, in NATS's own protocol over bash's /dev/tcp, to
 * create each declared stream, or update it when its config changed. Streams not declared are
 * left alone (data outlives config). Idempotent.
 */
export function renderStreamsStep(input: StreamsStepInput): string {
    const wait = input.waitSeconds ?? 120;
    const lines = [
        "#!/usr/bin/env bash",
        "# picloud: the bus's streams step (JetStream's API over NATS's protocol)",
        "set -euo pipefail",
        "declare -A user=() pass=()",
        'while read -r account name secret; do [ -n "$account" ] && user[$account]=$name && pass[$account]=$secret; done',
        // One request: connect, subscribe to a reply inbox, publish, print the reply's payload.
        "request() {",
        "    local account=$1 subject=$2 body=$3 line payload",
        `    exec 3<>/dev/tcp/${input.address}/${input.options.clientPort}`,
        "    IFS= read -r -t 10 line <&3 || return 1",
        `    printf 'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s","protocol":1}\\r\\nSUB _INBOX.picloud 1\\r\\nPUB %s _INBOX.picloud %d\\r\\n%s\\r\\nPING\\r\\n' "\${user[$account]}" "\${pass[$account]}" "$subject" "\${#body}" "$body" >&3`,
        "    while IFS= read -r -t 10 line <&3; do",
        "        line=${line%$'\\r'}",
        '        case "$line" in',
        "            MSG*) IFS= read -r -t 10 payload <&3; exec 3>&-; printf '%s\\n' \"${payload%$'\\r'}\"; return 0 ;;",
        "            -ERR*) exec 3>&-; printf '%s\\n' \"$line\"; return 0 ;;",
        "        esac",
        "    done",
        "    exec 3>&-",
        "    return 1",
        "}",
        // JetStream answers once its meta leader is elected; until then "temporarily unavailable" (10008) or no responders.
        "ensure() {",
        "    local account=$1 stream=$2 body=$3 reply",
        `    for _ in $(seq 1 ${Math.ceil(wait / 2)}); do`,
        '        reply=$(request "$account" "\\$JS.API.STREAM.CREATE.$stream" "$body") || reply=""',
        '        case "$reply" in',
        '            *\'"err_code":10058\'*)',
        '                reply=$(request "$account" "\\$JS.API.STREAM.UPDATE.$stream" "$body") || reply=""',
        '                case "$reply" in *\'"config"\'*) echo "picloud: changed stream $stream ($account)"; return 0 ;; esac ;;',
        '            *\'"config"\'*) echo "picloud: ok stream $stream ($account)"; return 0 ;;',
        "        esac",
        "        sleep 2",
        "    done",
        `    echo "picloud: JetStream did not take stream $stream ($account) within ${wait} s: $reply" >&2`,
        "    return 1",
        "}",
    ];
    for (const [account, a] of Object.entries(input.options.accounts)) {
        for (const [name, stream] of Object.entries(a.streams)) {
            lines.push(`ensure ${shellQuote(account)} ${shellQuote(name)} ${shellQuote(JSON.stringify(streamConfig(name, stream, input.nodes)))}`);
        }
    }
    lines.push("");
    return lines.join("\n");
}

/** The bus's alerts and dashboard, from prometheus-nats-exporter's series. `exporters` are its `host:port`, in node order. */
export function busSpec(options: BusConfig, nodes: number, exporters: readonly string[]): MonitoringSpec {
    const target = { job: NATS_JOB, targets: [...exporters], labels: { tier: "bus" } };
    const j = `job="${NATS_JOB}"`;
    return {
        component: "bus",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "NatsServerDown",
                // The exporter keeps serving a dead server's last /varz figures; /healthz says "unreachable" (0) at once.
                expr: `gnatsd_healthz_status_value{${j}} == 0`,
                for: "30s",
                severity: "critical",
                summary: "NATS on {{ $labels.instance }} is down or unhealthy",
                description: `The server's /healthz does not answer ok: it is down, restarting, or its JetStream is not current (catching up after a restart). Streams on three nodes go on with two; docker logs nats-N on its Pi says why.`,
            },
            ...(nodes > 1
                ? [
                      {
                          alert: "NatsNoMetaLeader",
                          expr: `(count(jetstream_server_total_streams{${j},is_meta_leader="true"}) or vector(0)) == 0`,
                          for: "1m",
                          severity: "critical" as const,
                          summary: "JetStream has no meta leader: streams cannot be created or changed, and new consumers fail",
                          description: `No node leads JetStream's meta group: fewer than ${majority(nodes)} of ${nodes} nodes are up, or they cannot reach each other on the cluster port ${options.clusterPort}.`,
                      },
                      {
                          alert: "NatsStreamWithoutQuorum",
                          // A stream's Raft group elects a leader only with a majority of its nodes: a stream no node leads has lost its quorum.
                          expr: `max by (account, stream_name) (jetstream_stream_total_messages{${j}}) unless on (account, stream_name) max by (account, stream_name) (jetstream_stream_total_messages{${j},is_stream_leader="true"})`,
                          for: "1m",
                          severity: "critical" as const,
                          summary: "Stream {{ $labels.stream_name }} ({{ $labels.account }}) has no leader: publishing to it fails",
                          description: `A stream on ${streamReplicas(nodes)} nodes elects a leader only with ${majority(streamReplicas(nodes))} of them; without one it takes no messages. Its nodes are down or cut off from each other.`,
                      },
                  ]
                : []),
            {
                alert: "NatsSlowConsumers",
                expr: `increase(gnatsd_varz_slow_consumers{${j}}[5m]) > 0`,
                severity: "warning",
                summary: "{{ $labels.instance }} cut off {{ $value }} slow consumers in 5 minutes",
                description: "A client did not read its messages fast enough, so the server dropped its connection (64 MB pending). The client lost messages not in a stream: make it faster, or have it read from a stream.",
            },
            {
                alert: "NatsJetStreamStorageNearLimit",
                expr: `gnatsd_varz_jetstream_stats_storage{${j}} / (gnatsd_varz_jetstream_config_max_storage{${j}} > 0) > 0.85`,
                for: "10m",
                severity: "warning",
                summary: "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its JetStream storage",
                description: "Once full, streams refuse new messages. Lower the streams' maxMb or maxAgeHours, or raise picloud:tiers.bus.storeGb (and the disk).",
            },
            {
                alert: "NatsJetStreamMemoryNearLimit",
                expr: `gnatsd_varz_jetstream_stats_memory{${j}} / (gnatsd_varz_jetstream_config_max_memory{${j}} > 0) > 0.85`,
                for: "10m",
                severity: "warning",
                summary: "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its JetStream memory",
                description: "In-memory streams are near their share of the node's memory; once full they refuse messages. Raise picloud:tiers.bus.memoryMb.",
            },
        ],
        dashboard: {
            uid: "picloud-bus",
            title: "picloud / bus",
            panels: [
                { title: "Healthy servers", expr: `sum(gnatsd_healthz_status_value{${j}})`, kind: "stat" },
                { title: "Meta leader", expr: `count(jetstream_server_total_streams{${j},is_meta_leader="true"})`, kind: "stat" },
                { title: "Messages in", expr: `sum by (instance) (rate(gnatsd_varz_in_msgs{${j}}[5m]))`, unit: "ops" },
                { title: "Messages out", expr: `sum by (instance) (rate(gnatsd_varz_out_msgs{${j}}[5m]))`, unit: "ops" },
                { title: "Connections", expr: `gnatsd_varz_connections{${j}}` },
                { title: "Slow consumers", expr: `increase(gnatsd_varz_slow_consumers{${j}}[5m])` },
                { title: "JetStream storage used", expr: `gnatsd_varz_jetstream_stats_storage{${j}} / (gnatsd_varz_jetstream_config_max_storage{${j}} > 0)`, unit: "percentunit" },
                { title: "Stream messages", expr: `max by (stream_name) (jetstream_stream_total_messages{${j}})` },
            ],
        },
        logLabels: { tier: "bus" },
    };
}

/** Clients from every other Pi and the operator; routes between the nodes only; the monitoring port from the exporters' Pis (every Pi). */
export function busFlows(options: BusConfig, members: readonly Pick<ReplicaIdentity, "pi">[], pis: readonly PiConfig[]): Flow[] {
    return members.flatMap((to) => [
        ...clientFlows(to.pi, options.clientPort, "nats clients", `${KEY}.clientPort`, pis),
        ...pis.filter((p) => p.name !== to.pi).map((p): Flow => ({ from: { pi: p.name }, to: to.pi, protocol: "tcp", port: options.monitorPort, purpose: `nats exporter from ${p.name}`, declaredBy: `${KEY}.monitorPort` })),
        ...members.filter((m) => m.pi !== to.pi).map((m): Flow => ({ from: { pi: m.pi }, to: to.pi, protocol: "tcp", port: options.clusterPort, purpose: `nats routes from ${m.pi}`, declaredBy: `${KEY}.clusterPort` })),
    ]);
}

/** What an app that names a bus user gets: every node's URL, its user name, and its password as a secret. */
export function busEnvironment(members: readonly Pick<ReplicaIdentity, "address">[], options: BusConfig, user: string, password: ClientEnvironment["secretEnv"][string]): ClientEnvironment {
    return { env: { NATS_URL: members.map((m) => `nats://${m.address}:${options.clientPort}`).join(","), NATS_USER: user }, secretEnv: { NATS_PASSWORD: password } };
}
