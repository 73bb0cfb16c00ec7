import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { shellcheck } from "../../../test/support/scripts";
import { BACKUP_SKIPPED } from "../../renderers/backupTimer";
import { databaseSchema } from "./config";
import {
    BRIDGE_ENV,
    MEMBER_ENTRYPOINT,
    RESTORE_METHOD,
    archiveCommand,
    backupTypeLine,
    bridgeEnvironment,
    pgbackrestTime,
    renderBackupCommand,
    renderMemberEntrypoint,
    renderPgbackrestConf,
    renderRestoreRejoin,
    renderRestoreReset,
    renderRestoreRun,
    renderRestoreStop,
    restoreId,
    restoreInvocation,
    s3Target,
} from "./pgbackrest";
import { postgresParameters, postgresWorkload, renderPatroniDockerfile, renderPatroniYml } from "./postgres";

const withBackup = databaseSchema.parse({ backup: { bucket: "database", key: "database" } });
const backup = withBackup.backup!;
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}`, dataPath: `/srv/picloud/data/postgres-${index}` }));
const s3 = s3Target("http://s3.blob.dev.internal:3900", "garage");
const access = { exec: ["docker", "exec", "postgres-0"], stop: "docker stop postgres-0", start: "docker start postgres-0", running: "true", socketDir: "/var/run/postgresql" };
const yml = (options = withBackup) => YAML.parse(renderPatroniYml(members[0], members, options, { scope: "dev", etcd: ["10.0.0.11:2383"] }));

describe("the database's backups", () => {
    it("keeps archiving on with or without backups, so turning them on needs no restart, and archives to pgBackRest only with them", () => {
        const without = postgresParameters(databaseSchema.parse({}));
        expect(without).toMatchObject({ archive_mode: "on", archive_command: "/bin/true" });
        expect(without).not.toHaveProperty("archive_timeout");
        expect(postgresParameters(withBackup)).toMatchObject({ archive_mode: "on", archive_command: archiveCommand(backup), archive_timeout: "60s" });
        expect(archiveCommand(backup)).toBe('pgbackrest --stanza=picloud archive-push "%p"');
        // Standbys fetch archived WAL only when there is an archive.
        expect(yml().postgresql.recovery_conf.restore_command).toContain("archive-get");
        expect(yml(databaseSchema.parse({})).postgresql.recovery_conf).toBeUndefined();
    });

    it("points pgBackRest at the bridge on loopback, signed for blob storage's host, with no secret in its file", () => {
        const conf = renderPgbackrestConf(backup, { scope: "dev", s3, port: 5432, paths: { dataDir: "/var/lib/postgresql/data/pgdata", socketDir: "/var/run/postgresql" } });
        const lines = new Set(conf.split("\n"));
        for (const line of ["repo1-path=/dev", "repo1-s3-bucket=database", "repo1-s3-endpoint=s3.blob.dev.internal", "repo1-storage-host=127.0.0.1", "repo1-storage-port=8443", "repo1-retention-full=2", "[picloud]", "pg1-path=/var/lib/postgresql/data/pgdata"]) {
            expect(lines.has(line), line).toBe(true);
        }
        expect(conf).not.toMatch(/key-secret|repo1-s3-key=/);
        expect(bridgeEnvironment(backup, s3)).toEqual({ [BRIDGE_ENV.port]: "8443", [BRIDGE_ENV.upstream]: "s3.blob.dev.internal:3900" });
        expect(s3Target("http://10.0.0.5", "garage").port).toBe(80);
    });

    it("builds the entrypoint into the image exactly as rendered, and mounts pgBackRest's file only with backups", () => {
        const dockerfile = renderPatroniDockerfile();
        const b64 = /RUN echo ([A-Za-z0-9+/=]+) \| base64 -d >/.exec(dockerfile)![1];
        expect(Buffer.from(b64, "base64").toString()).toBe(renderMemberEntrypoint("/opt/patroni/bin/patroni"));
        expect(dockerfile).toContain(`ENTRYPOINT ["${MEMBER_ENTRYPOINT}"]`);
        expect(dockerfile).toMatch(/install -y --no-install-recommends .*pgbackrest socat openssl/);
        const sh = shellcheck(renderMemberEntrypoint("/opt/patroni/bin/patroni"), "sh");
        expect(sh.status, sh.output).toBe(0);
        const pis = members.map((m) => ({ name: m.pi, storage: "ssd" }) as never);
        expect(postgresWorkload(withBackup, pis).volumes!.map((v) => v.containerPath)).toContain("/etc/pgbackrest/pgbackrest.conf");
        expect(postgresWorkload(databaseSchema.parse({}), pis).volumes!.map((v) => v.containerPath)).not.toContain("/etc/pgbackrest/pgbackrest.conf");
    });

    it("backs up on the primary only (a standby's run is skipped), full on the configured day, in scripts that pass shellcheck", () => {
        const command = renderBackupCommand(withBackup, backup, access.exec, BACKUP_SKIPPED);
        const result = shellcheck(`#!/usr/bin/env bash\nset -euo pipefail\n${command}\n`);
        expect(result.status, result.output).toBe(0);
        expect(command).toContain(`exit ${BACKUP_SKIPPED}`);
        expect(command).toContain("'docker' 'exec' 'postgres-0' pgbackrest --stanza=picloud stanza-create");
        expect(backupTypeLine(backup)).toContain('"$(date +%u)" = 7');
        expect(backupTypeLine({ ...backup, fullOn: "Mon" })).toContain('"$(date +%u)" = 1');
    });
});

