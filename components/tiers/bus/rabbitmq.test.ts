import { describe, expect, it } from "vitest";
import { firedAlert, promtoolTestRules } from "../../../test/support/promtool";
import { shellcheck } from "../../../test/support/scripts";
import { type AlertRule, monitoringGaps } from "../../monitoring/contract";
import { rabbitmqSchema } from "./config";
import {
    RABBITMQ4_ONLY,
    RABBITMQ_JOB,
    containerCli,
    queueReplicas,
    rabbitmqDefinitions,
    rabbitmqEnvironment,
    rabbitmqFlows,
    rabbitmqNodes,
    rabbitmqSpec,
    rabbitmqWorkload,
    renderDefinitionsStep,
    renderInetrc,
    renderRabbitmqConf,
    renderRabbitmqJoin,
    watermarkBytes,
} from "./rabbitmq";

const options = rabbitmqSchema.parse({ vhosts: { shop: { users: { orders: {}, billing: {} }, queues: { orders: {}, "orders.dead": { maxMb: 16, deliveryLimit: 5 } } }, audit: { users: { auditor: {} } } } });
const pi = (name: string) => ({ name, address: "10.0.0.1", hostKey: "k", model: "pi4" as const, memoryMb: 4096, storage: "ssd", labels: {}, user: "pi" }) as never;
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));
const MIB = 1024 * 1024;

