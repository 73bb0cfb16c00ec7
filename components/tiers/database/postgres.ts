/**
 * The database tier's members, pure: the image each Pi builds (PostgreSQL 17 from its official
 * image, Patroni from PyPI pinned by hash), the `patroni.yml` each member reads, the cluster's
 * dynamic settings, the members' and exporters' workloads, the leader hand-off and the step that
 * keeps the declared roles and databases. The component (`database.ts`) deploys them.
 *
 * Patroni elects the primary through the service registry's etcd: a lock with a time to live that
 * the primary renews, so a dead primary's lock runs out and a standby takes over. With
 * synchronous mode a commit waits until a standby has flushed it, and only that standby may be
 * promoted: a failover loses no acknowledged write.
 */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { stringify } from "yaml";
import type { PiConfig } from "../../config/schema";
import { contentHash } from "../../renderers/contentHash";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";
import type { ReplicaIdentity, Workload } from "../../runtime/workload";
import type { DatabaseConfig } from "./config";
import { localRestUrl, restAnswers } from "./patroniRest";
import { MEMBER_ENTRYPOINT, PGBACKREST_CONFIG_IN_CONTAINER, archiveCommand, patroniBackupSections, renderMemberEntrypoint } from "./pgbackrest";

const KEY = "picloud:tiers.database";

/** PostgreSQL 17's official image (Debian bookworm, multi-arch), pinned by digest: the base each Pi builds on. */
export const POSTGRES_BASE_IMAGE = "postgres:17.7-bookworm@sha256:86e0b703649d7a792bd9243ee28afc9d8f7c6b2b5638077c9d6882d4d472bbfd";
/** Patroni from PyPI, the version the host suite runs too. */
export const PATRONI_VERSION = "4.1.5";
/**
 * What pip adds to the image, each pinned by the hash of its file on PyPI; everything else
 * Patroni needs comes from the base image's own Debian archive (psycopg2, psutil, PyYAML, urllib3,
 * python-etcd among them), signed by Debian.
 */
export const PATRONI_WHEELS = [
    { name: "patroni", version: PATRONI_VERSION, sha256: "7aad8c1539e6c51c269a8005169dd54ddc7668437b7900fa6099d7894e224c84" },
    { name: "py-consul", version: "1.8.0", sha256: "242f45d66c97224ecd04ba1dd4eb71053ed5a38dc7bb9b9387d2a882f7352d59" },
    { name: "ydiff", version: "1.4.2", sha256: "369be623dcde7954d98973fb9db1780d64f0353982bf3ac85818f3d62ff452b0" },
] as const;
const DEBIAN_PACKAGES = ["python3-venv", "python3-psycopg2", "python3-psutil", "python3-yaml", "python3-click", "python3-prettytable", "python3-dateutil", "python3-urllib3", "python3-etcd", "python3-dnspython", "python3-requests", "curl", "pgbackrest", "socat", "openssl"];

/** postgres_exporter (Prometheus community), multi-arch, pinned by digest. */
export const POSTGRES_EXPORTER_IMAGE = "quay.io/prometheuscommunity/postgres-exporter:v0.19.1@sha256:e96064f876226d94bb6ce48a4c4b3dd76edba91168ec1ab024e5c4b959310b0f";

export const POSTGRES_WORKLOAD = "postgres";
export const EXPORTER_WORKLOAD = "postgres-exporter";
/** Each Pi's patroni.yml, mounted read-only into its member. */
export const DATABASE_CONFIG_DIR = "/srv/picloud/database";
export const PATRONI_CONFIG_IN_CONTAINER = "/etc/patroni/patroni.yml";
/** The member's data folder; PostgreSQL's cluster lives in `pgdata` below it. */
export const POSTGRES_DATA_IN_CONTAINER = "/var/lib/postgresql/data";
/** The official image's postgres user and group. */
export const POSTGRES_USER = { uid: 999, gid: 999 } as const;
const PATRONI_BIN = "/opt/patroni/bin";

