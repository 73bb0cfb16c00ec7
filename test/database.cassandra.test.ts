/**
 * The Cassandra ring for real: cassandra-all at the version the image pins, with its dependencies
 * from Maven Central, on this machine's JDK 17, three nodes each in a network namespace of its own
 * on a bridge (a Pi each), on exactly the cassandra.yaml, rack file and JMX exporter rules picloud
 * renders (their folders aside), with the JVM options picloud adds (the exporter agent, its
 * config) and the heap it sizes. The rendered init step waits for the ring and makes the
 * keyspaces, replicated three times. Writes and reads at QUORUM go on when a node is killed.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicaIdentity } from "../components/runtime/workload";
import {
    CASSANDRA_JOB,
    cassandraHeapMb,
    cassandraJvmOptions,
    cassandraSpec,
    renderCassandraInit,
    renderCassandraYaml,
    renderJmxExporterConfig,
    renderKeyspacesCql,
    renderRackDc,
} from "../components/tiers/database/cassandra";
import { databaseSchema } from "../components/tiers/database/config";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run, runAsync } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-cas-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const lab = new NetnsLab("picloud-cassandra");
const options = databaseSchema.parse({ cassandra: { memoryMb: 2048, keyspaces: { ring: {} } } }).cassandra!;
const members: ReplicaIdentity[] = [0, 1, 2].map((index) => ({ index, pi: `pi-${index}`, address: `10.77.0.${11 + index}`, dataPath: `/srv/picloud/data/cassandra-${index}` }));
const dirOf = (m: ReplicaIdentity) => path.join(lab.work, m.pi);
const nsOf = (m: ReplicaIdentity) => `${PREFIX}${m.index}`;
const lib = () => validator("cassandra-lib");
const processes = new Map<number, ChildProcess>();

/** What the image's conf/jvm17-server.options gives Cassandra on Java 17: the module access it needs. */
const JVM17 = [
    "-Djdk.attach.allowAttachSelf=true",
    ...["java.base/jdk.internal.misc", "java.base/jdk.internal.ref", "java.base/sun.nio.ch", "java.management.rmi/com.sun.jmx.remote.internal.rmi", "java.rmi/sun.rmi.registry", "java.rmi/sun.rmi.server", "java.sql/java.sql"].map((m) => `--add-exports=${m}=ALL-UNNAMED`),
    ...[
        "java.base/java.lang.module",
        "java.base/jdk.internal.loader",
        "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect",
        "java.base/jdk.internal.math",
        "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar",
        "jdk.management/com.sun.management.internal",
        "java.base/sun.nio.ch",
        "java.base/java.io",
        "java.base/java.nio",
        "java.base/java.lang",
        "java.base/java.util",
        "java.base/java.util.concurrent",
        "java.base/java.util.concurrent.atomic",
        "java.base/java.lang.reflect",
        "java.base/java.net",
    ].map((m) => `--add-opens=${m}=ALL-UNNAMED`),
];

function start(m: ReplicaIdentity): void {
    const dir = dirOf(m);
    const heap = cassandraHeapMb(options);
    const files = { yaml: path.join(dir, "cassandra.yaml"), exporterConfig: path.join(dir, "jmx-exporter.yaml"), agentJar: path.join(lib(), "jmx_prometheus_javaagent-1.0.1.jar") };
    const args = [
        "java",
        ...JVM17,
        `-Xms${heap}m`,
        `-Xmx${heap}m`,
        "-XX:+UseG1GC",
        `-javaagent:${path.join(lib(), "jamm-0.4.0.jar")}`,
        ...cassandraJvmOptions(options, files).split(" "),
        `-Dcassandra.storagedir=${dir}`,
        `-Dcassandra.logdir=${dir}/logs`,
        "-Dcassandra-foreground=yes",
        "-Dcassandra.jmx.local.port=7199",
        `-Dlogback.configurationFile=${path.join(dir, "conf", "logback.xml")}`,
        // The test's own haste: a new node waits 5 s for gossip instead of 30.
        "-Dcassandra.ring_delay_ms=5000",
        "-cp",
        `${path.join(dir, "conf")}:${lib()}/*`,
        "org.apache.cassandra.service.CassandraDaemon",
    ];
    processes.set(m.index, lab.start(nsOf(m), path.join(dir, "cassandra.log"), args));
}

