/**
 * How the database tier is watched, reached and let through the firewall, pure: Patroni's and
 * postgres_exporter's metrics and the alerts on them, the load balancer's primary and standby
 * services, the flows between members, to etcd and from clients, and what an app gets to connect.
 */
import type { PiConfig } from "../../config/schema";
import { MonitoringSpec, backupAgeRule, targetDownRule } from "../../monitoring/contract";
import { BACKUP_METRIC } from "../../renderers/backupTimer";
import type { Flow } from "../../network/flows";
import type { ClientEnvironment, ReplicaIdentity } from "../../runtime/workload";
import type { HaproxyTcpService } from "../loadBalancer/renderers";
import type { DatabaseConfig } from "./config";
import { BACKUP_NAME } from "./pgbackrest";
import { SYSTEM_ROLES, memberName, synchronousMode } from "./postgres";

const KEY = "picloud:tiers.database";
/** The Prometheus jobs: Patroni's REST API on each member, and the exporters. */
export const PATRONI_JOB = "database-patroni";
export const POSTGRES_JOB = "database-postgres";

/** The database's alerts and dashboard. `exporters` are the exporters' `host:port`, in member order. */
export function databaseSpec(options: DatabaseConfig, members: readonly ReplicaIdentity[], exporters: readonly string[]): MonitoringSpec {
    const patroni = { job: PATRONI_JOB, targets: members.map((m) => `${m.address}:${options.restApiPort}`), labels: { tier: "database" } };
    const exporter = { job: POSTGRES_JOB, targets: [...exporters], labels: { tier: "database" } };
    const p = `job="${PATRONI_JOB}"`;
    const e = `job="${POSTGRES_JOB}"`;
    const sync = synchronousMode(options, members.length);
    return {
        component: "database",
        scrapeTargets: [patroni, exporter],
        alertRules: [
            targetDownRule(patroni),
            targetDownRule(exporter),
            {
                alert: "PostgresDown",
                expr: `patroni_postgres_running{${p}} == 0`,
                for: "1m",
                severity: "critical",
                summary: "PostgreSQL is not running on {{ $labels.instance }}",
                description: "Patroni runs but its PostgreSQL does not: it is starting, recovering or failing to start. docker logs postgres-N on the member's Pi says why.",
            },
            {
                alert: "PostgresNoPrimary",
                expr: `(max(patroni_primary{${p}}) or vector(0)) == 0`,
                for: "30s",
                severity: "critical",
                summary: "The database has no primary: writes fail",
                description: "No member holds the leader lock. Patroni promotes a standby within the lock's time to live; if this lasts, etcd may be unreachable or no standby is fit (in synchronous mode only the synchronous one is).",
            },
            {
                alert: "PostgresTwoPrimaries",
                expr: `sum(patroni_primary{${p}}) > 1`,
                for: "1m",
                severity: "critical",
                summary: "{{ $value }} database members say they are the primary",
                description: "More than one member runs read-write: clients may write to both. Patroni demotes a primary that loses its lock; stop the one the load balancer does not route to.",
            },
            {
                alert: "PostgresReplicationLag",
                expr: `max by (instance) (pg_replication_lag_seconds{${e}}) > ${options.maxLagSeconds}`,
                for: "2m",
                severity: "warning",
                summary: "Standby {{ $labels.instance }} is {{ $value | humanizeDuration }} behind the primary",
                description: `A standby more than ${options.maxLagSeconds} s behind serves stale reads, and is not promoted while it lags more than 1 MiB. Its disk, CPU or network is too slow for the primary's writes.`,
            },
            ...(sync
                ? [
                      {
                          alert: "PostgresNoSynchronousStandby",
                          expr: `(sum(patroni_sync_standby{${p}}) or vector(0)) == 0`,
                          for: "2m",
                          severity: "warning" as const,
                          summary: "No standby is synchronous: a failover now could lose the last commits",
                          description: "Synchronous mode is on, but no standby confirms commits: the primary goes on alone. Bring a standby back.",
                      },
                  ]
                : []),
            {
                alert: "PostgresTooManyConnections",
                expr: `sum by (instance) (pg_stat_activity_count{${e}}) / max by (instance) (pg_settings_max_connections{${e}}) > 0.8`,
                for: "5m",
                severity: "warning",
                summary: "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its connections",
                description: "Beyond max_connections new connections are refused. Pool connections in the apps, or raise picloud:tiers.database.maxConnections (with the memory to match).",
            },
            {
                alert: "PostgresDeadlocks",
                expr: `sum by (instance, datname) (increase(pg_stat_database_deadlocks{${e}}[5m])) > 0`,
                severity: "warning",
                summary: "Deadlocks in database {{ $labels.datname }} on {{ $labels.instance }}",
                description: "{{ $value }} transactions were aborted to break deadlocks in the last 5 minutes: two code paths take the same locks in different orders.",
            },
            {
                alert: "PostgresExporterCannotConnect",
                expr: `pg_up{${e}} == 0`,
                for: "2m",
                severity: "warning",
                summary: "postgres_exporter {{ $labels.instance }} cannot log in to its member",
                description: `The member is down or refuses ${SYSTEM_ROLES.monitor}: the database's own signals are blind for it.`,
            },
            {
                alert: "PostgresPendingRestart",
                expr: `max by (instance) (patroni_pending_restart{${p}}) == 1`,
                for: "1h",
                severity: "info",
                summary: "{{ $labels.instance }} waits for a restart to apply a changed setting",
                description: "A setting such as shared_buffers or max_connections changed; it takes effect once the member restarts: patronictl restart in a member's container, standbys first.",
            },
            ...(options.backup
                ? [
                      backupAgeRule(BACKUP_NAME, options.backup.maxAgeHours),
                      {
                          alert: "PostgresWalArchiveFailing",
                          // The archiver retries a failed segment every minute: failures that go on, and nothing archived meanwhile.
                          expr: `sum by (instance) (increase(pg_stat_archiver_failed_count{${e}}[10m])) > 0 and on (instance) sum by (instance) (increase(pg_stat_archiver_archived_count{${e}}[10m])) == 0`,
                          for: "5m",
                          severity: "critical" as const,
                          summary: "The primary {{ $labels.instance }} cannot archive its WAL to blob storage",
                          description: `pgBackRest's archive-push fails: a restore could not reach past the last archived segment, and WAL piles up on the primary's disk until it is full. docker logs postgres-N says why (blob storage down, the key ${options.backup.key} refused, or the stanza missing before the first backup).`,
                      },
                  ]
                : []),
        ],
        dashboard: {
            uid: "picloud-database",
            title: "picloud / database",
            panels: [
                { title: "Primary", expr: `patroni_primary{${p}}`, kind: "stat" },
                { title: "PostgreSQL running", expr: `patroni_postgres_running{${p}}`, kind: "stat" },
                { title: "Timeline", expr: `max(patroni_postgres_timeline{${p}})`, kind: "stat" },
                { title: "Replication lag", expr: `pg_replication_lag_seconds{${e}}`, unit: "s" },
                { title: "Connections", expr: `sum by (instance) (pg_stat_activity_count{${e}})` },
                { title: "Transactions", expr: `sum by (instance) (rate(pg_stat_database_xact_commit{${e}}[5m]))`, unit: "ops" },
                { title: "Deadlocks", expr: `sum by (instance) (increase(pg_stat_database_deadlocks{${e}}[5m]))` },
                ...(options.backup
                    ? [
                          { title: "Since the last backup", expr: `time() - max(${BACKUP_METRIC}{backup="${BACKUP_NAME}"})`, unit: "s" },
                          { title: "WAL archived", expr: `sum by (instance) (rate(pg_stat_archiver_archived_count{${e}}[15m]))`, unit: "ops" },
                          { title: "WAL archive failures", expr: `sum by (instance) (increase(pg_stat_archiver_failed_count{${e}}[15m]))` },
                      ]
                    : []),
            ],
        },
        logLabels: { tier: "database" },
    };
}

