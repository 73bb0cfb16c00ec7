/**
 * The bus's RabbitMQ option, pure: RabbitMQ 4 on three Pis (one on a smaller stack), each node
 * named after its Pi (`rabbit@<pi>`) and finding its peers through an Erlang resolver file picloud
 * renders, so no DNS is needed; clustered by RabbitMQ's classic peer discovery; every declared
 * queue a quorum queue on min(3, nodes) of them, its limits a policy; the Raft WAL and the memory
 * watermark sized for a Pi; RabbitMQ's own Prometheus plugin on each node. Users' passwords reach
 * the cluster only on the definitions step's stdin; the Erlang cookie is a secret file. The
 * component (`rabbitmqCluster.ts`) deploys it.
 */
import type { PiConfig } from "../../config/schema";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import { type Flow, clientFlows } from "../../network/flows";
import { majority } from "../../placement/place";
import { contentHash } from "../../renderers/contentHash";
import { shellQuote } from "../../renderers/shellSteps";
import type { ClientEnvironment, ReplicaIdentity, Workload } from "../../runtime/workload";
import type { RabbitmqConfig } from "./config";

const KEY = "picloud:tiers.bus.rabbitmq";

export const RABBITMQ_VERSION = "4.1.8";
export const RABBITMQ_IMAGE = `rabbitmq:${RABBITMQ_VERSION}@sha256:13b585c6d193b7539c72b69a3b284635011e187b952e43e92d771535baff5d87`;
export const RABBITMQ_WORKLOAD = "rabbitmq";
export const RABBITMQ_JOB = "bus-rabbitmq";
/** Each Pi's rabbitmq.conf, enabled_plugins, resolver file and cookie, mounted read-only. */
export const RABBITMQ_CONFIG_DIR = "/srv/picloud/bus/rabbitmq";
/** The image's rabbitmq user, which owns the data and the cookie. */
export const RABBITMQ_UID = 999;
/** Erlang's port mapper, where nodes and the CLI find each other's distribution port. */
export const EPMD_PORT = 4369;
/** The files each node reads, by name in {@link RABBITMQ_CONFIG_DIR}, and where the container has them. */
export const RABBITMQ_FILES = {
    // Last of the image's conf.d files, so its settings win over the image's defaults (10-defaults.conf lets guest in from anywhere).
    conf: { file: "rabbitmq.conf", inContainer: "/etc/rabbitmq/conf.d/90-picloud.conf" },
    plugins: { file: "enabled_plugins", inContainer: "/etc/rabbitmq/enabled_plugins" },
    inetrc: { file: "inetrc", inContainer: "/etc/rabbitmq/inetrc" },
    cookie: { file: "erlang.cookie", inContainer: "/var/lib/rabbitmq/.erlang.cookie" },
} as const;
const DATA_IN_CONTAINER = "/var/lib/rabbitmq";

/** Which server reads the files: RabbitMQ 4 on the Pis; Debian's 3.10 stands in for it in the host suite. */
export type RabbitmqServer = "rabbitmq4" | "rabbitmq3.10";
/** Settings RabbitMQ 3.10 does not know, and would refuse to start with. */
export const RABBITMQ4_ONLY = new Set(["quorum_queue.continuous_membership_reconciliation.enabled", "quorum_queue.continuous_membership_reconciliation.target_group_size"]);

const MIB = 1024 * 1024;

/** Nodes: `nodes`, else three where there are three Pis or more, else one. */
export function rabbitmqNodes(options: RabbitmqConfig, pis: readonly PiConfig[]): number {
    return options.nodes ?? (pis.length >= 3 ? 3 : 1);
}

/** Members of each quorum queue: min(3, nodes). */
export function queueReplicas(nodes: number): number {
    return Math.min(3, nodes);
}

/** A node's Erlang name: its Pi's, which the resolver file maps to the Pi's address. */
export function rabbitmqNodeName(member: Pick<ReplicaIdentity, "pi">): string {
    return `rabbit@${member.pi}`;
}

/** The memory watermark, bytes: publishers are blocked above it. */
export function watermarkBytes(options: RabbitmqConfig): number {
    return Math.floor(options.memoryMb * options.memoryWatermark) * MIB;
}