describe("the database's restore", () => {
    const restoring = databaseSchema.parse({ backup: { bucket: "database", key: "database" }, restore: { to: "2026-12-02T10:30:00.123456+01:00" } });

    it("takes pgBackRest's time format in UTC, and restores everything archived for latest", () => {
        expect(pgbackrestTime("2026-12-02T10:30:00.123456+01:00")).toBe("2026-12-02 09:30:00.123+00");
        expect(pgbackrestTime("2026-12-02T10:30:00Z")).toBe("2026-12-02 10:30:00.000+00");
        expect(restoreInvocation("2026-12-02T10:30:00Z")).toBe("pgbackrest --stanza=picloud --type=time '--target=2026-12-02 10:30:00.000+00' --target-action=promote restore");
        expect(restoreInvocation("latest")).toBe("pgbackrest --stanza=picloud --type=default restore");
    });

    it("bootstraps by the restore only while restore is set, pgBackRest's recovery settings kept", () => {
        const bootstrap = yml(restoring).bootstrap;
        expect(bootstrap.method).toBe(RESTORE_METHOD);
        expect(bootstrap[RESTORE_METHOD]).toMatchObject({ no_params: true, keep_existing_recovery_conf: true });
        expect(bootstrap[RESTORE_METHOD].command).toContain("--type=time '\\''--target=2026-12-02 09:30:00.123+00'\\''");
        expect(bootstrap.initdb).toBeDefined();
        expect(yml().bootstrap.method).toBeUndefined();
    });

    it("accepts only latest or an ISO time with its zone", () => {
        for (const to of ["latest", "2026-12-02T10:30:00Z", "2026-12-02T10:30:00.5-05:00"]) expect(databaseSchema.safeParse({ restore: { to } }).success, to).toBe(true);
        for (const to of ["2026-12-02 10:30:00", "2026-12-02T10:30:00", "yesterday", "2026-13-02T10:30:00Z"]) expect(databaseSchema.safeParse({ restore: { to } }).success, to).toBe(false);
    });

    it("runs each step once per moment (a marker per step), in scripts that pass shellcheck", () => {
        const target = { to: "2026-12-02T10:30:00Z" };
        const steps = [
            renderRestoreStop(members[1], target, access, `${members[1].dataPath}/pgdata`),
            renderRestoreReset("dev", ["10.0.0.11:2383", "10.0.0.12:2383"], target),
            renderRestoreRun(withBackup, target, access),
            renderRestoreRejoin(members[1], withBackup, target, access),
        ];
        for (const script of steps) {
            const result = shellcheck(script);
            expect(result.status, result.output).toBe(0);
            expect(script).toContain(`/var/lib/picloud/database-restore/${restoreId(target.to)}.`);
            expect(script.indexOf("already done")).toBeLessThan(script.indexOf("touch "));
        }
        expect(restoreId("latest")).not.toBe(restoreId(target.to));
        // The data is set aside, never removed.
        expect(steps[0]).toContain(`mv '${members[1].dataPath}/pgdata' '${members[1].dataPath}/pgdata.before-restore-${restoreId(target.to)}'`);
        expect(steps.join("\n")).not.toMatch(/rm -rf/);
        // etcd's range for the cluster's prefix, and nothing beyond it.
        const body = JSON.parse(/-d '(\{[^']+\})'/.exec(steps[1])![1]);
        expect(Buffer.from(body.key, "base64").toString()).toBe("/picloud/patroni/dev/");
        expect(Buffer.from(body.range_end, "base64").toString()).toBe("/picloud/patroni/dev0");
        // The moment leaves the restored primary's settings before the standbys copy it.
        expect(steps[2]).toContain("ALTER SYSTEM RESET recovery_target_time");
        expect(steps[2].indexOf("ALTER SYSTEM RESET")).toBeLessThan(steps[2].indexOf("--type=full backup"));
    });
});
