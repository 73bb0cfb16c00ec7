import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PiHost } from "../../host/piHost";
import { remoteCommand, runRootScript, shipFile } from "../../host/remoteFiles";
import type { HaproxyTcpService } from "../loadBalancer/renderers";
import { TierArgs, TierComponent, hostOf, placedIdentities, replicaEndpoints } from "../tierComponent";
import type { DatabaseConfig } from "./config";
import {
    DATABASE_CONFIG_DIR,
    EXPORTER_WORKLOAD,
    POSTGRES_WORKLOAD,
    SYSTEM_ROLES,
    exporterWorkload,
    memberName,
    postgresWorkload,
    renderClusterStep,
    renderPatroniReload,
    renderPatroniYml,
    renderRolesSql,
    scramVerifier,
} from "./postgres";
import { DatabaseEnvironment, databaseEndpoint, databaseServices, databaseSpec } from "./specs";

const KEY = "picloud:tiers.database";

/** Arguments of {@link Database}. */
export interface DatabaseArgs extends TierArgs {
    /** Options under `picloud:tiers.database`. */
    readonly options: DatabaseConfig;
    /** Hosts by Pi name, for each member's patroni.yml and the cluster step. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** Patroni's cluster name: the stack's. */
    readonly scope: string;
    /** etcd's DCS endpoints (`address:dcsPort` of each registry member). */
    readonly etcd: readonly string[];
    /** The registry's zone: clients reach the primary by `primary.database.<zone>`. */
    readonly zone?: string;
    /** Where clients reach the load balancer, when the stack has one: it serves the primary and the standbys. */
    readonly loadBalancerAddress?: string;
    /** etcd's members: Patroni starts once they run (it gives up on a cluster that has not formed yet). */
    readonly after?: readonly pulumi.Resource[];
}

/**
 * The database: PostgreSQL 17 with Patroni, a primary and standbys on distinct (SSD) Pis, the
 * leader elected in the registry's etcd, synchronous replication by default with two standbys,
 * each member's data on its own Pi. Every password is made here as a Pulumi secret: Patroni's own
 * roles reach the members as environment, the declared roles get SCRAM verifiers from the cluster
 * step and apps get theirs as `secretEnv`. The load balancer serves the primary and the standbys,
 * each chosen by Patroni's REST API.
 */
export class Database extends TierComponent {
    /** The primary (read-write) and the standbys (read-only) behind the load balancer. */
    readonly edgeTcp: readonly HaproxyTcpService[];
    /** Where clients reach the primary. */
    readonly endpoint: { readonly host: string; readonly port: number };
    private readonly rolePasswords = new Map<string, pulumi.Output<string>>();
    private readonly databases: DatabaseConfig["databases"];

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:database:Database", name, opts);
        const { options } = args;
        this.databases = options.databases;
        const piHost = (pi: string) => hostOf(args.hosts, pi, KEY);
        const password = (what: string) => new random.RandomPassword(`${name}-${what}-password`, { length: 32, special: false }, { parent: this }).result;
        const superuser = password("superuser");
        const restApi = password("rest-api");
        const monitor = password("monitor");
        for (const role of Object.keys(options.roles)) this.rolePasswords.set(role, password(`role-${role}`));

        const workload = postgresWorkload(options, args.pis, {
            PATRONI_SUPERUSER_PASSWORD: superuser,
            PATRONI_REPLICATION_PASSWORD: password("replication"),
            PATRONI_REWIND_PASSWORD: password("rewind"),
            PATRONI_RESTAPI_PASSWORD: restApi,
        });
        const identities = placedIdentities(workload, args);
        // Each member's patroni.yml before it starts; Patroni reads it at start.
        const files = identities.map((self) => renderPatroniYml(self, identities, options, { scope: args.scope, etcd: args.etcd }));
        const shipped = identities.map((self, i) =>
            shipFile(`${name}-${self.pi}-patroni-yml`, { connection: piHost(self.pi).connection, text: files[i], remotePath: `${DATABASE_CONFIG_DIR}/patroni.yml`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
        );
        this.runWorkloads([workload, exporterWorkload(options, args.pis, identities, { DATA_SOURCE_PASS: monitor })], args, [...shipped, ...(args.after ?? [])]);
        const members = this.replicas[POSTGRES_WORKLOAD];
        // A changed patroni.yml (a member added or moved: pg_hba and the peers change) reaches a running member without a restart.
        members.forEach((m, i) =>
            remoteCommand(`${name}-${m.pi}-patroni-reload`, { connection: piHost(m.pi).connection, create: renderPatroniReload(m.identity), rerunWhen: [files[i]] }, { parent: this, dependsOn: [shipped[i], m.resource] }),
        );

        // The cluster step on the first member's Pi once every member runs: the settings, then the roles and databases.
        const roles = [
            ...[...this.rolePasswords].map(([role, secret]) => ({ role, secret, grants: [] as string[] })),
            { role: SYSTEM_ROLES.monitor, secret: monitor, grants: ["pg_monitor"] },
        ];
        const sql = pulumi
            .all(roles.map((r) => r.secret))
            .apply((secrets) => renderRolesSql(roles.map((r, i) => ({ role: r.role, verifier: scramVerifier(r.role, secrets[i]), grants: r.grants })), options.databases));
        const first = identities[0];
        runRootScript(
            `${name}-cluster`,
            {
                connection: piHost(first.pi).connection,
                scriptName: "database-cluster.sh",
                script: renderClusterStep({ exec: ["docker", "exec", "-i", memberName(first)], members: identities, options }),
                stdin: pulumi.interpolate`${restApi}\n${superuser}\n${sql}`,
            },
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );

        this.edgeTcp = args.loadBalancerAddress === undefined ? [] : databaseServices(options, identities);
        this.endpoint = databaseEndpoint(options, identities, args.loadBalancerAddress, args.zone);
        this.attach(databaseSpec(options, identities, replicaEndpoints(EXPORTER_WORKLOAD, options.exporterPort, args)), args.monitoring);
        this.registerOutputs({ endpoint: `${this.endpoint.host}:${this.endpoint.port}`, members: identities.map((m) => `${m.address}:${options.port}`), databases: Object.keys(options.databases) });
    }

    /** What an app that names database `name` gets: libpq's variables, the owner role's password a secret; throws naming the database when it is not declared. */
    databaseEnvironment(name: string): DatabaseEnvironment {
        const db = this.databases[name];
        if (!db) throw new Error(`${KEY}.databases: no database "${name}" is declared (databases: ${Object.keys(this.databases).join(", ") || "none"})`);
        return {
            env: { PGHOST: this.endpoint.host, PGPORT: String(this.endpoint.port), PGDATABASE: name, PGUSER: db.owner, PGTARGETSESSIONATTRS: "read-write" },
            secretEnv: { PGPASSWORD: this.rolePasswords.get(db.owner)! },
        };
    }
}