/** One node's rabbitmq.conf (the same on every node: its own name comes from the environment). */
export function renderRabbitmqConf(members: readonly Pick<ReplicaIdentity, "pi">[], options: RabbitmqConfig, server: RabbitmqServer = "rabbitmq4"): string {
    const settings: [string, string | number][] = [
        ["cluster_name", "picloud"],
        ["listeners.tcp.default", options.amqpPort],
        // The guest user, should it exist, may only connect from the node's own Pi (the step removes it).
        ["loopback_users.guest", "true"],
        ["cluster_formation.peer_discovery_backend", "classic_config"],
        ...members.map((m, i): [string, string] => [`cluster_formation.classic_config.nodes.${i + 1}`, rabbitmqNodeName(m)]),
        // A node cut off from the others' majority stops serving rather than diverging.
        ["cluster_partition_handling", members.length > 2 ? "pause_minority" : "ignore"],
        ["vm_memory_high_watermark.absolute", watermarkBytes(options)],
        ["disk_free_limit.absolute", options.diskFreeLimitMb * MIB],
        ["raft.wal_max_size_bytes", options.walMaxMb * MIB],
        // A replaced or added node gets its share of every quorum queue without an operator.
        ["quorum_queue.continuous_membership_reconciliation.enabled", "true"],
        ["quorum_queue.continuous_membership_reconciliation.target_group_size", queueReplicas(members.length)],
        ["prometheus.tcp.port", options.prometheusPort],
        // Per-queue series (messages, consumers, Raft state): picloud's queues are few.
        ["prometheus.return_per_object_metrics", "true"],
        ["log.console", "true"],
        ["log.console.level", "info"],
        ["log.file", "false"],
    ];
    return [
        "# picloud: RabbitMQ node; rendered, do not edit",
        ...settings.filter(([key]) => server === "rabbitmq4" || !RABBITMQ4_ONLY.has(key)).map(([key, value]) => `${key} = ${value}`),
        "",
    ].join("\n");
}

/** The plugins each node runs: only the Prometheus endpoint (the management UI costs memory a Pi needs). */
export function renderEnabledPlugins(): string {
    return "[rabbitmq_prometheus].\n";
}

/**
 * Erlang's resolver file (ERL_INETRC): every Pi of the stack by name to its address, then the
 * system's own resolver. Node names stay the Pis' names whatever the Pis' hostnames or DNS, and a
 * node that moves to another Pi of the stack is found without the others restarting to learn it.
 */
export function renderInetrc(pis: readonly Pick<PiConfig, "name" | "address">[]): string {
    return [
        "%% picloud: RabbitMQ nodes' names; rendered, do not edit",
        ...pis.map((p) => `{host, {${p.address.split(".").join(",")}}, [${JSON.stringify(p.name)}]}.`),
        "{lookup, [file, native]}.",
        "",
    ].join("\n");
}

/** How the CLI reaches a node: where its programs are (`docker exec -i -u rabbitmq rabbitmq-0`, or a host's own). */
export interface RabbitmqCli {
    readonly rabbitmqctl: readonly string[];
    readonly rabbitmqQueues: readonly string[];
}

/** The CLI inside a node's container, as the rabbitmq user (whose home holds the cookie). */
export function containerCli(container: string): RabbitmqCli {
    const exec = ["docker", "exec", "-i", "-u", "rabbitmq", container];
    return { rabbitmqctl: [...exec, "rabbitmqctl"], rabbitmqQueues: [...exec, "rabbitmq-queues"] };
}

