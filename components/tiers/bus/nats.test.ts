import { describe, expect, it } from "vitest";
import { firedAlert, promtoolTestRules } from "../../../test/support/promtool";
import { shellcheck } from "../../../test/support/scripts";
import { type AlertRule, monitoringGaps } from "../../monitoring/contract";
import { busSchema } from "./config";
import { NATS_JOB, busEnvironment, busFlows, natsExporterWorkload, busSpec, goMemLimitMb, maxMemoryStoreMb, natsNodes, natsWorkload, passwordVariable, renderNatsConf, renderStreamsStep, streamConfig, streamReplicas } from "./nats";

const options = busSchema.parse({ accounts: { shop: { users: { orders: {}, "billing-svc": {} }, streams: { ORDERS: { subjects: ["orders.>"] } } }, audit: { users: { auditor: {} } } } });
const pi = (name: string) => ({ name, address: "10.0.0.1", hostKey: "k", model: "pi4" as const, memoryMb: 4096, storage: "ssd", labels: {}, user: "pi" }) as never;
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));

describe("NATS's nodes, nats.conf and streams", () => {
    it("runs three nodes where there are three Pis or more, else one, with streams on min(3, nodes)", () => {
        expect([natsNodes(options, [pi("a"), pi("b")]), natsNodes(options, [pi("a"), pi("b"), pi("c"), pi("d")])]).toEqual([1, 3]);
        expect(natsNodes(busSchema.parse({ nodes: 5 }), [pi("a")])).toBe(5);
        expect([1, 3, 5].map(streamReplicas)).toEqual([1, 3, 3]);
        expect(() => busSchema.parse({ nodes: 2 })).toThrow(/1, 3 or 5/);
    });

    it("sizes GOMEMLIMIT and the in-memory store from the memory limit", () => {
        expect([goMemLimitMb(options), maxMemoryStoreMb(options)]).toEqual([409, 128]);
        expect(natsWorkload(options, [pi("a"), pi("b"), pi("c")]).env).toEqual({ GOMEMLIMIT: "409MiB" });
    });

    it("fsyncs before every acknowledgement by default, names the passwords' variables and never their values, and routes to the other nodes", () => {
        const conf = renderNatsConf(members[1], members, options);
        expect(conf).toContain("    sync_interval: always");
        expect(conf).toContain("    max_memory_store: 128MB");
        expect(conf).toContain(`password: $${passwordVariable("shop", "orders")}`);
        expect(conf).toContain(`password: $PICLOUD_NATS_SHOP_BILLING_SVC`);
        expect(conf).toContain('routes: ["nats-route://10.0.0.11:6222", "nats-route://10.0.0.13:6222"]');
        expect(conf).toContain("system_account: SYS");
        expect(renderNatsConf(members[0], members, busSchema.parse({ syncInterval: "2m" }))).toContain('sync_interval: "2m"');
        // One node: no cluster block.
        expect(renderNatsConf(members[0], [members[0]], options)).not.toContain("cluster {");
    });

    it("takes SSD Pis only for nodes that fsync every message, unless SD cards are allowed or the interval relaxed", () => {
        const heavy = (o: object) => natsWorkload(busSchema.parse(o), [pi("a")]).fsyncHeavy!.allowSdCard;
        expect([heavy({}), heavy({ allowSdCard: true }), heavy({ syncInterval: "2m" })]).toEqual([false, true, true]);
    });

    it("creates each declared stream, updating it when its config changed; shellcheck passes", () => {
        const script = renderStreamsStep({ address: "10.0.0.11", options, nodes: 3 });
        expect(shellcheck(script).status).toBe(0);
        expect(script).toContain(`ensure 'shop' 'ORDERS' '${JSON.stringify(streamConfig("ORDERS", options.accounts.shop.streams.ORDERS, 3))}'`);
        expect(streamConfig("ORDERS", options.accounts.shop.streams.ORDERS, 3)).toMatchObject({ num_replicas: 3, storage: "file", max_age: 168 * 3600 * 1e9, max_bytes: 1024 * 1024 * 1024 });
        expect(script).not.toContain("audit");
    });

    it("pins the server's image by digest and builds the exporter from its module on a pinned Go image", () => {
        expect(natsWorkload(options, [pi("a")]).image).toMatch(/^nats:2\.\d+\.\d+-alpine@sha256:[0-9a-f]{64}$/);
        const exporter = natsExporterWorkload(options, [pi("a")], [members[0]]);
        expect(exporter.build!.dockerfile).toMatch(/^FROM golang:[0-9.]+-alpine@sha256:[0-9a-f]{64} AS build$/m);
        expect(exporter.build!.dockerfile).toContain("go install -trimpath github.com/nats-io/prometheus-nats-exporter@v");
        expect(exporter.perReplica!(members[0], members).command).toEqual(["-port=7777", "-varz", "-routez", "-jsz=all", "-healthz", "http://10.0.0.11:8222"]);
    });

    it("opens routes between the nodes only, and clients from every other Pi and the operator", () => {
        const pis = ["p0", "p1", "p2", "p3"].map((name) => ({ name }) as never);
        const flows = busFlows(options, members.slice(0, 3), pis);
        const routes = flows.filter((f) => f.port === 6222 && f.to === "p0").map((f) => f.from);
        expect(routes).toEqual([{ pi: "p1" }, { pi: "p2" }]);
        expect(flows.filter((f) => f.port === 4222 && f.to === "p0").map((f) => f.from)).toEqual([{ pi: "p1" }, { pi: "p2" }, { pi: "p3" }, { zone: "mgmt" }]);
        expect(flows.every((f) => f.declaredBy.startsWith("picloud:tiers.bus."))).toBe(true);
    });

    it("gives an app every node's URL and its user, the password only as a secret", () => {
        expect(busEnvironment(members, options, "orders", "s3cret")).toEqual({ env: { NATS_URL: "nats://10.0.0.11:4222,nats://10.0.0.12:4222,nats://10.0.0.13:4222", NATS_USER: "orders" }, secretEnv: { NATS_PASSWORD: "s3cret" } });
    });
});

