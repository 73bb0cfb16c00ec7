import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { shellcheck } from "../../../test/support/scripts";
import { monitoringGaps } from "../../monitoring/contract";
import { renderBackupRunner, renderBackupTimerScript } from "../../renderers/backupTimer";
import { monitoringSchema } from "./config";
import { MONITORING_IMAGES } from "./images";
import {
    METRICS_BACKUP_CREDENTIALS,
    METRICS_BACKUP_NAME,
    MetricsBackupSite,
    VMBACKUP,
    VMBACKUP_DOCKERFILE,
    VMBACKUP_IMAGE,
    metricsBackupDestination,
    METRICS_BACKUP_RESOLVER,
    renderMetricsBackupCommand,
    renderMetricsBackupResolver,
    renderMetricsRestoreScript,
    renderS3Credentials,
    victoriaMetricsVersion,
    vmbackupFlags,
} from "./metricsBackup";
import { victoriaMetricsSpec } from "./victoriaMetrics";

const site: MetricsBackupSite = {
    container: "victoria-metrics-0",
    hostDataPath: "/srv/picloud/data/victoria-metrics-0",
    storagePath: "/storage",
    httpPort: 8428,
    url: metricsBackupDestination("backups", "prod"),
    endpoint: "http://s3.blob.prod.picloud:3900",
    region: "garage",
    nameserver: "10.20.0.32",
};
const TIMER = "picloud-backup-victoria-metrics.timer";