/** The RabbitMQ nodes: host networking (peers and clients see each Pi's address), one per Pi, one at a time. */
export function rabbitmqWorkload(options: RabbitmqConfig, pis: readonly PiConfig[]): Workload {
    const nodes = rabbitmqNodes(options, pis);
    const file = (f: keyof typeof RABBITMQ_FILES) => ({ hostPath: `${RABBITMQ_CONFIG_DIR}/${RABBITMQ_FILES[f].file}`, containerPath: RABBITMQ_FILES[f].inContainer, readOnly: true });
    return {
        name: RABBITMQ_WORKLOAD,
        component: "bus",
        configKey: KEY,
        image: RABBITMQ_IMAGE,
        replicas: nodes,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.amqpPort, host: options.amqpPort, configKey: `${KEY}.amqpPort` },
            { container: options.distPort, host: options.distPort, configKey: `${KEY}.distPort` },
            { container: EPMD_PORT, host: EPMD_PORT, configKey: KEY },
            { container: options.prometheusPort, host: options.prometheusPort, configKey: `${KEY}.prometheusPort` },
        ],
        env: {
            RABBITMQ_USE_LONGNAME: "false",
            RABBITMQ_DIST_PORT: String(options.distPort),
            ERL_INETRC: RABBITMQ_FILES.inetrc.inContainer,
            // Schedulers sleep rather than spin when idle: the node shares its Pi under a CPU limit.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "+sbwt none +sbwtdcpu none +sbwtdio none",
        },
        volumes: [file("conf"), file("plugins"), file("inetrc"), file("cookie")],
        data: { containerPath: DATA_IN_CONTAINER, owner: { uid: RABBITMQ_UID, gid: RABBITMQ_UID } },
        // Its name, and a hash of what a running node reads: a changed setting restarts the nodes, one
        // at a time. Not the peers' names, which only a blank node reads: a member replaced on
        // another Pi leaves the others running (a restart then would cost the queues their majority).
        perReplica: (self, members) => ({
            env: { RABBITMQ_NODENAME: rabbitmqNodeName(self), PICLOUD_FILES_SHA256: contentHash(renderRabbitmqConf(members.map((_, i) => ({ pi: `peer-${i}` })), options) + renderInetrc(pis) + renderEnabledPlugins()) },
        }),
        // A node that replaces one on a lost Pi: the lost one is forgotten first, then the new one joins by peer discovery.
        join: (_self, members, via) => renderRabbitmqJoin({ cli: containerCli(`${RABBITMQ_WORKLOAD}-${via.index}`), members }),
        quorum: { name: "rabbitmq", quorum: majority(nodes) },
        fsyncHeavy: { allowSdCard: options.allowSdCard, allowSdCardKey: `${KEY}.allowSdCard` },
        // RabbitMQ's cheapest check: the node answers its CLI. Each check starts an Erlang VM, so not often.
        healthcheck: { command: ["rabbitmq-diagnostics", "-q", "ping"], intervalSeconds: 30, timeoutSeconds: 20, retries: 3, startPeriodSeconds: 120 },
        metrics: { port: options.prometheusPort, path: "/metrics" },
        logLabels: { tier: "bus", service: "rabbitmq" },
    };
}

/** Every declared user, with its virtual host. */
export function rabbitmqUsers(options: RabbitmqConfig): { vhost: string; user: string }[] {
    return Object.entries(options.vhosts).flatMap(([vhost, v]) => Object.keys(v.users).map((user) => ({ vhost, user })));
}

/** A regular expression that matches `name` alone. */
function exactly(name: string): string {
    return `^${name.replace(/[.\\^$|?*+()[\]{}-]/g, "\\$&")}$`;
}

/**
 * The definitions RabbitMQ imports (`rabbitmqctl import_definitions`): the virtual hosts (quorum
 * their default queue type), each user with its password and full rights on its own virtual host,
 * each declared queue as a quorum queue on min(3, nodes) nodes, and a policy per queue with its
 * limits (policies, unlike a queue's arguments, may change). `passwords` by user.
 */