/** The roles picloud's own parts log in as. */
export const SYSTEM_ROLES = { superuser: "postgres", replication: "replicator", rewind: "rewind", monitor: "picloud_monitor", restApi: "patroni" } as const;

/** Pis that may carry a member: SSD Pis, unless SD cards are allowed. */
function eligiblePis(options: DatabaseConfig, pis: readonly PiConfig[]): PiConfig[] {
    return pis.filter((p) => options.allowSdCard || p.storage === "ssd");
}

/** Members: `members`, else three where three Pis may carry one, else as many as may (at least one: placement names what is missing). */
export function databaseMembers(options: DatabaseConfig, pis: readonly PiConfig[]): number {
    return options.members ?? Math.max(1, Math.min(3, eligiblePis(options, pis).length));
}

/** Synchronous mode: as configured, else on with two standbys or more (one may be down without stopping commits). */
export function synchronousMode(options: DatabaseConfig, members: number): boolean {
    return options.synchronousMode ?? members >= 3;
}

/** The Dockerfile each member's Pi builds its image from: no build context, the base and the wheels pinned. */
export function renderPatroniDockerfile(): string {
    const requirements = PATRONI_WHEELS.map((w) => `'${w.name}==${w.version} --hash=sha256:${w.sha256}'`).join(" ");
    return [
        "# picloud: PostgreSQL 17 with Patroni; rendered, do not edit",
        `FROM ${POSTGRES_BASE_IMAGE}`,
        "RUN apt-get update \\",
        `    && apt-get install -y --no-install-recommends ${DEBIAN_PACKAGES.join(" ")} \\`,
        "    && rm -rf /var/lib/apt/lists/*",
        // The venv sees Debian's packages, so pip adds only what Debian lacks, each checked against its hash.
        `RUN python3 -m venv --system-site-packages ${PATRONI_BIN.replace(/\/bin$/, "")} \\`,
        `    && printf '%s\\n' ${requirements} >/tmp/requirements.txt \\`,
        `    && ${PATRONI_BIN}/pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.txt \\`,
        `    && ${PATRONI_BIN}/pip check \\`,
        "    && rm /tmp/requirements.txt",
        // The entrypoint (the backups' TLS bridge, then Patroni), written exactly as rendered.
        `RUN echo ${Buffer.from(renderMemberEntrypoint(`${PATRONI_BIN}/patroni`)).toString("base64")} | base64 -d >${MEMBER_ENTRYPOINT} \\`,
        `    && chmod 0755 ${MEMBER_ENTRYPOINT}`,
        "USER postgres",
        `ENTRYPOINT ["${MEMBER_ENTRYPOINT}"]`,
        `CMD ["${PATRONI_CONFIG_IN_CONTAINER}"]`,
        "",
    ].join("\n");
}

/** The tag each Pi builds the image under: its versions and a hash of its Dockerfile, so a changed Dockerfile is a new image. */
export function patroniImageTag(dockerfile = renderPatroniDockerfile()): string {
    return `picloud/postgres-patroni:17.7-patroni${PATRONI_VERSION}-${contentHash(dockerfile).slice(0, 12)}`;
}

/**
 * Patroni's timings from the leader lock's time to live: the loop runs every quarter of it (at
 * most 10 s), and a DCS or PostgreSQL call is retried for as long (Patroni's rule: loop_wait + 2 ×
 * retry_timeout ≤ ttl). A dead primary's lock runs out within ttl; a standby whose etcd endpoint
 * died with it moves to another within retry_timeout, and takes the lock.
 */
export function patroniTimings(ttl: number): { ttl: number; loop_wait: number; retry_timeout: number } {
    const loopWait = Math.max(1, Math.min(10, Math.floor(ttl / 4)));
    return { ttl, loop_wait: loopWait, retry_timeout: loopWait };
}

