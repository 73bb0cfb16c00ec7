import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PiHost } from "../../host/piHost";
import { remoteCommand, runRootScript, shipFile } from "../../host/remoteFiles";
import { BACKUP_SKIPPED, backupTimerRemoveCommand, renderBackupTimerScript } from "../../renderers/backupTimer";
import type { ClientEnvironment } from "../../runtime/workload";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../monitoring/specs";
import type { HaproxyTcpService } from "../loadBalancer/renderers";
import { TierArgs, TierComponent, hostOf, placedIdentities, replicaEndpoints } from "../tierComponent";
import type { DatabaseConfig } from "./config";
import {
    BACKUP_NAME,
    KEY_ENV,
    MemberAccess,
    RESTORE_MARKERS_REMOVE,
    bridgeEnvironment,
    renderBackupCommand,
    renderPgbackrestConf,
    renderRestoreRejoin,
    renderRestoreReset,
    renderRestoreRun,
    renderRestoreStop,
    s3Target,
} from "./pgbackrest";
import {
    CONTAINER_PATHS,
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
    /** With `backup`: what the backup key's holder gets from blob storage (its endpoint and region, the key as secrets). */
    readonly backupKey?: ClientEnvironment;
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

        const backup = options.backup;
        if (backup && !args.backupKey) throw new Error(`${KEY}.backup: expected blob storage's key "${backup.key}" to reach the database (picloud:tiers.blob.keys)`);
        const s3 = backup && args.backupKey ? s3Target(args.backupKey.env.AWS_ENDPOINT_URL_S3, args.backupKey.env.AWS_REGION) : undefined;
        const workload = postgresWorkload(
            options,
            args.pis,
            {
                PATRONI_SUPERUSER_PASSWORD: superuser,
                PATRONI_REPLICATION_PASSWORD: password("replication"),
                PATRONI_REWIND_PASSWORD: password("rewind"),
                PATRONI_RESTAPI_PASSWORD: restApi,
                ...(backup && args.backupKey ? { [KEY_ENV.id]: args.backupKey.secretEnv.AWS_ACCESS_KEY_ID, [KEY_ENV.secret]: args.backupKey.secretEnv.AWS_SECRET_ACCESS_KEY } : {}),
            },
            backup && s3 ? bridgeEnvironment(backup, s3) : {},
        );
        const identities = placedIdentities(workload, args);
        // Each member's patroni.yml (and pgBackRest's configuration) before it starts; Patroni reads it at start.
        const files = identities.map((self) => renderPatroniYml(self, identities, options, { scope: args.scope, etcd: args.etcd }));
        const shipped = identities.map((self, i) =>
            shipFile(`${name}-${self.pi}-patroni-yml`, { connection: piHost(self.pi).connection, text: files[i], remotePath: `${DATABASE_CONFIG_DIR}/patroni.yml`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
        );
        const backupConf =
            backup && s3
                ? renderPgbackrestConf(backup, { scope: args.scope, s3, port: options.port, paths: { dataDir: CONTAINER_PATHS.dataDir, socketDir: CONTAINER_PATHS.socketDir } })
                : undefined;
        const shippedConf =
            backupConf === undefined
                ? []
                : identities.map((self) =>
                      shipFile(`${name}-${self.pi}-pgbackrest-conf`, { connection: piHost(self.pi).connection, text: backupConf, remotePath: `${DATABASE_CONFIG_DIR}/pgbackrest.conf`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
                  );
        this.runWorkloads([workload, exporterWorkload(options, args.pis, identities, { DATA_SOURCE_PASS: monitor })], args, [...shipped, ...shippedConf, ...(args.after ?? [])]);
        const members = this.replicas[POSTGRES_WORKLOAD];
        // A changed patroni.yml (a member added or moved: pg_hba and the peers change) reaches a running member without a restart.
        const reloads = members.map((m, i) =>
            remoteCommand(`${name}-${m.pi}-patroni-reload`, { connection: piHost(m.pi).connection, create: renderPatroniReload(m.identity), rerunWhen: [files[i]] }, { parent: this, dependsOn: [shipped[i], m.resource] }),
        );
        const first = identities[0];
        const access = (m: { index: number }): MemberAccess => {
            const container = memberName(m);
            const running = `[ "$(docker inspect -f '{{.State.Running}}' ${container} 2>/dev/null)" = true ]`;
            return {
                exec: ["docker", "exec", container],
                stop: `if ${running}; then docker stop -t 120 ${container} >/dev/null; fi\nif ${running}; then echo "picloud: ${container} still runs" >&2; exit 1; fi`,
                start: `docker start ${container} >/dev/null`,
                running,
                socketDir: CONTAINER_PATHS.socketDir,
            };
        };

        // A restore, once for each moment: every member stops, etcd forgets the cluster, the first member restores, the others copy it.
        let settled: pulumi.Resource[] = members.map((m) => m.resource);
        const restore = options.restore;
        if (restore) {
            const step = (m: { pi: string }, what: string, script: string, dependsOn: pulumi.Resource[]) =>
                // No delete: a step replaced (a Pi renamed) is created again before the old one goes, and its markers must outlive that.
                runRootScript(`${name}-${m.pi}-restore-${what}`, { connection: piHost(m.pi).connection, scriptName: `database-restore-${what}.sh`, script }, { parent: this, dependsOn }).run;
            const stops = identities.map((m) => step(m, "stop", renderRestoreStop(m, restore, access(m), `${m.dataPath}/pgdata`), [...settled, ...reloads]));
            const reset = step(first, "reset", renderRestoreReset(args.scope, args.etcd, restore), stops);
            const run = step(first, "run", renderRestoreRun(options, restore, access(first)), [reset]);
            settled = [run, ...identities.slice(1).map((m) => step(m, "rejoin", renderRestoreRejoin(m, options, restore, access(m)), [run]))];
        } else {
            // With no restore in the config, its markers go (once, when this command is created), so the next restore, even to the same moment, runs.
            for (const m of identities) remoteCommand(`${name}-${m.pi}-restore-markers-cleared`, { connection: piHost(m.pi).connection, create: RESTORE_MARKERS_REMOVE }, { parent: this, dependsOn: [piHost(m.pi).ready] });
        }

        // The cluster step on the first member's Pi once every member runs: the settings, then the roles and databases.
        const roles = [
            ...[...this.rolePasswords].map(([role, secret]) => ({ role, secret, grants: [] as string[] })),
            { role: SYSTEM_ROLES.monitor, secret: monitor, grants: ["pg_monitor"] },
        ];
        const sql = pulumi
            .all(roles.map((r) => r.secret))
            .apply((secrets) => renderRolesSql(roles.map((r, i) => ({ role: r.role, verifier: scramVerifier(r.role, secrets[i]), grants: r.grants })), options.databases));
        const { run: cluster } = runRootScript(
            `${name}-cluster`,
            {
                connection: piHost(first.pi).connection,
                scriptName: "database-cluster.sh",
                script: renderClusterStep({ exec: ["docker", "exec", "-i", memberName(first)], members: identities, options }),
                stdin: pulumi.interpolate`${restApi}\n${superuser}\n${sql}`,
            },
            { parent: this, dependsOn: settled },
        );

        // Backups: a timer on each member's Pi; the primary's takes them, the standbys' skip.
        if (backup) {
            for (const m of identities) {
                runRootScript(
                    `${name}-${m.pi}-backup`,
                    {
                        connection: piHost(m.pi).connection,
                        scriptName: "backup-database.sh",
                        script: renderBackupTimerScript({ name: BACKUP_NAME, onCalendar: backup.onCalendar, command: renderBackupCommand(options, backup, access(m).exec, BACKUP_SKIPPED), textfileDir: NODE_EXPORTER_TEXTFILE_DIR }),
                        remove: backupTimerRemoveCommand(BACKUP_NAME, NODE_EXPORTER_TEXTFILE_DIR),
                    },
                    { parent: this, dependsOn: [cluster] },
                );
            }
        }

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