export function rabbitmqDefinitions(options: RabbitmqConfig, nodes: number, passwords: Readonly<Record<string, string>>): Record<string, unknown[]> {
    const vhosts = Object.entries(options.vhosts);
    const queues = vhosts.flatMap(([vhost, v]) => Object.entries(v.queues).map(([name, q]) => ({ vhost, name, q })));
    return {
        vhosts: vhosts.map(([name]) => ({ name, metadata: { description: "picloud", default_queue_type: "quorum" } })),
        users: rabbitmqUsers(options).map(({ user }) => {
            const password = passwords[user];
            if (password === undefined) throw new Error(`${KEY}.vhosts: no password for user "${user}"`);
            return { name: user, password, tags: "" };
        }),
        permissions: rabbitmqUsers(options).map(({ vhost, user }) => ({ user, vhost, configure: ".*", write: ".*", read: ".*" })),
        queues: queues.map(({ vhost, name }) => ({ name, vhost, durable: true, auto_delete: false, arguments: { "x-queue-type": "quorum", "x-quorum-initial-group-size": queueReplicas(nodes) } })),
        policies: queues.map(({ vhost, name, q }) => ({
            vhost,
            name: `picloud-${name}`,
            pattern: exactly(name),
            "apply-to": "queues",
            priority: 0,
            // A full queue refuses what is published to it (publishers with confirms get a nack) rather than dropping its oldest.
            definition: { "max-length-bytes": q.maxMb * MIB, overflow: "reject-publish", "delivery-limit": q.deliveryLimit },
        })),
    };
}

/** What the definitions step needs. */
export interface DefinitionsStepInput {
    readonly cli: RabbitmqCli;
    readonly options: RabbitmqConfig;
    readonly nodes: number;
    /** Seconds to wait for every node to be in the cluster; default 300 (a new cluster's nodes start one at a time). */
    readonly waitSeconds?: number;
}

/**
 * The definitions step, run on a node's Pi once every node runs, and again whenever its inputs
 * change. Its stdin: the definitions JSON ({@link rabbitmqDefinitions}), passwords in it. It
 * waits until every node is in the cluster (a node that formed a cluster of its own fails the
 * step), imports the definitions from stdin, waits until each declared queue has its members, and
 * removes RabbitMQ's guest user. Queues and users no longer declared are left alone. Idempotent.
 */
export function renderDefinitionsStep(input: DefinitionsStepInput): string {
    const wait = input.waitSeconds ?? 300;
    const ctl = input.cli.rabbitmqctl.map(shellQuote).join(" ");
    const queuesCli = input.cli.rabbitmqQueues.map(shellQuote).join(" ");
    const replicas = queueReplicas(input.nodes);
    const queues = Object.entries(input.options.vhosts).flatMap(([vhost, v]) => Object.keys(v.queues).map((name) => ({ vhost, name })));
    const lines = [
        "#!/usr/bin/env bash",
        "# picloud: the bus's RabbitMQ definitions step (virtual hosts, users, quorum queues, policies)",
        "set -euo pipefail",
        "definitions=$(cat)",
        `ctl() { ${ctl} "$@"; }`,
        `queues() { ${queuesCli} "$@"; }`,
        // await_online_nodes in short rounds: the node the step speaks to may itself still be starting.
        `deadline=$((SECONDS + ${wait}))`,
        `until ctl -q await_online_nodes ${input.nodes} --timeout 10 >/dev/null 2>&1; do`,
        "    if [ \"$SECONDS\" -ge \"$deadline\" ]; then",
        `        echo "picloud: fewer than ${input.nodes} RabbitMQ nodes are in the cluster after ${wait} s; definitions are left as they are" >&2`,
        "        ctl -q cluster_status >&2 || true",
        "        exit 1",
        "    fi",
        "    sleep 2",
        "done",
        `echo "picloud: ${input.nodes} RabbitMQ node(s) in the cluster"`,
        // The definitions on the CLI's stdin, never on a command line.
        "printf '%s' \"$definitions\" | ctl -q import_definitions --format json >/dev/null",
        // Older servers import asynchronously: wait for each queue to have its members.
        "members() { queues -q quorum_status \"$2\" --vhost \"$1\" --formatter json 2>/dev/null | grep -o '\"Node Name\"' | wc -l; }",
        "ensure_queue() {",
        "    local vhost=$1 name=$2 seen=0",
        `    until seen=$(members "$vhost" "$name") && [ "$seen" -ge ${replicas} ]; do`,
        "        if [ \"$SECONDS\" -ge \"$deadline\" ]; then",
        `            echo "picloud: quorum queue $name ($vhost) has $seen of ${replicas} members after ${wait} s" >&2`,
        "            return 1",
        "        fi",
        "        sleep 2",
        "    done",
        '    echo "picloud: ok quorum queue $name ($vhost), $seen members"',
        "}",
        ...queues.map((q) => `ensure_queue ${shellQuote(q.vhost)} ${shellQuote(q.name)}`),
        "if ctl -q list_users --formatter json | grep -q '\"user\":\"guest\"'; then ctl -q delete_user guest >/dev/null; echo \"picloud: removed the guest user\"; fi",
        `echo "picloud: ${Object.keys(input.options.vhosts).length} virtual host(s), ${rabbitmqUsers(input.options).length} user(s), ${queues.length} quorum queue(s) as declared"`,
        "",
    ];
    return lines.join("\n");
}