/** PostgreSQL's settings, cluster-wide: memory from the member's limit, WAL and replication for Patroni. */
export function postgresParameters(options: DatabaseConfig): Record<string, string | number> {
    const mb = options.memoryMb;
    return {
        max_connections: options.maxConnections,
        shared_buffers: `${Math.floor(mb / 4)}MB`,
        effective_cache_size: `${Math.floor(mb / 2)}MB`,
        maintenance_work_mem: `${Math.min(256, Math.floor(mb / 16))}MB`,
        work_mem: "4MB",
        wal_level: "replica",
        hot_standby: "on",
        // pg_rewind brings a failed primary back as a standby instead of a full copy.
        wal_log_hints: "on",
        max_wal_senders: 10,
        max_replication_slots: 10,
        wal_keep_size: "256MB",
        max_wal_size: "1GB",
        // Power cuts: every commit is on disk before it is acknowledged (PostgreSQL's defaults, stated).
        fsync: "on",
        synchronous_commit: "on",
        full_page_writes: "on",
        password_encryption: "scram-sha-256",
        log_min_duration_statement: 1000,
        // Archiving is always on, so backups can be turned on without a restart; without them it keeps nothing.
        archive_mode: "on",
        archive_command: archiveCommand(options.backup),
        ...(options.backup ? { archive_timeout: `${options.backup.archiveTimeoutSeconds}s` } : {}),
    };
}

/**
 * The settings Patroni keeps in etcd for the whole cluster: timings, synchronous mode, failsafe
 * mode (a primary that can still reach every member keeps running while etcd is away) and
 * PostgreSQL's parameters. They seed a new cluster (`bootstrap.dcs`) and are applied to a running
 * one by the cluster step, so a changed option reaches a cluster formed long ago.
 */
export function patroniDynamicConfig(options: DatabaseConfig, members: number): Record<string, unknown> {
    return {
        ...patroniTimings(options.leaderTtlSeconds),
        maximum_lag_on_failover: 1048576,
        synchronous_mode: synchronousMode(options, members),
        synchronous_mode_strict: false,
        synchronous_node_count: 1,
        failsafe_mode: true,
        postgresql: { use_pg_rewind: true, use_slots: true, parameters: postgresParameters(options) },
    };
}

/** Where a member's files are, in its container by default; the host suite moves them. */
export interface PatroniPaths {
    readonly dataDir: string;
    readonly binDir: string;
    readonly socketDir: string;
    readonly pgpass: string;
}
export const CONTAINER_PATHS: PatroniPaths = {
    dataDir: `${POSTGRES_DATA_IN_CONTAINER}/pgdata`,
    binDir: "/usr/lib/postgresql/17/bin",
    socketDir: "/var/run/postgresql",
    pgpass: "/tmp/pgpass",
};

/** What a member's patroni.yml is made from besides its options. */
export interface PatroniContext {
    /** Patroni's cluster name (its `scope`). */
    readonly scope: string;
    /** etcd's members' DCS endpoints, `address:port` (plain HTTP on the LAN, opened to the members only). */
    readonly etcd: readonly string[];
    readonly paths?: PatroniPaths;
}

/**
 * One member's `patroni.yml`. No secret is in it: the superuser's, the replication and rewind
 * roles' and the REST API's passwords reach the container as environment (`PATRONI_*_PASSWORD`)
 * from Pulumi secrets. Connections need a password everywhere but the member's own socket.
 */