const cqlListening = (m: ReplicaIdentity) => run("ip", ["netns", "exec", nsOf(m), "bash", "-c", `exec 3<>/dev/tcp/${m.address}/${options.cqlPort}`]).status === 0;
const nodetool = (_m: ReplicaIdentity) => ["java", ...JVM17, "-cp", `${lib()}/*`, "org.apache.cassandra.tools.NodeTool", "-h", "127.0.0.1", "-p", "7199"];
function tail(m: ReplicaIdentity, lines = 12): string {
    try {
        return readFileSync(path.join(dirOf(m), "cassandra.log"), "utf8").split("\n").filter((l) => /WARN|ERROR|Exception/.test(l)).slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/** CQL through node `via` with cqlsh, at QUORUM. */
function cql(via: ReplicaIdentity, statements: string) {
    return runAsync("ip", ["netns", "exec", nsOf(via), validator("cqlsh"), via.address, String(options.cqlPort), "--request-timeout=20", "-e", `CONSISTENCY QUORUM; ${statements}`]);
}

beforeAll(async () => {
    lab.addSwitch(SWITCH);
    members.forEach((m, i) => {
        lab.addHost(nsOf(m), SWITCH, `port${i}`, `${m.address}/24`);
        const dir = dirOf(m);
        mkdirSync(path.join(dir, "conf"), { recursive: true });
        writeFileSync(path.join(dir, "cassandra.yaml"), renderCassandraYaml(m, members, options, { clusterName: "dev", paths: { dataDir: dir } }));
        writeFileSync(path.join(dir, "conf", "cassandra-rackdc.properties"), renderRackDc(m));
        writeFileSync(path.join(dir, "jmx-exporter.yaml"), renderJmxExporterConfig());
        writeFileSync(path.join(dir, "conf", "logback.xml"), '<configuration><appender name="O" class="ch.qos.logback.core.ConsoleAppender"><encoder><pattern>%d %level %logger{20} %msg%n</pattern></encoder></appender><root level="INFO"><appender-ref ref="O"/></root></configuration>');
    });
    // As the runtime starts them: one node at a time, the next once the one before serves CQL.
    for (const m of members) {
        const started = Date.now();
        start(m);
        await waitFor(`Cassandra node ${m.index} serves CQL`, 240_000, () => processes.get(m.index)!.exitCode === null && cqlListening(m), { intervalMs: 1000, context: () => tail(m) });
        console.log(`cassandra: node ${m.index} joined the ring and serves CQL ${((Date.now() - started) / 1000).toFixed(1)} s after it started`);
    }
    // The init step as rendered: the ring up in the first node's view, then the keyspaces.
    const script = path.join(lab.work, "init.sh");
    writeFileSync(script, renderCassandraInit({ nodetool: nodetool(members[0]), cqlsh: [validator("cqlsh"), members[0].address, String(options.cqlPort)], nodes: 3, waitSeconds: 120 }));
    const init = await runAsync("ip", ["netns", "exec", nsOf(members[0]), "bash", script], renderKeyspacesCql(options));
    expect(init.status, `${init.stdout}\n${init.stderr}`).toBe(0);
    expect(init.stdout).toContain("3 Cassandra nodes up");
}, 900_000);

afterAll(async () => {
    await lab.stopAll();
    lab.remove();
}, 60_000);

describe("a Cassandra ring on picloud's cassandra.yaml, three nodes on three namespaced Pis", () => {
    it("replicates the declared keyspace three times across the three racks (Pis)", async () => {
        const r = await cql(members[1], "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'ring';");
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/'picloud': '3'/);
        const status = await runAsync("ip", ["netns", "exec", nsOf(members[0]), ...nodetool(members[0]), "status", "ring"]);
        for (const m of members) expect(status.stdout).toMatch(new RegExp(`^UN +${m.address.replace(/\./g, "\\.")} .* ${m.pi}\\s*$`, "m"));
    });

    it("serves every metric its alerts and dashboard read", () => {
        const spec = cassandraSpec(options, members);
        const text = run("ip", ["netns", "exec", nsOf(members[0]), "curl", "-fsS", "--max-time", "10", `http://${members[0].address}:${options.metricsPort}/metrics`]).stdout;
        const exprs = [...spec.alertRules.map((r) => r.expr), ...spec.dashboard.panels.map((p) => p.expr)];
        const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b([a-z_]+)\{job=/g)].map((m) => m[1])).filter((n) => n !== "up"));
        expect(names.size).toBeGreaterThan(6);
        const served = new Set([...text.matchAll(/^([a-z_]+)[{ ]/gm)].map((m) => m[1]));
        expect([...names].filter((n) => !served.has(n))).toEqual([]);
        expect(spec.scrapeTargets[0].job).toBe(CASSANDRA_JOB);
    });

    it("goes on writing and reading at QUORUM with one node killed, and the ring reports it down", async () => {
        const made = await cql(members[0], "CREATE TABLE IF NOT EXISTS ring.acked (id int PRIMARY KEY, v text);");
        expect(made.status, made.stderr).toBe(0);
        const insert = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `INSERT INTO ring.acked (id, v) VALUES (${from + i}, 'x');`).join(" ");
        const before = await cql(members[0], insert(0, 50));
        expect(before.status, before.stderr).toBe(0);
        const killedAt = Date.now();
        await lab.stop(processes.get(2), "SIGKILL");
        // Through a surviving node: two of three replicas answer every QUORUM.
        let after = await cql(members[1], insert(50, 100));
        while (after.status !== 0 && Date.now() - killedAt < 60_000) after = await cql(members[1], insert(50, 100));
        expect(after.status, after.stderr).toBe(0);
        console.log(`cassandra: 50 QUORUM writes acknowledged through a surviving node ${((Date.now() - killedAt) / 1000).toFixed(1)} s after a node was killed`);
        // What CassandraNodeDown reads: the failure detector's count of down nodes, within seconds.
        await waitFor("the ring reports one node down", 60_000, () => /^cassandra_down_endpoints(\{[^}]*\})? 1\.0$/m.test(run("ip", ["netns", "exec", nsOf(members[0]), "curl", "-fsS", "--max-time", "10", `http://${members[0].address}:${options.metricsPort}/metrics`]).stdout), { intervalMs: 2000 });
        // Every row at QUORUM. A scan sent to the dead node before it was known down times out, as a client's would; it retries.
        let count = await cql(members[0], "SELECT count(*) FROM ring.acked;");
        while (count.status !== 0 && Date.now() - killedAt < 90_000) count = await cql(members[0], "SELECT count(*) FROM ring.acked;");
        expect(count.status, count.stderr).toBe(0);
        expect(count.stdout).toMatch(/^\s+100$/m);
    }, 180_000);
});