describe("VictoriaMetrics' backup tools", () => {
    it("are vmbackup and vmrestore at the version of VictoriaMetrics' image, in one image", () => {
        expect(victoriaMetricsVersion()).toBe(/:v([0-9.]+)@/.exec(MONITORING_IMAGES.victoriaMetrics)![1]);
        expect(VMBACKUP.pkg).toBe("github.com/VictoriaMetrics/VictoriaMetrics/app/vmbackup");
        expect(VMBACKUP_DOCKERFILE).toContain(`app/vmbackup@v${VMBACKUP.version} github.com/VictoriaMetrics/VictoriaMetrics/app/vmrestore@v${VMBACKUP.version}`);
        expect(VMBACKUP_IMAGE).toMatch(new RegExp(`^picloud/vmbackup:${VMBACKUP.version.replace(/\./g, "\\.")}-[0-9a-f]{12}$`));
        expect(() => victoriaMetricsVersion("victoriametrics/victoria-metrics:latest")).toThrow(/expected VictoriaMetrics' image as victoriametrics\/victoria-metrics:v<x\.y\.z>@sha256/);
    });

    it("back up into the stack's own folder of the bucket, through a snapshot, taking no port", () => {
        expect(site.url).toBe("s3://backups/prod/victoria-metrics");
        const flags = vmbackupFlags({ storagePath: "/storage", snapshotCreateUrl: "http://127.0.0.1:8428/snapshot/create", store: { url: site.url, endpoint: site.endpoint, credentialsFile: "/c" }, listen: "/vmbackup.sock" });
        expect(flags).toContain("-snapshot.createURL=http://127.0.0.1:8428/snapshot/create");
        expect(flags).toContain("-dst=s3://backups/prod/victoria-metrics");
        expect(flags).toContain("-customS3Endpoint=http://s3.blob.prod.picloud:3900");
        expect(flags).toContain("-httpListenAddr=unix:/vmbackup.sock");
    });

    it("keep the key in an AWS credentials file, and refuse anything that is not a key", () => {
        expect(renderS3Credentials("GK0123abcd", "00ff")).toBe("[default]\naws_access_key_id = GK0123abcd\naws_secret_access_key = 00ff\n");
        expect(() => renderS3Credentials("GK01\n[evil]", "00")).toThrow(/expected an S3 access key id and secret/);
    });
});

describe("one backup run on the store's Pi", () => {
    const command = renderMetricsBackupCommand(site);

    it("runs vmbackup with the data folder read-only, the credentials read-only, against the replica's published port", () => {
        const run = command.split("\n").at(-1)!;
        expect(run).toMatch(/^docker run --rm --network host /);
        expect(run).toContain("-v '/srv/picloud/data/victoria-metrics-0:/storage:ro'");
        expect(run).toContain(`-v /etc/picloud/victoria-metrics-backup:/etc/picloud/victoria-metrics-backup:ro`);
        expect(run).toContain(`'-credsFilePath=${METRICS_BACKUP_CREDENTIALS}'`);
        expect(run).toContain("-e AWS_REGION='garage'");
        expect(run).toContain(`'${VMBACKUP_IMAGE}' '-storageDataPath=/storage'`);
        expect(run).not.toContain("--entrypoint");
    });

    it("resolves blob storage's registry name through the Pi's own CoreDNS, and through the Pi's resolver in a stack without the registry", () => {
        expect(renderMetricsBackupResolver("10.20.0.32")).toBe("nameserver 10.20.0.32\n");
        expect(() => renderMetricsBackupResolver("10.20.0.32\nnameserver 1.1.1.1")).toThrow(/expected the Pi's IPv4 address as the tools' nameserver/);
        expect(command.split("\n").at(-1)).toContain(`-v ${METRICS_BACKUP_RESOLVER}:/etc/resolv.conf:ro`);
        const { nameserver: _, ...withoutRegistry } = site;
        const plain = renderMetricsBackupCommand({ ...withoutRegistry, endpoint: "http://10.20.0.31:3900" });
        expect(plain).not.toContain("resolv.conf");
    });

    it("builds the image first when the Pi does not have it, from the Dockerfile inline, in a timer script that passes shellcheck", () => {
        expect(command).toContain(`docker image inspect --format '{{.Id}}' '${VMBACKUP_IMAGE}'`);
        expect(command).toContain(`<<'PICLOUD_DOCKERFILE'\n${VMBACKUP_DOCKERFILE}PICLOUD_DOCKERFILE\n`);
        const input = { name: METRICS_BACKUP_NAME, onCalendar: "*-*-* 03:15", command, textfileDir: "/var/lib/picloud/textfile" };
        for (const script of [renderBackupTimerScript(input), renderBackupRunner(input)]) {
            const result = shellcheck(script);
            expect(result.status, result.output).toBe(0);
        }
    });
});

describe("the restore tool", () => {
    // Run here, so without a nameserver: its resolver file would go to this machine's /etc.
    const { nameserver: _, ...withoutRegistry } = site;
    const script = renderMetricsRestoreScript(withoutRegistry, TIMER);
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    /** Runs the tool with `docker` and `systemctl` stubs that log each call; `docker run` exits `runStatus`, `docker stop` `stopStatus`. */
    function restore(args: string[], runStatus: number, stopStatus = 0) {
        const dir = mkdtempSync(path.join(tmpdir(), "picloud-restore-"));
        dirs.push(dir);
        const log = path.join(dir, "calls");
        for (const [name, body] of [
            ["docker", `echo "docker $*" >> ${log}; if [ "$1" = run ]; then cat >/dev/null; exit ${runStatus}; fi; if [ "$1" = stop ]; then exit ${stopStatus}; fi; if [ "$1" = image ]; then echo sha256:abc; fi`],
            ["systemctl", `echo "systemctl $*" >> ${log}`],
        ]) {
            writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`);
            chmodSync(path.join(dir, name), 0o755);
        }
        writeFileSync(path.join(dir, "tool"), script);
        const r = spawnSync("bash", [path.join(dir, "tool"), ...args], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, input: "" });
        let calls: string[] = [];
        try {
            calls = readFileSync(log, "utf8").trim().split("\n");
        } catch {
            // nothing was called
        }
        return { status: r.status, stderr: r.stderr, stdout: r.stdout, calls };
    }

    it("passes shellcheck, and resolves through the Pi's CoreDNS as the backup does", () => {
        for (const tool of [script, renderMetricsRestoreScript(site, TIMER)]) {
            const result = shellcheck(tool);
            expect(result.status, result.output).toBe(0);
        }
        expect(renderMetricsRestoreScript(site, TIMER)).toContain(`-v ${METRICS_BACKUP_RESOLVER}:/etc/resolv.conf:ro`);
    });

    it("does nothing without --yes, and says what it would lose", () => {
        const r = restore([], 0);
        expect(r.status).toBe(2);
        expect(r.stderr).toContain("what it stored since that backup is lost");
        expect(r.calls).toEqual([]);
    });

    it("stops the timer and the container, syncs the data with vmrestore, and starts both again", () => {
        const r = restore(["--yes"], 0);
        expect(r.status, r.stderr).toBe(0);
        const verbs = r.calls.map((c) => c.split(" ").slice(0, 2).join(" "));
        expect(verbs).toEqual(["docker image", "systemctl stop", "docker stop", "docker run", "docker start", "systemctl start"]);
        const run = r.calls.find((c) => c.startsWith("docker run"))!;
        expect(run).toContain("-v /srv/picloud/data/victoria-metrics-0:/storage ");
        expect(run).toContain(`--entrypoint /vmrestore ${VMBACKUP_IMAGE} -src=s3://backups/prod/victoria-metrics -storageDataPath=/storage`);
        expect(r.stdout).toContain("victoria-metrics-0 restored from s3://backups/prod/victoria-metrics");
    });

    it("starts the container and the timer again when the container would not stop", () => {
        const r = restore(["--yes"], 0, 1);
        expect(r.status).toBe(1);
        expect(r.calls.map((c) => c.split(" ").slice(0, 2).join(" "))).toEqual(["docker image", "systemctl stop", "docker stop", "docker start", "systemctl start"]);
    });

    it("starts the container and the timer again when vmrestore fails, and fails saying so", () => {
        const r = restore(["--yes"], 3);
        expect(r.status).toBe(3);
        expect(r.calls.slice(-2).map((c) => c.split(" ").slice(0, 2).join(" "))).toEqual(["docker start", "systemctl start"]);
        expect(r.stderr).toContain("vmrestore failed (exit 3)");
    });
});

describe("VictoriaMetrics' monitoring with backups", () => {
    it("alerts when the last backup is too old and shows its age, only when backups are configured", () => {
        const backedUp = monitoringSchema.parse({ victoriaMetrics: { backup: { bucket: "backups", key: "backups", maxAgeHours: 30 } } }).victoriaMetrics!;
        const spec = victoriaMetricsSpec(backedUp, "10.0.0.2");
        const rule = spec.alertRules.find((r) => r.alert === "VictoriaMetricsBackupTooOld");
        expect(rule?.expr).toContain(`picloud_backup_last_success_timestamp_seconds{backup="${METRICS_BACKUP_NAME}"}`);
        expect(rule?.expr).toContain(`> ${30 * 3600}`);
        expect(monitoringGaps(spec)).toEqual([]);
        expect(spec.dashboard.panels.find((p) => p.title === "Since the last backup")?.expr).toBe(`time() - max(picloud_backup_last_success_timestamp_seconds{backup="${METRICS_BACKUP_NAME}"})`);
        const plain = victoriaMetricsSpec(monitoringSchema.parse({ victoriaMetrics: {} }).victoriaMetrics!, "10.0.0.2");
        expect(plain.alertRules.map((r) => r.alert)).not.toContain("VictoriaMetricsBackupTooOld");
        expect(plain.dashboard.panels.map((p) => p.title)).not.toContain("Since the last backup");
    });
});