/** The load balancer's services: the primary (read-write) and the standbys (read-only), each by Patroni's role check. */
export function databaseServices(options: DatabaseConfig, members: readonly ReplicaIdentity[]): HaproxyTcpService[] {
    const servers = members.map((m) => ({ name: memberName(m), address: `${m.address}:${options.port}` }));
    return [
        { name: "database-primary", port: options.loadBalancer.primaryPort, servers, healthPath: "/primary", checkPort: options.restApiPort },
        { name: "database-replicas", port: options.loadBalancer.replicasPort, servers, healthPath: "/replica", checkPort: options.restApiPort },
    ];
}

/**
 * Patroni's REST API between the members, each member to etcd's DCS port, and PostgreSQL from
 * every other Pi (the standbys replicating, the exporters, the apps) and the operator.
 */
export function databaseFlows(options: DatabaseConfig, members: readonly ReplicaIdentity[], etcd: readonly { pi: string }[], dcsPort: number, pis: readonly PiConfig[]): Flow[] {
    const flows: Flow[] = [];
    for (const to of members) {
        for (const from of members.filter((m) => m.pi !== to.pi)) {
            flows.push({ from: { pi: from.pi }, to: to.pi, protocol: "tcp", port: options.restApiPort, purpose: `patroni from ${memberName(from)}`, declaredBy: `${KEY}.restApiPort` });
        }
        for (const from of pis.filter((p) => p.name !== to.pi)) {
            flows.push({ from: { pi: from.name }, to: to.pi, protocol: "tcp", port: options.port, purpose: `postgres from ${from.name}`, declaredBy: `${KEY}.port` });
        }
        flows.push({ from: { zone: "mgmt" }, to: to.pi, protocol: "tcp", port: options.port, purpose: "operator to postgres", declaredBy: `${KEY}.port` });
        for (const member of etcd.filter((m) => m.pi !== to.pi)) {
            flows.push({ from: { pi: to.pi }, to: member.pi, protocol: "tcp", port: dcsPort, purpose: `patroni ${memberName(to)} to etcd`, declaredBy: "picloud:tiers.registry.dcsPort" });
        }
    }
    return flows;
}

