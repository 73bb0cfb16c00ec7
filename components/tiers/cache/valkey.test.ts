import { describe, expect, it } from "vitest";
import { firedAlert, promtoolTestRules } from "../../../test/support/promtool";
import { shellcheck } from "../../../test/support/scripts";
import { type AlertRule, monitoringGaps } from "../../monitoring/contract";
import { cacheSchema } from "./config";
import {
    MASTER_NAME,
    SENTINEL_JOB,
    VALKEY_JOB,
    VALKEY_ONLY,
    cacheEnvironment,
    cacheFlows,
    cacheNodes,
    cacheSpec,
    maxMemoryMb,
    minReplicasToWrite,
    renderSentinelStart,
    renderValkeyConf,
    renderValkeyHandOff,
    renderValkeyStart,
    sentinelCount,
    sentinelId,
    sentinelQuorum,
    valkeyWorkload,
} from "./valkey";

const options = cacheSchema.parse({});
const pi = (name: string) => ({ name, address: "10.0.0.1", hostKey: "k", model: "pi4" as const, memoryMb: 4096, storage: "sd", labels: {}, user: "pi" }) as never;
const nodes = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));

describe("Valkey's nodes and Sentinels", () => {
    it("runs three nodes and three Sentinels at quorum two, one of each on a one-Pi stack", () => {
        expect(cacheNodes(options, [pi("a"), pi("b"), pi("c"), pi("d")])).toBe(3);
        expect(cacheNodes(options, [pi("a")])).toBe(1);
        expect(cacheNodes(cacheSchema.parse({ nodes: 2 }), [pi("a"), pi("b"), pi("c")])).toBe(2);
        expect([sentinelCount([pi("a")]), sentinelCount([pi("a"), pi("b"), pi("c"), pi("d"), pi("e")])]).toEqual([1, 3]);
        expect([1, 2, 3].map(sentinelQuorum)).toEqual([1, 2, 2]);
    });

    it("sizes maxmemory under the memory limit, with more headroom when a fork writes snapshots", () => {
        expect(maxMemoryMb(options)).toBe(192);
        expect(maxMemoryMb(cacheSchema.parse({ memoryMb: 1024, persistence: "aof" }))).toBe(512);
        expect(renderValkeyConf(nodes[0], 3, cacheSchema.parse({ memoryMb: 512, evictionPolicy: "noeviction" }))).toMatch(/^maxmemory 384mb\nmaxmemory-policy noeviction$/m);
    });

    it("refuses writes on a primary cut off from every replica only where a replica down leaves another", () => {
        expect([1, 2, 3, 5].map(minReplicasToWrite)).toEqual([0, 0, 1, 1]);
    });

    it("renders no password and no primary into a node's file: the start script brings both", () => {
        const conf = renderValkeyConf(nodes[1], 3, options);
        expect(conf).toContain("protected-mode yes");
        expect(conf).toContain("replica-announce-ip 10.0.0.12");
        expect(conf).not.toMatch(/requirepass|masterauth|replicaof/);
        expect(conf).toMatch(/^save ""\nappendonly no$/m);
        expect(renderValkeyConf(nodes[1], 3, cacheSchema.parse({ persistence: "aof" }))).toMatch(/^appendonly yes\nappendfsync everysec$/m);
    });

    it("leaves Valkey-only settings out for the Redis 7 stand-in, and only those", () => {
        const valkey = renderValkeyConf(nodes[0], 3, options).split("\n");
        const redis = renderValkeyConf(nodes[0], 3, options, { server: "redis7" }).split("\n");
        const dropped = valkey.filter((l) => !redis.includes(l)).map((l) => l.split(" ")[0]);
        expect(new Set(dropped)).toEqual(VALKEY_ONLY);
        expect(renderValkeyConf(nodes[0], 3, cacheSchema.parse({ dualChannelReplication: false }))).toContain("dual-channel-replication-enabled no");
    });

    it("hands a node's password to the server on stdin and asks the Sentinels for the primary; shellcheck passes", () => {
        const sentinels = nodes;
        for (const persistence of ["none", "aof"] as const) {
            const script = renderValkeyStart({ self: nodes[1], nodes, sentinels, options: cacheSchema.parse({ persistence }), configFile: "/etc/picloud/valkey.conf" });
            expect(shellcheck(script, "sh").status).toBe(0);
            expect(script).toContain("exec valkey-server '/etc/picloud/valkey.conf' - <<EOF\nrequirepass $VALKEY_PASSWORD\nmasterauth $VALKEY_PASSWORD\n$role\nEOF");
            expect(script).toContain("SENTINEL get-master-addr-by-name picloud");
            expect(script).toContain("master='10.0.0.11 6379'");
            // Only a primary that restarts empty asks for a failover first.
            expect(script.includes("SENTINEL FAILOVER")).toBe(persistence === "none");
        }
    });

    it("writes Sentinel's file in memory with a stable id and the quorum, monitoring its peers' primary; shellcheck passes", () => {
        const script = renderSentinelStart({ self: nodes[2], nodes, sentinels: nodes, options, cloud: "dev" });
        expect(shellcheck(script, "sh").status).toBe(0);
        expect(script).toContain("file='/dev/shm/sentinel.conf'");
        expect(script).toContain(`sentinel myid ${sentinelId("dev", 2)}`);
        expect(script).toContain("sentinel monitor picloud $master 2");
        expect(script).toContain("sentinels='10.0.0.11:26379 10.0.0.12:26379'");
        expect(sentinelId("dev", 2)).toMatch(/^[0-9a-f]{40}$/);
        expect(new Set([sentinelId("dev", 0), sentinelId("dev", 1), sentinelId("prod", 0)]).size).toBe(3);
    });

    it("hands the primary over before its container changes, and does nothing on a lone node; shellcheck passes", () => {
        const handOff = renderValkeyHandOff(nodes[0], nodes, nodes, options);
        expect(shellcheck(handOff).status).toBe(0);
        expect(handOff).toContain("SENTINEL FAILOVER picloud");
        expect(renderValkeyHandOff(nodes[0], [nodes[0]], nodes, options)).toContain("has no replica");
        const w = valkeyWorkload(options, [pi("a"), pi("b"), pi("c")], nodes);
        expect(w.updateStrategy).toBe("leader-last");
        // A changed file is a changed environment: the node restarts.
        const hash = (o: typeof options) => valkeyWorkload(o, [pi("a"), pi("b"), pi("c")], nodes).perReplica!(nodes[0], nodes).env!.PICLOUD_FILES_SHA256;
        expect(hash(cacheSchema.parse({ memoryMb: 512 }))).not.toBe(hash(options));
    });

    it("opens Valkey and Sentinel to every other Pi and the operator, each flow naming its port's key", () => {
        const pis = ["p0", "p1", "p2", "p3"].map((name) => ({ name }) as never);
        const flows = cacheFlows(options, nodes.slice(0, 2), nodes, pis);
        expect(flows.filter((f) => f.port === 6379).map((f) => f.to)).toEqual([...Array(4).fill("p0"), ...Array(4).fill("p1")]);
        expect(flows.filter((f) => f.port === 26379 && f.to === "p2").map((f) => f.from)).toEqual([{ pi: "p0" }, { pi: "p1" }, { pi: "p3" }, { zone: "mgmt" }]);
        expect(new Set(flows.map((f) => f.declaredBy))).toEqual(new Set(["picloud:tiers.cache.port", "picloud:tiers.cache.sentinelPort"]));
    });

    it("gives an app the Sentinels and the master name, and the password only as a secret", () => {
        const env = cacheEnvironment(["10.0.0.11:26379", "10.0.0.12:26379"], "s3cret");
        expect(env.env).toEqual({ VALKEY_SENTINELS: "10.0.0.11:26379,10.0.0.12:26379", VALKEY_MASTER_NAME: MASTER_NAME });
        expect(env.secretEnv).toEqual({ VALKEY_PASSWORD: "s3cret" });
    });
});