export function renderPatroniYml(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: DatabaseConfig, context: PatroniContext): string {
    const paths = context.paths ?? CONTAINER_PATHS;
    const peers = members.map((m) => `${m.address}/32`);
    const backup = patroniBackupSections(options, paths.dataDir);
    const config = {
        scope: context.scope,
        namespace: "/picloud/patroni/",
        name: memberName(self),
        log: { level: "INFO" },
        restapi: { listen: `0.0.0.0:${options.restApiPort}`, connect_address: `${self.address}:${options.restApiPort}` },
        // The listed endpoints only: etcd's own member list advertises its TLS port.
        etcd3: { hosts: [...context.etcd], protocol: "http", use_proxies: true },
        bootstrap: {
            dcs: patroniDynamicConfig(options, members.length),
            initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
            ...backup.bootstrap,
        },
        postgresql: {
            listen: `0.0.0.0:${options.port}`,
            connect_address: `${self.address}:${options.port}`,
            data_dir: paths.dataDir,
            bin_dir: paths.binDir,
            pgpass: paths.pgpass,
            // Patroni's own connections over the socket, as the postgres user (peer), not over TCP.
            use_unix_socket: true,
            parameters: { unix_socket_directories: paths.socketDir },
            ...(backup.recovery_conf ? { recovery_conf: backup.recovery_conf } : {}),
            authentication: {
                superuser: { username: SYSTEM_ROLES.superuser },
                replication: { username: SYSTEM_ROLES.replication },
                rewind: { username: SYSTEM_ROLES.rewind },
            },
            pg_hba: [
                "local all all peer",
                // Patroni reads its own timeline over a replication connection to itself.
                `host replication ${SYSTEM_ROLES.replication} 127.0.0.1/32 scram-sha-256`,
                ...peers.map((p) => `host replication ${SYSTEM_ROLES.replication} ${p} scram-sha-256`),
                ...peers.map((p) => `host all ${SYSTEM_ROLES.superuser},${SYSTEM_ROLES.rewind} ${p} scram-sha-256`),
                `host all ${SYSTEM_ROLES.superuser},${SYSTEM_ROLES.rewind},${SYSTEM_ROLES.replication} 0.0.0.0/0 reject`,
                "host all all 0.0.0.0/0 scram-sha-256",
            ],
        },
        watchdog: { mode: "off" },
        tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
    };
    return `# picloud: Patroni member ${self.index} on ${self.pi}; rendered, do not edit\n${stringify(config, { lineWidth: 0, version: "1.1" })}`;
}

/**
 * Makes a running member read its changed patroni.yml: Patroni reloads it on SIGHUP (its pg_hba
 * and etcd endpoints among it, so a member added or moved is let in without a restart). A member
 * that does not run reads it when it starts.
 */
export function renderPatroniReload(self: Pick<ReplicaIdentity, "index">): string {
    return `docker kill --signal=HUP ${memberName(self)} >/dev/null 2>&1 || true`;
}

/** A member's Patroni name. */
export function memberName(m: Pick<ReplicaIdentity, "index">): string {
    return `${POSTGRES_WORKLOAD}-${m.index}`;
}


/** Where the hand-off finds the member: how to tell it runs, and its patronictl (in its container by default). */
export interface HandOffAccess {
    readonly running: string;
    readonly patronictl: readonly string[];
}

/**
 * The hand-off of a leader-last update, on the member's Pi before its container changes: when it
 * is the primary, Patroni switches over to a healthy standby (the synchronous one in synchronous
 * mode) and the step waits until it has; otherwise, or when the member is not running, nothing.
 */
export function renderPostgresHandOff(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: DatabaseConfig, access?: HandOffAccess): string {
    const container = memberName(self);
    if (members.length < 2) return `echo "picloud: ${container} has no standby to hand the primary to"`;
    const { running, patronictl } = access ?? { running: `docker inspect ${container}`, patronictl: ["docker", "exec", container, `${PATRONI_BIN}/patronictl`, "-c", PATRONI_CONFIG_IN_CONTAINER] };
    const primary = restAnswers(localRestUrl(options, "/primary"));
    return [
        `if ! ${running} >/dev/null 2>&1 || ! ${primary}; then echo "picloud: ${container} is not the primary"; exit 0; fi`,
        `${patronictl.map(shellQuote).join(" ")} switchover --leader ${container} --force >&2`,
        ...waitUntilLines(`! ${primary}`, 60, (s) => `picloud: ${container} is still the primary after ${s} s`),
        `echo "picloud: ${container} handed the primary over"`,
    ].join("\n");
}

/**
 * The members' workload: host networking, data on each member's Pi, the image built there, one
 * member at a time with the primary last. With backups, pgBackRest's configuration is mounted and
 * `env` carries the TLS bridge's settings.
 */