/**
 * The join step of a node that replaces one on a lost Pi, run on a node that stays before the new
 * one starts: every node the cluster still lists that is not a member any more (and is not
 * running) is forgotten, which also takes it out of the quorum queues. Idempotent.
 */
export function renderRabbitmqJoin(input: { readonly cli: RabbitmqCli; readonly members: readonly Pick<ReplicaIdentity, "pi">[] }): string {
    const ctl = input.cli.rabbitmqctl.map(shellQuote).join(" ");
    return [
        "#!/usr/bin/env bash",
        "# picloud: RabbitMQ's join step (forgets the nodes of lost Pis)",
        "set -euo pipefail",
        `ctl() { ${ctl} "$@"; }`,
        `members=" ${input.members.map(rabbitmqNodeName).join(" ")} "`,
        "status=$(ctl -q cluster_status --formatter json)",
        // The nodes the cluster lists, and those running, from cluster_status's JSON.
        "listed=$(printf '%s' \"$status\" | grep -o '\"disk_nodes\":\\[[^]]*\\]' | grep -o 'rabbit@[^\"]*' || true)",
        "running=$(printf '%s' \"$status\" | grep -o '\"running_nodes\":\\[[^]]*\\]' | grep -o 'rabbit@[^\"]*' || true)",
        "for node in $listed; do",
        '    case "$members" in *" $node "*) continue ;; esac',
        '    if grep -qx "$node" <<<"$running"; then echo "picloud: $node is not a member but still runs; left in the cluster" >&2; continue; fi',
        '    ctl -q forget_cluster_node "$node"',
        '    echo "picloud: forgot $node"',
        "done",
        "",
    ].join("\n");
}