describe("RabbitMQ's nodes, rabbitmq.conf and definitions", () => {
    it("runs three nodes where there are three Pis or more, else one, with quorum queues on min(3, nodes)", () => {
        expect([rabbitmqNodes(options, [pi("a"), pi("b")]), rabbitmqNodes(options, [pi("a"), pi("b"), pi("c"), pi("d")])]).toEqual([1, 3]);
        expect([1, 3, 5].map(queueReplicas)).toEqual([1, 3, 3]);
        expect(() => rabbitmqSchema.parse({ nodes: 4 })).toThrow(/1, 3 or 5/);
        expect(() => rabbitmqSchema.parse({ vhosts: { shop: { queues: { "amq.x": {} } } } })).toThrow(/not starting with amq\./);
    });

    it("sizes the WAL and the memory watermark for a Pi, and lists every node as a peer", () => {
        const conf = renderRabbitmqConf(members, options);
        expect(conf).toContain(`raft.wal_max_size_bytes = ${64 * MIB}`);
        expect(watermarkBytes(options)).toBe(409 * MIB);
        expect(conf).toContain(`vm_memory_high_watermark.absolute = ${409 * MIB}`);
        expect(conf).toContain(`disk_free_limit.absolute = ${1024 * MIB}`);
        expect(conf).toContain("cluster_formation.classic_config.nodes.3 = rabbit@p2");
        expect(conf).toContain("cluster_partition_handling = pause_minority");
        expect(conf).toContain("quorum_queue.continuous_membership_reconciliation.target_group_size = 3");
        expect(conf).toContain("prometheus.tcp.port = 15692");
        // Settings RabbitMQ 3.10 refuses are left out for it, and only those.
        const old = renderRabbitmqConf(members, options, "rabbitmq3.10");
        expect(conf.split("\n").filter((l) => !old.includes(l)).map((l) => l.split(" = ")[0])).toEqual([...RABBITMQ4_ONLY]);
        // Two nodes cannot have a majority of one side: no pausing.
        expect(renderRabbitmqConf(members.slice(0, 2), options)).toContain("cluster_partition_handling = ignore");
    });

    it("names each node after its Pi, resolved by the rendered Erlang resolver file", () => {
        const stackPis = members.map((m) => ({ name: m.pi, address: m.address }));
        expect(renderInetrc(stackPis)).toContain('{host, {10,0,0,12}, ["p1"]}.');
        expect(renderInetrc(stackPis).trim().split("\n").at(-1)).toBe("{lookup, [file, native]}.");
        const w = rabbitmqWorkload(options, [pi("a"), pi("b"), pi("c")]);
        expect(w.perReplica!(members[1], members).env).toMatchObject({ RABBITMQ_NODENAME: "rabbit@p1" });
        expect(w.env).toMatchObject({ RABBITMQ_USE_LONGNAME: "false", RABBITMQ_DIST_PORT: "25672", ERL_INETRC: "/etc/rabbitmq/inetrc" });
        // A changed setting restarts the node (its hash is in the environment); a peer moved to another Pi does not.
        const hash = (o: object, peers = members) => rabbitmqWorkload(rabbitmqSchema.parse(o), [pi("a")]).perReplica!(members[0], peers).env!.PICLOUD_FILES_SHA256;
        expect(hash({ walMaxMb: 32 })).not.toBe(hash({}));
        expect(hash({}, [members[0], members[1], { index: 2, pi: "p9", address: "10.0.0.19" }])).toBe(hash({}));
        expect(hash({}, members.slice(0, 1))).not.toBe(hash({}));
    });

    it("pins the image by digest, keeps the cookie a file only the rabbitmq user reads, and takes SSD Pis unless SD cards are allowed", () => {
        const w = rabbitmqWorkload(options, [pi("a")]);
        expect(w.image).toMatch(/^rabbitmq:4\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
        expect(w.volumes).toContainEqual({ hostPath: "/srv/picloud/bus/rabbitmq/erlang.cookie", containerPath: "/var/lib/rabbitmq/.erlang.cookie", readOnly: true });
        expect(w.data).toEqual({ containerPath: "/var/lib/rabbitmq", owner: { uid: 999, gid: 999 } });
        expect(JSON.stringify(w)).not.toMatch(/cookie"?:\s*"[A-Za-z0-9]{20,}/);
        expect([w.fsyncHeavy!.allowSdCard, rabbitmqWorkload(rabbitmqSchema.parse({ allowSdCard: true }), [pi("a")]).fsyncHeavy!.allowSdCard]).toEqual([false, true]);
    });

    it("declares each queue a quorum queue on min(3, nodes) nodes with its limits as a policy, and each user on its own virtual host", () => {
        const defs = rabbitmqDefinitions(options, 3, { orders: "p1", billing: "p2", auditor: "p3" });
        expect(defs.vhosts).toEqual([
            { name: "shop", metadata: { description: "picloud", default_queue_type: "quorum" } },
            { name: "audit", metadata: { description: "picloud", default_queue_type: "quorum" } },
        ]);
        expect(defs.users).toContainEqual({ name: "auditor", password: "p3", tags: "" });
        expect(defs.permissions).toContainEqual({ user: "auditor", vhost: "audit", configure: ".*", write: ".*", read: ".*" });
        expect(defs.queues).toContainEqual({ name: "orders", vhost: "shop", durable: true, auto_delete: false, arguments: { "x-queue-type": "quorum", "x-quorum-initial-group-size": 3 } });
        expect(defs.policies).toContainEqual({
            vhost: "shop",
            name: "picloud-orders.dead",
            pattern: "^orders\\.dead$",
            "apply-to": "queues",
            priority: 0,
            definition: { "max-length-bytes": 16 * MIB, overflow: "reject-publish", "delivery-limit": 5 },
        });
        expect(() => rabbitmqDefinitions(options, 3, { orders: "p1" })).toThrow(/no password for user "billing"/);
    });

    it("imports the definitions from stdin, waits for every node and each queue's members, and forgets only departed nodes; shellcheck passes", () => {
        const step = renderDefinitionsStep({ cli: containerCli("rabbitmq-0"), options, nodes: 3 });
        expect(shellcheck(step).status).toBe(0);
        expect(step).toContain("'docker' 'exec' '-i' '-u' 'rabbitmq' 'rabbitmq-0' 'rabbitmqctl'");
        expect(step).toContain("ctl -q await_online_nodes 3 --timeout 10");
        expect(step).toContain("ensure_queue 'shop' 'orders.dead'");
        expect(step).not.toContain("password");
        const join = renderRabbitmqJoin({ cli: containerCli("rabbitmq-1"), members });
        expect(shellcheck(join).status).toBe(0);
        expect(join).toContain('members=" rabbit@p0 rabbit@p1 rabbit@p2 "');
    });

    it("opens distribution and epmd between the nodes only, AMQP from every other Pi and the operator", () => {
        const pis = ["p0", "p1", "p2", "p3"].map((name) => ({ name }) as never);
        const flows = rabbitmqFlows(options, members, pis);
        expect(flows.filter((f) => f.port === 25672 && f.to === "p0").map((f) => f.from)).toEqual([{ pi: "p1" }, { pi: "p2" }]);
        expect(flows.filter((f) => f.port === 4369 && f.to === "p0").map((f) => f.from)).toEqual([{ pi: "p1" }, { pi: "p2" }]);
        expect(flows.filter((f) => f.port === 5672 && f.to === "p0").map((f) => f.from)).toEqual([{ pi: "p1" }, { pi: "p2" }, { pi: "p3" }, { zone: "mgmt" }]);
        expect(flows.every((f) => f.declaredBy.startsWith("picloud:tiers.bus.rabbitmq"))).toBe(true);
    });

    it("gives an app every node's address, its virtual host and user, the password only as a secret", () => {
        expect(rabbitmqEnvironment(members, options, "auditor", "s3cret")).toEqual({
            env: { RABBITMQ_ADDRESSES: "10.0.0.11:5672,10.0.0.12:5672,10.0.0.13:5672", RABBITMQ_VHOST: "audit", RABBITMQ_USER: "auditor" },
            secretEnv: { RABBITMQ_PASSWORD: "s3cret" },
        });
        expect(() => rabbitmqEnvironment(members, options, "nobody", "x")).toThrow(/no user "nobody"/);
    });
});

const endpoints = members.map((m) => `${m.address}:15692`);
const spec = rabbitmqSpec(options, 3, endpoints);
const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
const labelsOf = (i: number) => `job="${RABBITMQ_JOB}",instance="${endpoints[i]}",tier="bus"`;
const series = (metric: string, i: number, extra = "") => `${metric}{${labelsOf(i)}${extra}}`;
const only = (r: AlertRule, at: string, alerts: object[]) => ({ alertname: r.alert, eval_time: at, exp_alerts: alerts });
const fired = (r: AlertRule, labels: Record<string, string> = {}, value = "") => firedAlert(r, "rabbitmq", labels, value);
const promtool = (tests: object[]) => promtoolTestRules([spec], tests);
const instance = (i: number) => ({ job: RABBITMQ_JOB, instance: endpoints[i], tier: "bus" });

describe("RabbitMQ's alerts, run by promtool test rules", () => {
    it("is complete monitoring", () => {
        expect(monitoringGaps(spec)).toEqual([]);
        expect(monitoringGaps(rabbitmqSpec(rabbitmqSchema.parse({}), 1, [endpoints[0]]))).toEqual([]);
    });

    it("RabbitmqQuorumQueueWithoutQuorum fires when fewer than a majority of a queue's members run; MemberDown when one is missing", () => {
        const without = rule("RabbitmqQuorumQueueWithoutQuorum");
        const down = rule("RabbitmqQuorumQueueMemberDown");
        const raft = (i: number, queue: string) => series("rabbitmq_raft_log_commit_index", i, `,vhost="shop",queue="${queue}"`);
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    // orders loses two of its three members; orders.dead loses one.
                    { series: raft(0, "orders"), values: "1x20" },
                    { series: raft(1, "orders"), values: "1x2 stale" },
                    { series: raft(2, "orders"), values: "1x2 stale" },
                    { series: raft(0, "orders.dead"), values: "1x20" },
                    { series: raft(1, "orders.dead"), values: "1x20" },
                    { series: raft(2, "orders.dead"), values: "1x2 stale" },
                ],
                alert_rule_test: [
                    only(without, "2m", []),
                    only(without, "10m", [fired(without, { vhost: "shop", queue: "orders" }, "1")]),
                    only(down, "10m", [fired(down, { vhost: "shop", queue: "orders" }, "1"), fired(down, { vhost: "shop", queue: "orders.dead" }, "2")]),
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("RabbitmqNodeCutOff fires for a node with fewer links up than peers, also for one with none", () => {
        const r = rule("RabbitmqNodeCutOff");
        const link = (i: number, peer: number, state: number | string) => ({ series: series("erlang_vm_dist_node_state", i, `,peer="rabbit@p${peer}"`), values: `${state}x20` });
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    link(0, 1, 3),
                    link(0, 2, 3),
                    // The CLI's own link is not a peer.
                    { series: series("erlang_vm_dist_node_state", 0, ',peer="rabbitmqcli-1-rabbit@p0"'), values: "3x20" },
                    link(1, 0, 3),
                    link(1, 2, 1),
                    { series: series("rabbitmq_identity_info", 0), values: "1x20" },
                    { series: series("rabbitmq_identity_info", 1), values: "1x20" },
                    { series: series("rabbitmq_identity_info", 2), values: "1x20" },
                ],
                alert_rule_test: [only(r, "5m", [fired(r, { instance: endpoints[1] }, "1"), fired(r, { instance: endpoints[2] }, "0")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("the memory and disk alarms fire within a minute of RabbitMQ raising them, the near-watermark warning on its threshold", () => {
        const memory = rule("RabbitmqMemoryAlarm");
        const disk = rule("RabbitmqDiskAlarm");
        const near = rule("RabbitmqMemoryNearWatermark");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: series("rabbitmq_alarms_memory_used_watermark", 0), values: "0x4 1x60" },
                    { series: series("rabbitmq_alarms_free_disk_space_watermark", 1), values: "0x4 1x60" },
                    { series: series("rabbitmq_alarms_memory_used_watermark", 1), values: "0x64" },
                    { series: series("rabbitmq_process_resident_memory_bytes", 2), values: `${380 * MIB}x64` },
                    { series: series("rabbitmq_resident_memory_limit_bytes", 2), values: `${400 * MIB}x64` },
                    { series: series("rabbitmq_process_resident_memory_bytes", 0), values: `${200 * MIB}x64` },
                    { series: series("rabbitmq_resident_memory_limit_bytes", 0), values: `${400 * MIB}x64` },
                ],
                alert_rule_test: [
                    only(memory, "1m", []),
                    only(memory, "2m", [fired(memory, instance(0))]),
                    only(disk, "2m", [fired(disk, instance(1))]),
                    only(near, "12m", [fired(near, instance(2), "95%")]),
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("the disk, file descriptor, unroutable, unconsumed and near-full alerts fire on their thresholds", () => {
        const rules = ["RabbitmqDiskNearLimit", "RabbitmqFileDescriptorsNearLimit", "RabbitmqUnroutableMessages", "RabbitmqQueueNotConsumed", "RabbitmqQueueNearFull"].map(rule);
        const [diskNear, fds, unroutable, unconsumed, full] = rules;
        const queue = (metric: string, q: string, values: string) => ({ series: series(metric, 0, `,vhost="shop",queue="${q}"`), values });
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    { series: series("rabbitmq_disk_space_available_bytes", 1), values: `${1500 * MIB}x30` },
                    { series: series("rabbitmq_disk_space_available_limit_bytes", 1), values: `${1024 * MIB}x30` },
                    { series: series("rabbitmq_process_open_fds", 2), values: "950x30" },
                    { series: series("rabbitmq_process_max_fds", 2), values: "1000x30" },
                    { series: series("rabbitmq_global_messages_unroutable_dropped_total", 0), values: "0x3 4x26" },
                    { series: series("rabbitmq_global_messages_unroutable_returned_total", 0), values: "0x30" },
                    queue("rabbitmq_queue_messages_ready", "orders", "7x30"),
                    queue("rabbitmq_queue_consumers", "orders", "0x30"),
                    queue("rabbitmq_queue_messages_ready", "orders.dead", "7x30"),
                    queue("rabbitmq_queue_consumers", "orders.dead", "1x30"),
                    // orders.dead may hold 16 MB: 15 MB is near full; orders (256 MB) is not.
                    queue("rabbitmq_queue_messages_bytes", "orders.dead", `${15 * MIB}x30`),
                    queue("rabbitmq_queue_messages_bytes", "orders", `${15 * MIB}x30`),
                ],
                alert_rule_test: [
                    only(diskNear, "15m", [fired(diskNear, instance(1))]),
                    only(fds, "10m", [fired(fds, instance(2), "95%")]),
                    only(unroutable, "6m", [fired(unroutable, { instance: endpoints[0] }, "4")]),
                    only(unconsumed, "20m", [fired(unconsumed, { ...instance(0), vhost: "shop", queue: "orders" }, "7")]),
                    only(full, "10m", [fired(full, { ...instance(0), vhost: "shop", queue: "orders.dead" }, "93.75%")]),
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });
});
