import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { promtoolTestRules } from "../../../test/support/promtool";
import { shellcheck } from "../../../test/support/scripts";
import { monitoringGaps } from "../../monitoring/contract";
import type { AlertRule } from "../../monitoring/contract";
import { belowFloor } from "../../placement/place";
import {
    CASSANDRA_FLOOR,
    CASSANDRA_JOB,
    JMX_EXPORTER,
    cassandraHeapMb,
    cassandraReplication,
    cassandraSeeds,
    cassandraSpec,
    cassandraWorkload,
    renderCassandraDockerfile,
    renderCassandraInit,
    renderCassandraYaml,
    renderKeyspacesCql,
} from "./cassandra";
import { databaseSchema } from "./config";

const options = databaseSchema.parse({ cassandra: { keyspaces: { shop: {} } } }).cassandra!;
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));
const pi = (name: string, memoryMb: number, storage: "sd" | "ssd") => ({ name, memoryMb, storage }) as never;

describe("the Cassandra ring", () => {
    it("is offered only on Pis with 8 GB and an SSD, each refused one named with its reason", () => {
        expect(belowFloor(pi("big", 8192, "ssd"), CASSANDRA_FLOOR)).toBeUndefined();
        expect(belowFloor(pi("small", 4096, "ssd"), CASSANDRA_FLOOR)).toBe("small has 4096 MB of memory");
        expect(belowFloor(pi("card", 8192, "sd"), CASSANDRA_FLOOR)).toBe("card has storage: sd");
        expect(belowFloor(pi("both", 2048, "sd"), CASSANDRA_FLOOR)).toBe("both has 2048 MB of memory and has storage: sd");
        expect(cassandraWorkload(options).hardwareFloor).toEqual(CASSANDRA_FLOOR);
    });

    it("sizes the heap and memtables for a Pi and fsyncs commits before acknowledging them", () => {
        expect(cassandraHeapMb(options)).toBe(2048);
        expect(cassandraHeapMb({ ...options, memoryMb: 16384 })).toBe(8192);
        const yaml = YAML.parse(renderCassandraYaml(members[2], members, options, { clusterName: "prod" }));
        expect(yaml).toMatchObject({
            cluster_name: "prod",
            listen_address: "10.0.0.13",
            commitlog_sync: "group",
            memtable_heap_space: "256MiB",
            memtable_offheap_space: "256MiB",
            endpoint_snitch: "GossipingPropertyFileSnitch",
            allocate_tokens_for_local_replication_factor: 3,
        });
        expect(yaml).not.toHaveProperty("commitlog_sync_period");
        // Two seeds: a seed never bootstraps, so the others join by streaming.
        expect(cassandraSeeds(members, options)).toBe("10.0.0.11:7000,10.0.0.12:7000");
        expect(yaml.seed_provider[0].parameters[0].seeds).toBe("10.0.0.11:7000,10.0.0.12:7000");
    });

    it("adds the JMX exporter to the official image, checked by its hash", () => {
        const dockerfile = renderCassandraDockerfile();
        expect(dockerfile).toMatch(/^FROM cassandra:5\.0\.\d+@sha256:[0-9a-f]{64}$/m);
        expect(dockerfile).toContain(`ADD ${JMX_EXPORTER.url} `);
        expect(dockerfile).toContain(`echo '${JMX_EXPORTER.sha256}  /opt/picloud/jmx_prometheus_javaagent.jar' | sha256sum -c -`);
    });

    it("keeps its keyspaces three times replicated, and its init step passes shellcheck", () => {
        expect(cassandraReplication(5)).toBe(3);
        expect(renderKeyspacesCql(options)).toBe("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'NetworkTopologyStrategy', 'picloud': 3};");
        const result = shellcheck(renderCassandraInit({ nodetool: ["docker", "exec", "cassandra-0", "nodetool"], cqlsh: ["docker", "exec", "-i", "cassandra-0", "cqlsh"], nodes: 3 }));
        expect(result.status, result.output).toBe(0);
    });

    it("is monitored: a target-down alert and golden signals of its own", () => {
        expect(monitoringGaps(cassandraSpec(options, members))).toEqual([]);
    });
});

describe("the Cassandra ring's alerts, run by promtool test rules", () => {
    const spec = cassandraSpec(options, members);
    const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
    const down = (i: number) => `cassandra_down_endpoints{job="${CASSANDRA_JOB}",instance="10.0.0.${11 + i}:7070",tier="database",component="cassandra"}`;
    const only = (r: AlertRule, at: string, labels: object[]) => ({ alertname: r.alert, eval_time: at, exp_alerts: labels });
    const labelled = (r: AlertRule, value = "") => {
        const fill = (text: string) => text.replace(/\{\{ \$value[^}]*\}\}/g, value);
        return { exp_labels: { severity: r.severity, component: "cassandra" }, exp_annotations: { summary: fill(r.summary), description: fill(r.description) } };
    };

    it("CassandraNodeDown fires for one node down; CassandraQuorumAtRisk only for two of three", () => {
        const oneDown = promtoolTestRules(
            [spec],
            [
                {
                    interval: "15s",
                    input_series: [
                        { series: down(0), values: "0x4 1x12" },
                        { series: down(1), values: "0x4 1x12" },
                    ],
                    alert_rule_test: [only(rule("CassandraNodeDown"), "2m30s", [labelled(rule("CassandraNodeDown"), "1")]), only(rule("CassandraQuorumAtRisk"), "2m30s", [])],
                },
            ],
        );
        expect(oneDown.status, oneDown.out).toBe(0);
        const twoDown = promtoolTestRules([spec], [{ interval: "15s", input_series: [{ series: down(0), values: "0x4 2x12" }], alert_rule_test: [only(rule("CassandraQuorumAtRisk"), "2m30s", [labelled(rule("CassandraQuorumAtRisk"))])] }]);
        expect(twoDown.status, twoDown.out).toBe(0);
    });
});