/** RabbitMQ's alerts and dashboard, from its Prometheus plugin. `endpoints` are each node's `host:port`, in node order. */
export function rabbitmqSpec(options: RabbitmqConfig, nodes: number, endpoints: readonly string[]): MonitoringSpec {
    const target = { job: RABBITMQ_JOB, targets: [...endpoints], labels: { tier: "bus" } };
    const j = `job="${RABBITMQ_JOB}"`;
    const replicas = queueReplicas(nodes);
    // Each member of a quorum queue serves its Raft series: counted by queue, they are its members that run.
    const members = `count by (vhost, queue) (rabbitmq_raft_log_commit_index{${j},queue!=""})`;
    const declared = Object.entries(options.vhosts).flatMap(([vhost, v]) => Object.entries(v.queues).map(([queue, q]) => ({ vhost, queue, bytes: q.maxMb * MIB })));
    return {
        component: "rabbitmq",
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            ...(nodes > 1
                ? [
                      {
                          alert: "RabbitmqNodeCutOff",
                          // Links to peers that are up (state 3); a node with none has no series, so it counts 0.
                          expr: `(count by (instance) (erlang_vm_dist_node_state{${j},peer=~"rabbit@.*"} == 3) or count by (instance) (rabbitmq_identity_info{${j}}) * 0) < ${nodes - 1}`,
                          for: "2m",
                          severity: "warning" as const,
                          summary: "RabbitMQ on {{ $labels.instance }} sees {{ $value }} of its ${nodes - 1} peers",
                          description: `The node has lost its Erlang distribution links to some peers: they are down, or the distribution port ${options.distPort} or epmd (${EPMD_PORT}) is blocked between the Pis. A node cut off from the majority pauses itself.`,
                      },
                      {
                          alert: "RabbitmqQuorumQueueWithoutQuorum",
                          expr: `${members} < ${majority(replicas)}`,
                          for: "1m",
                          severity: "critical" as const,
                          summary: "Quorum queue {{ $labels.queue }} ({{ $labels.vhost }}) has {{ $value }} members running: it takes and delivers nothing",
                          description: `A quorum queue on ${replicas} nodes works with ${majority(replicas)} of them; fewer run. Its Pis are down or cut off from each other.`,
                      },
                      {
                          alert: "RabbitmqQuorumQueueMemberDown",
                          expr: `${members} < ${replicas}`,
                          for: "5m",
                          severity: "warning" as const,
                          summary: "Quorum queue {{ $labels.queue }} ({{ $labels.vhost }}) runs on {{ $value }} of its ${replicas} members",
                          description: "The queue still works, but losing one more member stops it. Bring the node back; a node that replaces a lost Pi gets its member within the hour (continuous membership reconciliation).",
                      },
                  ]
                : []),
            {
                alert: "RabbitmqMemoryAlarm",
                expr: `rabbitmq_alarms_memory_used_watermark{${j}} == 1`,
                for: "30s",
                severity: "critical",
                summary: "RabbitMQ on {{ $labels.instance }} is above its memory watermark: every publisher in the cluster is blocked",
                description: `The node uses more than ${options.memoryWatermark} of its ${options.memoryMb} MB. Publishers wait until consumers drain the queues; raise picloud:tiers.bus.rabbitmq.memoryMb, or make consumers keep up.`,
            },
            {
                alert: "RabbitmqDiskAlarm",
                expr: `rabbitmq_alarms_free_disk_space_watermark{${j}} == 1`,
                for: "30s",
                severity: "critical",
                summary: "RabbitMQ on {{ $labels.instance }} has less than ${options.diskFreeLimitMb} MB of disk free: every publisher in the cluster is blocked",
                description: "Free disk space on the node's Pi, or lower the queues' maxMb. Publishers wait until the alarm clears.",
            },
            {
                alert: "RabbitmqMemoryNearWatermark",
                expr: `rabbitmq_process_resident_memory_bytes{${j}} / (rabbitmq_resident_memory_limit_bytes{${j}} > 0) > 0.85`,
                for: "10m",
                severity: "warning",
                summary: "RabbitMQ on {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its memory watermark",
                description: "At the watermark every publisher is blocked. Queues are growing faster than they are consumed, or the node needs more memory (picloud:tiers.bus.rabbitmq.memoryMb).",
            },
            {
                alert: "RabbitmqDiskNearLimit",
                expr: `rabbitmq_disk_space_available_bytes{${j}} < 2 * rabbitmq_disk_space_available_limit_bytes{${j}}`,
                for: "10m",
                severity: "warning",
                summary: "RabbitMQ on {{ $labels.instance }} has less than twice its disk limit free",
                description: "At the limit every publisher is blocked. Free disk space on the Pi, or lower the queues' maxMb.",
            },
            {
                alert: "RabbitmqFileDescriptorsNearLimit",
                expr: `rabbitmq_process_open_fds{${j}} / (rabbitmq_process_max_fds{${j}} > 0) > 0.9`,
                for: "5m",
                severity: "warning",
                summary: "RabbitMQ on {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its file descriptors",
                description: "Each connection takes one; at the limit new connections are refused. An app is leaking connections, or opens one per message.",
            },
            {
                alert: "RabbitmqUnroutableMessages",
                expr: `sum by (instance) (increase(rabbitmq_global_messages_unroutable_dropped_total{${j}}[5m]) + increase(rabbitmq_global_messages_unroutable_returned_total{${j}}[5m])) > 0`,
                severity: "warning",
                summary: "RabbitMQ on {{ $labels.instance }} routed {{ $value }} messages to no queue in 5 minutes",
                description: "Messages were published to an exchange with no binding for their routing key: dropped, or returned to publishers that asked. An app names a queue or exchange that is not declared.",
            },
            {
                alert: "RabbitmqQueueNotConsumed",
                expr: `rabbitmq_queue_messages_ready{${j}} > 0 and rabbitmq_queue_consumers{${j}} == 0`,
                for: "15m",
                severity: "warning",
                summary: "Queue {{ $labels.queue }} ({{ $labels.vhost }}) holds {{ $value }} messages and has no consumer",
                description: "The app that reads it is down or not connected. Messages wait until the queue's maxMb, then publishers are refused.",
            },
            ...(declared.length > 0
                ? [
                      {
                          alert: "RabbitmqQueueNearFull",
                          expr: `(${declared.map((d) => `rabbitmq_queue_messages_bytes{${j},vhost="${d.vhost}",queue="${d.queue}"} / ${d.bytes}`).join(" or ")}) > 0.85`,
                          for: "5m",
                          severity: "warning" as const,
                          summary: "Queue {{ $labels.queue }} ({{ $labels.vhost }}) is {{ $value | humanizePercentage }} full",
                          description: "Once full it refuses what is published to it (reject-publish). Its consumers do not keep up; raise its maxMb or add consumers.",
                      },
                  ]
                : []),
        ],
        dashboard: {
            uid: "picloud-bus-rabbitmq",
            title: "picloud / bus / RabbitMQ",
            panels: [
                { title: "Nodes up", expr: `sum(up{${j}})`, kind: "stat" },
                { title: "Alarms", expr: `sum(rabbitmq_alarms_memory_used_watermark{${j}}) + sum(rabbitmq_alarms_free_disk_space_watermark{${j}})`, kind: "stat" },
                { title: "Messages published", expr: `sum by (instance) (rate(rabbitmq_global_messages_received_total{${j}}[5m]))`, unit: "ops" },
                { title: "Messages delivered", expr: `sum by (instance) (rate(rabbitmq_global_messages_delivered_total{${j}}[5m]))`, unit: "ops" },
                { title: "Messages ready, by queue", expr: `max by (vhost, queue) (rabbitmq_queue_messages_ready{${j}})` },
                { title: "Quorum queue members running", expr: members },
                { title: "Memory used of the watermark", expr: `rabbitmq_process_resident_memory_bytes{${j}} / (rabbitmq_resident_memory_limit_bytes{${j}} > 0)`, unit: "percentunit" },
                { title: "Connections", expr: `rabbitmq_connections{${j}}` },
                { title: "Raft commit latency", expr: `max by (instance) (rabbitmq_raft_entry_commit_latency_seconds{${j}})`, unit: "s" },
            ],
        },
        logLabels: { tier: "bus", service: "rabbitmq" },
    };
}