/** What an app that names a database gets: where and as whom to connect, plain, and the role's password as a secret (libpq's variables). */
export type DatabaseEnvironment = ClientEnvironment;

/**
 * Where clients reach the primary: `primary.database.<zone>` with a registry (the load balancer's
 * address where there is one, else every member, libpq picking the read-write one), else the
 * load balancer's address, else the members' addresses.
 */
export function databaseEndpoint(options: DatabaseConfig, members: readonly Pick<ReplicaIdentity, "address">[], lbAddress: string | undefined, zone: string | undefined): { host: string; port: number } {
    const port = lbAddress !== undefined ? options.loadBalancer.primaryPort : options.port;
    if (zone !== undefined) return { host: `primary.database.${zone}`, port };
    if (lbAddress !== undefined) return { host: lbAddress, port };
    return { host: members.map((m) => m.address).join(","), port };
}

/**
 * The names the tier answers to: `primary` and `replicas` where the load balancer serves them
 * (else every member, for libpq to choose), `postgres` for every member and `exporter` for the
 * exporters.
 */
export function databaseNames(members: readonly Pick<ReplicaIdentity, "address">[], exporters: readonly string[], lbAddresses: readonly string[] | undefined): { name: string; addresses: string[]; declaredBy: string }[] {
    const all = members.map((m) => m.address);
    const front = lbAddresses ?? all;
    return [
        { name: "primary.database", addresses: [...front], declaredBy: `${KEY}.loadBalancer` },
        { name: "replicas.database", addresses: [...front], declaredBy: `${KEY}.loadBalancer` },
        { name: "postgres.database", addresses: all, declaredBy: KEY },
        { name: "exporter.database", addresses: [...exporters], declaredBy: `${KEY}.exporterPort` },
    ];
}
