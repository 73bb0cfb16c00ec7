/** The database's alerts, run by promtool test rules on series shaped as Patroni and postgres_exporter serve them. */
import { describe, expect, it } from "vitest";
import { firedAlert, promtoolTestRules } from "../../../test/support/promtool";
import type { AlertRule } from "../../monitoring/contract";
import { databaseSchema } from "./config";
import { PATRONI_JOB, POSTGRES_JOB, databaseSpec } from "./specs";

const options = databaseSchema.parse({});
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));
const spec = databaseSpec(options, members, members.map((m) => `10.0.0.${21 + m.index}:9187`));

const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
const patroni = (metric: string, i: number) => `${metric}{job="${PATRONI_JOB}",instance="${members[i].address}:8008",tier="database",component="database"}`;
const exporter = (metric: string, i: number, extra = "") => `${metric}{job="${POSTGRES_JOB}",instance="10.0.0.${21 + i}:9187",tier="database",component="database"${extra}}`;
const fired = (r: AlertRule, labels: Record<string, string> = {}, value = "") => firedAlert(r, "database", labels, value);

const promtool = (tests: object[]) => promtoolTestRules([spec], tests);

/** Only the labels that identify the alert (promtool compares them all, annotations left out). */
const only = (r: AlertRule, at: string, alerts: object[]) => ({ alertname: r.alert, eval_time: at, exp_alerts: alerts });

describe("the database's alerts, run by promtool test rules", () => {
    it("PostgresNoPrimary fires once no member has been the primary for 30 s, not during a failover's first seconds", () => {
        const r = rule("PostgresNoPrimary");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: patroni("patroni_primary", 0), values: "1x4 0x20" },
                    { series: patroni("patroni_primary", 1), values: "0x24" },
                    { series: patroni("patroni_primary", 2), values: "0x24" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "1m30s", []), only(r, "3m", [fired(r)])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresNoPrimary stays quiet when another member took over", () => {
        const r = rule("PostgresNoPrimary");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: patroni("patroni_primary", 0), values: "1x4 0x20" },
                    { series: patroni("patroni_primary", 1), values: "0x5 1x19" },
                ],
                alert_rule_test: [only(r, "3m", [])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresTwoPrimaries fires when two members say they are the primary for a minute", () => {
        const r = rule("PostgresTwoPrimaries");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: patroni("patroni_primary", 0), values: "1x20" },
                    { series: patroni("patroni_primary", 1), values: "0x4 1x16" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "3m", [fired(r, {}, "2")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresReplicationLag fires for the standby that lags past maxLagSeconds, by instance", () => {
        const r = rule("PostgresReplicationLag");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: exporter("pg_replication_lag_seconds", 1), values: "0x20" },
                    { series: exporter("pg_replication_lag_seconds", 2), values: "0x2 45x18" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "4m", [fired(r, { instance: "10.0.0.23:9187" }, "45s")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresNoSynchronousStandby fires when no standby confirms commits for two minutes", () => {
        const r = rule("PostgresNoSynchronousStandby");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: patroni("patroni_sync_standby", 1), values: "1x2 0x20" },
                    { series: patroni("patroni_sync_standby", 2), values: "0x22" },
                ],
                alert_rule_test: [only(r, "1m", []), only(r, "4m", [fired(r)])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresTooManyConnections fires over 80 % of max_connections for five minutes", () => {
        const r = rule("PostgresTooManyConnections");
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    { series: exporter("pg_settings_max_connections", 0), values: "100x10" },
                    { series: exporter("pg_stat_activity_count", 0, ',datname="app",state="active"'), values: "50 50 70x8" },
                    { series: exporter("pg_stat_activity_count", 0, ',datname="app",state="idle"'), values: "10 10 20x8" },
                ],
                alert_rule_test: [only(r, "3m", []), only(r, "9m", [fired(r, { instance: "10.0.0.21:9187" }, "90%")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresDeadlocks fires when a database's deadlock counter rises", () => {
        const r = rule("PostgresDeadlocks");
        const result = promtool([
            {
                interval: "1m",
                input_series: [{ series: exporter("pg_stat_database_deadlocks", 0, ',datname="app"'), values: "0x5 1x5" }],
                alert_rule_test: [only(r, "4m", []), only(r, "7m", [fired(r, { instance: "10.0.0.21:9187", datname: "app" }, "1")])],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });
});

describe("the database's backup alerts, run by promtool test rules", () => {
    const backedUp = databaseSchema.parse({ backup: { bucket: "database", key: "database" } });
    const withBackups = databaseSpec(backedUp, members, members.map((m) => `10.0.0.${21 + m.index}:9187`));
    const backupRule = (alert: string): AlertRule => withBackups.alertRules.find((r) => r.alert === alert)!;
    const run = (tests: object[], evaluationInterval?: string) => promtoolTestRules([withBackups], tests, evaluationInterval);
    // As node_exporter serves it from each member's Pi: only the primary's Pi records a backup.
    const lastBackup = (i: number) => `picloud_backup_last_success_timestamp_seconds{job="monitoring-node",instance="10.0.0.${11 + i}:9100",backup="database"}`;

    it("DatabaseBackupTooOld watches the newest backup of any member's Pi: quiet while the primary moved and backs up there, firing once none is 26 h old", () => {
        const r = backupRule("DatabaseBackupTooOld");
        expect(r).toBeDefined();
        const result = run([
            {
                interval: "1h",
                input_series: [
                    // The old primary's Pi backed up at 0 and stopped (its member became a standby); the new one backed up at 20 h.
                    { series: lastBackup(0), values: "0x60" },
                    { series: lastBackup(1), values: "_x19 72000x41" },
                ],
                alert_rule_test: [only(r, "27h", []), only(r, "45h", []), only(r, "48h", [fired(r, { backup: "database" })])],
            },
        ], "5m");
        expect(result.status, result.out).toBe(0);
    });

    it("DatabaseBackupTooOld fires when no backup was ever recorded", () => {
        const r = backupRule("DatabaseBackupTooOld");
        const result = run([{ interval: "5m", input_series: [{ series: exporter("pg_up", 0), values: "1x10" }], alert_rule_test: [only(r, "10m", []), only(r, "20m", [fired(r, { backup: "database" })])] }]);
        expect(result.status, result.out).toBe(0);
    });

    it("PostgresWalArchiveFailing fires while archiving fails and nothing is archived, not for a failure among successes", () => {
        const r = backupRule("PostgresWalArchiveFailing");
        const failing = run([
            {
                interval: "1m",
                input_series: [
                    { series: exporter("pg_stat_archiver_failed_count", 0), values: "0+1x30" },
                    { series: exporter("pg_stat_archiver_archived_count", 0), values: "12x30" },
                ],
                alert_rule_test: [only(r, "5m", []), only(r, "20m", [fired(r, { instance: "10.0.0.21:9187" })])],
            },
        ]);
        expect(failing.status, failing.out).toBe(0);
        const flaky = run([
            {
                interval: "1m",
                input_series: [
                    { series: exporter("pg_stat_archiver_failed_count", 0), values: "0 1x30" },
                    { series: exporter("pg_stat_archiver_archived_count", 0), values: "12+1x30" },
                ],
                alert_rule_test: [only(r, "20m", [])],
            },
        ]);
        expect(flaky.status, flaky.out).toBe(0);
    });
});