const spec = busSpec(options, 3, members.map((m) => `${m.address}:7777`));
const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
const series = (metric: string, i: number, extra = "") => `${metric}{job="${NATS_JOB}",instance="${members[i].address}:7777",tier="bus"${extra}}`;
const only = (r: AlertRule, at: string, alerts: object[]) => ({ alertname: r.alert, eval_time: at, exp_alerts: alerts });
const fired = (r: AlertRule, labels: Record<string, string> = {}, value = "") => firedAlert(r, "bus", labels, value);
const promtool = (tests: object[]) => promtoolTestRules([spec], tests);
const instance = (i: number) => ({ job: NATS_JOB, instance: `${members[i].address}:7777`, tier: "bus" });

describe("the bus's alerts, run by promtool test rules", () => {
    it("is complete monitoring", () => {
        expect(monitoringGaps(spec)).toEqual([]);
        expect(monitoringGaps(busSpec(options, 1, ["10.0.0.11:7777"]))).toEqual([]);
    });

    it("NatsServerDown fires once a server's health says not ok (unreachable), not on one that is", () => {
        const r = rule("NatsServerDown");
        const health = (i: number, value: string) => series("gnatsd_healthz_status_value", i, `,value="${value}"`);
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: health(0, "ok"), values: "1x4 stale" },
                    { series: health(0, "unreachable"), values: "_x4 0x16" },
                    { series: health(1, "ok"), values: "1x20" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "3m", [fired(r, { ...instance(0), value: "unreachable" })])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("NatsNoMetaLeader fires after a minute without a meta leader, not while one is elected", () => {
        const r = rule("NatsNoMetaLeader");
        const streams = (i: number, leader: boolean) => series("jetstream_server_total_streams", i, `,is_meta_leader="${leader}"`);
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: streams(0, true), values: "1x4 stale" },
                    { series: streams(1, false), values: "1x6 stale" },
                    { series: streams(1, true), values: "_x6 1x18" },
                ],
                alert_rule_test: [only(r, "5m", [])],
            },
            {
                interval: "15s",
                input_series: [
                    { series: streams(0, true), values: "1x4 stale" },
                    { series: streams(1, false), values: "1x24" },
                ],
                alert_rule_test: [only(r, "1m30s", []), only(r, "4m", [fired(r)])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("NatsStreamWithoutQuorum fires once no node leads a stream, not while one does", () => {
        const r = rule("NatsStreamWithoutQuorum");
        const msgs = (i: number, stream: string, leader: boolean) => series("jetstream_stream_total_messages", i, `,stream_name="${stream}",account="shop",is_stream_leader="${leader}"`);
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    // ORDERS loses its leader and elects none; EVENTS moves its leader from node 0 to node 1.
                    { series: msgs(0, "ORDERS", true), values: "10x4 stale" },
                    { series: msgs(1, "ORDERS", false), values: "10x24" },
                    { series: msgs(0, "EVENTS", true), values: "5x4 stale" },
                    { series: msgs(1, "EVENTS", false), values: "5x6 stale" },
                    { series: msgs(1, "EVENTS", true), values: "_x6 5x18" },
                ],
                alert_rule_test: [only(r, "4m", [fired(r, { stream_name: "ORDERS", account: "shop" })])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("NatsSlowConsumers and the JetStream storage alert fire on their thresholds", () => {
        const slow = rule("NatsSlowConsumers");
        const storage = rule("NatsJetStreamStorageNearLimit");
        const gb = 1024 ** 3;
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    { series: series("gnatsd_varz_slow_consumers", 0), values: "0x3 2x10" },
                    { series: series("gnatsd_varz_jetstream_stats_storage", 1), values: `${9 * gb}x20` },
                    { series: series("gnatsd_varz_jetstream_config_max_storage", 1), values: `${10 * gb}x20` },
                    { series: series("gnatsd_varz_jetstream_stats_storage", 2), values: `${5 * gb}x20` },
                    { series: series("gnatsd_varz_jetstream_config_max_storage", 2), values: `${10 * gb}x20` },
                ],
                alert_rule_test: [only(slow, "5m", [fired(slow, instance(0), "2")]), only(storage, "15m", [fired(storage, instance(1), "90%")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });
});
