import * as pulumi from "@pulumi/pulumi";
import type { PiHost } from "../../host/piHost";
import { runRootScript, shipFile } from "../../host/remoteFiles";
import { TierArgs, TierComponent, hostOf, placedIdentities } from "../tierComponent";
import {
    CASSANDRA_CONFIG_DIR,
    CASSANDRA_WORKLOAD,
    CassandraOptions,
    cassandraSpec,
    cassandraWorkload,
    renderCassandraInit,
    renderCassandraYaml,
    renderJmxExporterConfig,
    renderKeyspacesCql,
} from "./cassandra";

const KEY = "picloud:tiers.database.cassandra";

/** Arguments of {@link CassandraRing}. */
export interface CassandraRingArgs extends TierArgs {
    readonly options: CassandraOptions;
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** The ring's name: the stack's. */
    readonly clusterName: string;
}

/**
 * The ring option: Cassandra nodes on Pis with at least 8 GB and an SSD, each with its
 * cassandra.yaml and exporter rules shipped before it starts, joining one at a time; the init
 * step on the first node's Pi keeps the declared keyspaces, replicated three times.
 */
export class CassandraRing extends TierComponent {
    constructor(name: string, args: CassandraRingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:database:CassandraRing", name, opts);
        const { options } = args;
        const piHost = (pi: string) => hostOf(args.hosts, pi, KEY);
        const workload = cassandraWorkload(options);
        const identities = placedIdentities(workload, args);
        const shipped = identities.flatMap((self) => [
            shipFile(`${name}-${self.pi}-cassandra-yaml`, { connection: piHost(self.pi).connection, text: renderCassandraYaml(self, identities, options, { clusterName: args.clusterName }), remotePath: `${CASSANDRA_CONFIG_DIR}/cassandra.yaml`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
            shipFile(`${name}-${self.pi}-jmx-exporter`, { connection: piHost(self.pi).connection, text: renderJmxExporterConfig(), remotePath: `${CASSANDRA_CONFIG_DIR}/jmx-exporter.yaml`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
        ]);
        this.runWorkloads([workload], args, shipped);
        const members = this.replicas[CASSANDRA_WORKLOAD];
        const first = identities[0];
        const container = `${CASSANDRA_WORKLOAD}-${first.index}`;
        runRootScript(
            `${name}-init`,
            {
                connection: piHost(first.pi).connection,
                scriptName: "cassandra-init.sh",
                script: renderCassandraInit({ nodetool: ["docker", "exec", container, "nodetool"], cqlsh: ["docker", "exec", "-i", container, "cqlsh", first.address, String(options.cqlPort)], nodes: identities.length }),
                stdin: renderKeyspacesCql(options),
            },
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );
        this.attach(cassandraSpec(options, identities), args.monitoring);
        this.registerOutputs({ nodes: identities.map((m) => `${m.address}:${options.cqlPort}`), keyspaces: Object.keys(options.keyspaces) });
    }
}