export function postgresWorkload(options: DatabaseConfig, pis: readonly PiConfig[], secretEnv: Workload["secretEnv"] = {}, env: Record<string, string> = {}): Workload {
    const dockerfile = renderPatroniDockerfile();
    return {
        name: POSTGRES_WORKLOAD,
        component: "database",
        configKey: KEY,
        image: patroniImageTag(dockerfile),
        build: { dockerfile },
        replicas: databaseMembers(options, pis),
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.port, host: options.port, configKey: `${KEY}.port` },
            { container: options.restApiPort, host: options.restApiPort, configKey: `${KEY}.restApiPort` },
        ],
        volumes: [
            { hostPath: `${DATABASE_CONFIG_DIR}/patroni.yml`, containerPath: PATRONI_CONFIG_IN_CONTAINER, readOnly: true },
            ...(options.backup ? [{ hostPath: `${DATABASE_CONFIG_DIR}/pgbackrest.conf`, containerPath: PGBACKREST_CONFIG_IN_CONTAINER, readOnly: true }] : []),
        ],
        env: { ...env, PATRONI_RESTAPI_USERNAME: SYSTEM_ROLES.restApi },
        secretEnv,
        data: { containerPath: POSTGRES_DATA_IN_CONTAINER, owner: POSTGRES_USER },
        fsyncHeavy: { allowSdCard: options.allowSdCard, allowSdCardKey: `${KEY}.allowSdCard` },
        updateStrategy: "leader-last",
        leaderHandOff: (self, members) => renderPostgresHandOff(self, members, options),
        // Patroni answers 200 on /health while PostgreSQL runs, primary or standby.
        healthcheck: { command: ["curl", "-fsS", "-o", "/dev/null", localRestUrl(options, "/health")], intervalSeconds: 10, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 120 },
        metrics: { port: options.restApiPort, path: "/metrics" },
        logLabels: { tier: "database", service: "postgres" },
    };
}

/**
 * The exporters: one per member, each reading its member over the LAN as the monitoring role
 * (its password a secret), spread over the Pis.
 */
export function exporterWorkload(options: DatabaseConfig, pis: readonly PiConfig[], members: readonly Pick<ReplicaIdentity, "address">[] = [], secretEnv: Workload["secretEnv"] = {}): Workload {
    return {
        name: EXPORTER_WORKLOAD,
        component: "database",
        configKey: `${KEY}.exporterPort`,
        image: POSTGRES_EXPORTER_IMAGE,
        command: [`--web.listen-address=:${options.exporterPort}`],
        replicas: databaseMembers(options, pis),
        spread: true,
        memoryMb: 64,
        cpus: 0.1,
        ports: [{ container: options.exporterPort, host: options.exporterPort, configKey: `${KEY}.exporterPort` }],
        env: { DATA_SOURCE_USER: SYSTEM_ROLES.monitor },
        secretEnv,
        perReplica: (self) => ({ env: { DATA_SOURCE_URI: `${members[self.index]?.address ?? "127.0.0.1"}:${options.port}/postgres?sslmode=disable` } }),
        metrics: { port: options.exporterPort, path: "/metrics" },
        logLabels: { tier: "database", service: "postgres-exporter" },
    };
}

/**
 * A SCRAM-SHA-256 verifier of `password` for `role`, as PostgreSQL stores it: the role is given
 * this instead of the password, so the password never reaches the server, its logs or its
 * statistics. The salt is derived from both, so the same password yields the same verifier and a
 * second run changes nothing.
 */