/** Clients from every other Pi and the operator; Erlang distribution and epmd between the nodes only. */
export function rabbitmqFlows(options: RabbitmqConfig, members: readonly Pick<ReplicaIdentity, "pi">[], pis: readonly PiConfig[]): Flow[] {
    return members.flatMap((to) => [
        ...clientFlows(to.pi, options.amqpPort, "rabbitmq clients", `${KEY}.amqpPort`, pis),
        ...members
            .filter((m) => m.pi !== to.pi)
            .flatMap((m): Flow[] => [
                { from: { pi: m.pi }, to: to.pi, protocol: "tcp", port: options.distPort, purpose: `rabbitmq distribution from ${m.pi}`, declaredBy: `${KEY}.distPort` },
                { from: { pi: m.pi }, to: to.pi, protocol: "tcp", port: EPMD_PORT, purpose: `rabbitmq epmd from ${m.pi}`, declaredBy: KEY },
            ]),
    ]);
}

/** What an app that names a RabbitMQ user gets: every node's address, its virtual host and user, and its password as a secret. */
export function rabbitmqEnvironment(members: readonly Pick<ReplicaIdentity, "address">[], options: RabbitmqConfig, user: string, password: ClientEnvironment["secretEnv"][string]): ClientEnvironment {
    const vhost = rabbitmqUsers(options).find((u) => u.user === user)?.vhost;
    if (vhost === undefined) throw new Error(`${KEY}.vhosts: no user "${user}" is declared (users: ${rabbitmqUsers(options).map((u) => u.user).join(", ") || "none"})`);
    return {
        env: { RABBITMQ_ADDRESSES: members.map((m) => `${m.address}:${options.amqpPort}`).join(","), RABBITMQ_VHOST: vhost, RABBITMQ_USER: user },
        secretEnv: { RABBITMQ_PASSWORD: password },
    };
}