const spec = cacheSpec(options, 3, 3, nodes.map((n) => `${n.address}:9121`), nodes.map((n) => `${n.address}:9355`));
const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
const valkey = (metric: string, i: number, extra = "") => `${metric}{job="${VALKEY_JOB}",instance="${nodes[i].address}:9121",tier="cache"${extra}}`;
const sentinel = (metric: string, i: number, extra = "") => `${metric}{job="${SENTINEL_JOB}",instance="${nodes[i].address}:9355",tier="cache"${extra}}`;
const promtool = (tests: object[]) => promtoolTestRules([spec], tests);
const only = (r: AlertRule, at: string, alerts: object[]) => ({ alertname: r.alert, eval_time: at, exp_alerts: alerts });
const labelsOf = (r: AlertRule, labels: Record<string, string> = {}, value = "") => firedAlert(r, "cache", labels, value);
const role = (i: number, r: string) => valkey("redis_instance_info", i, `,role="${r}"`);

describe("the cache's alerts, run by promtool test rules", () => {
    it("is complete monitoring: both jobs scraped, each with its target-down rule", () => {
        expect(monitoringGaps(spec)).toEqual([]);
    });

    it("ValkeyNoPrimary fires once no node has been the primary for 30 s, not while a Sentinel fails over", () => {
        const r = rule("ValkeyNoPrimary");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: role(0, "master"), values: "1x4 stale" },
                    { series: role(1, "slave"), values: "1x24" },
                    { series: role(2, "slave"), values: "1x24" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "1m30s", []), only(r, "3m", [labelsOf(r)])],
            },
            {
                interval: "15s",
                input_series: [
                    { series: role(0, "master"), values: "1x4 stale" },
                    // Its replica is promoted 15 s later.
                    { series: role(1, "slave"), values: "1x5 stale" },
                    { series: role(1, "master"), values: "_x5 1x19" },
                ],
                alert_rule_test: [only(r, "3m", [])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("ValkeyTwoPrimaries waits out the seconds a returning primary takes to be made a replica", () => {
        const r = rule("ValkeyTwoPrimaries");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: role(1, "master"), values: "1x24" },
                    // Node 0 comes back as a primary for 30 s, then is a replica.
                    { series: role(0, "master"), values: "_x4 1x2 stale" },
                    { series: role(0, "slave"), values: "_x6 1x18" },
                    // Node 2 comes back as a primary and stays one.
                    { series: role(2, "master"), values: "_x10 1x14" },
                ],
                alert_rule_test: [only(r, "1m30s", []), only(r, "3m", []), only(r, "5m", [labelsOf(r, {}, "2")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("ValkeyReplicationBroken names the replica whose link is down for a minute", () => {
        const r = rule("ValkeyReplicationBroken");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: valkey("redis_master_link_up", 1), values: "1x4 0x10" },
                    { series: valkey("redis_master_link_up", 2), values: "1x4 0x2 1x8" },
                ],
                alert_rule_test: [only(r, "3m", [labelsOf(r, { job: VALKEY_JOB, instance: `${nodes[1].address}:9121`, tier: "cache" })])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("ValkeyMemoryNearLimit fires above 90 % of maxmemory, and never on a node without a limit", () => {
        const r = rule("ValkeyMemoryNearLimit");
        const mb = 1024 * 1024;
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    { series: valkey("redis_memory_used_bytes", 0), values: `${185 * mb}x20` },
                    { series: valkey("redis_memory_max_bytes", 0), values: `${192 * mb}x20` },
                    { series: valkey("redis_memory_used_bytes", 1), values: `${100 * mb}x20` },
                    { series: valkey("redis_memory_max_bytes", 1), values: `${192 * mb}x20` },
                    { series: valkey("redis_memory_used_bytes", 2), values: `${900 * mb}x20` },
                    { series: valkey("redis_memory_max_bytes", 2), values: "0x20" },
                ],
                alert_rule_test: [only(r, "15m", [labelsOf(r, { job: VALKEY_JOB, instance: `${nodes[0].address}:9121`, tier: "cache" }, "96.35%")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("ValkeyRejectedConnections fires on a refused connection", () => {
        const r = rule("ValkeyRejectedConnections");
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    { series: valkey("redis_rejected_connections_total", 0), values: "0x5 3x5" },
                    { series: valkey("redis_rejected_connections_total", 1), values: "0x10" },
                ],
                alert_rule_test: [only(r, "2m", []), only(r, "7m", [labelsOf(r, { job: VALKEY_JOB, instance: `${nodes[0].address}:9121`, tier: "cache" }, "3")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("ValkeyTooFewSentinels fires when a Sentinel stops agreeing, or its exporter stops answering", () => {
        const r = rule("ValkeyTooFewSentinels");
        const ok = (i: number) => sentinel("redis_sentinel_master_ok_sentinels", i, `,master_name="${MASTER_NAME}",master_address="10.0.0.11:6379"`);
        const up = (i: number) => sentinel("up", i);
        const result = promtool([
            {
                interval: "15s",
                input_series: [0, 1, 2].flatMap((i) => [
                    { series: ok(i), values: "3x24" },
                    { series: up(i), values: "1x24" },
                ]),
                alert_rule_test: [only(r, "5m", [])],
            },
            {
                interval: "15s",
                input_series: [
                    { series: ok(0), values: "3x4 2x20" },
                    { series: ok(1), values: "3x4 2x20" },
                    { series: ok(2), values: "3x4 _x20" },
                    { series: up(0), values: "1x24" },
                    { series: up(1), values: "1x24" },
                    { series: up(2), values: "1x4 0x20" },
                ],
                alert_rule_test: [only(r, "3m", [labelsOf(r)])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });
});