export function scramVerifier(role: string, password: string, iterations = 4096): string {
    const salt = createHmac("sha256", password).update(`picloud:${role}`).digest().subarray(0, 16);
    const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** A login role the cluster step keeps, with its verifier. */
export interface RoleVerifier {
    readonly role: string;
    readonly verifier: string;
    /** Roles it is granted (the monitoring role gets pg_monitor). */
    readonly grants?: readonly string[];
}

/**
 * The SQL that keeps the declared roles and databases: each role created when missing and given
 * its verifier, each database created when missing and owned by its role. Nothing is dropped:
 * data outlives config. Idempotent; runs in one psql session with ON_ERROR_STOP.
 */
export function renderRolesSql(roles: readonly RoleVerifier[], databases: Readonly<Record<string, { readonly owner: string }>>): string {
    const lines = ["SET log_statement = 'none';"];
    for (const r of roles) {
        lines.push(
            `SELECT 'CREATE ROLE ${r.role} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${r.role}')\\gexec`,
            `ALTER ROLE ${r.role} WITH LOGIN PASSWORD '${r.verifier}';`,
            ...(r.grants ?? []).map((g) => `GRANT ${g} TO ${r.role};`),
        );
    }
    for (const [name, db] of Object.entries(databases)) {
        lines.push(
            `SELECT 'CREATE DATABASE ${name} OWNER ${db.owner}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${name}')\\gexec`,
            `ALTER DATABASE ${name} OWNER TO ${db.owner};`,
        );
    }
    return `${lines.join("\n")}\n`;
}

/** What the cluster step needs. */
export interface ClusterStepInput {
    /** Runs psql and curl where they are (`docker exec -i postgres-0`); empty on a host that has them. */
    readonly exec: readonly string[];
    readonly members: readonly Pick<ReplicaIdentity, "address">[];
    readonly options: DatabaseConfig;
    /** Seconds to wait for a primary; default 300 (a new cluster's first member initialises first). */
    readonly waitSeconds?: number;
}

/**
 * The cluster step, run on the first member's Pi once every member runs, and again whenever its
 * inputs change. Its stdin: the REST API's password, the superuser's, then the SQL of
 * {@link renderRolesSql}. It finds the primary by asking each member's REST API, applies the
 * dynamic settings there (`PATCH /config`: what `bootstrap.dcs` set only at the first start), and
 * runs the SQL on the primary. Passwords go into a curl config file and psql's environment, both
 * inside the process, never onto a command line.
 */
export function renderClusterStep(input: ClusterStepInput): string {
    const { options } = input;
    const wait = input.waitSeconds ?? 300;
    const exec = input.exec.map(shellQuote).join(" ");
    const config = JSON.stringify(patroniDynamicConfig(options, input.members.length));
    const rest = (address: string, path: string) => `http://${address}:${options.restApiPort}${path}`;
    const lines = [
        "#!/usr/bin/env bash",
        "# picloud: the database's cluster step (settings, roles, databases)",
        "set -euo pipefail",
        "IFS= read -r api_password",
        "IFS= read -r superuser_password",
        "sql=$(cat)",
        "primary=''",
        "find_primary() {",
        ...input.members.map(
            (m) => `    if ${restAnswers(rest(m.address, "/primary"))}; then primary=${shellQuote(m.address)}; return 0; fi`,
        ),
        "    return 1",
        "}",
        ...waitUntilLines("find_primary", wait, (s) => `picloud: no database member is the primary after ${s} s: settings and roles are left as they are`),
        'echo "picloud: the primary is $primary"',
        // The REST API's credentials in a curl config on stdin, not in curl's arguments.
        `printf 'user = "${SYSTEM_ROLES.restApi}:%s"\\n' "$api_password" | curl -fsS --max-time 30 -K - -X PATCH -H 'Content-Type: application/json' --data-binary ${shellQuote(config)} "http://$primary:${options.restApiPort}/config" >/dev/null`,
        'echo "picloud: applied the cluster settings"',
        // psql inside the member's container, the password read from stdin into its environment.
        `printf '%s\\n%s\\n' "$superuser_password" "$sql" | ${exec}${exec ? " " : ""}sh -c 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec psql -X -q -v ON_ERROR_STOP=1 -h "$1" -p ${options.port} -U ${SYSTEM_ROLES.superuser} -d postgres' sh "$primary" >&2`,
        `echo "picloud: ${Object.keys(options.roles).length} role(s) and ${Object.keys(options.databases).length} database(s) as declared"`,
        "",
    ];
    return lines.join("\n");
}
