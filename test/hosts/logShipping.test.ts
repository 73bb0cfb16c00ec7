/**
 * Every log collected, for real (issue 13, part 6): VictoriaLogs, built from its Go module at the
 * image's release with the flags picloud renders, runs on one namespaced Debian host; two more get
 * PiHost's bootstrap with log shipping, so Debian's systemd-journal-upload sends their journals to
 * it. Entries written on them (one shaped as Docker's journald driver writes a container's, stream
 * labels and all) are found by LogsQL queries; entries logged while VictoriaLogs is stopped arrive
 * once it is back; a rebooted host (its journal is in RAM) ships what it logs after the boot; a
 * bootstrap without log shipping takes it all down again.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { realpathSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderPiBootstrap } from "../../components/host/piHost";
import { JOURNAL_UPLOAD_METRIC, LOG_SHIPPING_FILES, NODE_EXPORTER_TEXTFILE_DIR } from "../../components/renderers/hostScripts";
import { monitoringSchema } from "../../components/tiers/monitoring/config";
import { VICTORIA_LOGS_PATHS, journalUploadUrl, victoriaLogsFlags, victoriaLogsSpec } from "../../components/tiers/monitoring/victoriaLogs";
import { exposes, metricSelectors } from "../support/promql";
import { eventually } from "../support/eventually";
import { validator } from "../support/validators";
import { PiHostCommands, piHostCommands, runBootstrap, runRegistered, shipBootstrap, sshOnlyNetwork, testPi } from "./piHostCommands";
import { startTestbed, Testbed, TestHost } from "./testbed";

const options = monitoringSchema.parse({ victoriaLogs: {} }).victoriaLogs!;
const BOOTSTRAP = { timezone: "Etc/UTC", ntpServers: ["0.debian.pool.ntp.org"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
const VL_ON_HOST = "/opt/picloud-victoria-logs";
const VL_UNIT = "pct-victoria-logs";
const METRIC_FILE = `${NODE_EXPORTER_TEXTFILE_DIR}/${LOG_SHIPPING_FILES.metricFile}`;

/** One log entry as VictoriaLogs returns it. */
type Entry = Record<string, string>;

describe("every Pi's journal in VictoriaLogs, shipped by systemd-journal-upload as the bootstrap sets it up", () => {
    let bed: Testbed;
    let store: TestHost;
    let shippers: TestHost[];
    let commands: Map<string, PiHostCommands>;
    const vlUrl = () => `http://${store.address}:${options.httpPort}`;

    const sh = async (host: TestHost, command: string, input?: string) => {
        const r = await host.ssh(command, { input });
        if (r.code !== 0) throw new Error(`${host.name}: '${command}' exited ${r.code}: ${r.stderr}`);
        return r.stdout;
    };

    /** The entries a LogsQL query finds, newest last. */
    const query = async (logsql: string): Promise<Entry[]> => {
        const res = await fetch(`${vlUrl()}${VICTORIA_LOGS_PATHS.query}`, { method: "POST", body: new URLSearchParams({ query: logsql }) });
        if (!res.ok) throw new Error(`LogsQL ${logsql}: HTTP ${res.status} ${await res.text()}`);
        return (await res.text()).split("\n").filter(Boolean).map((line) => JSON.parse(line) as Entry);
    };
    /** Waits until a query finds an entry; returns it and how long that took. */
    const arrives = async (logsql: string, timeoutMs: number): Promise<{ entry: Entry; ms: number }> => {
        const start = Date.now();
        const entry = await eventually(`an entry for ${logsql} in VictoriaLogs`, async () => (await query(logsql))[0], { timeoutMs, intervalMs: 250 });
        return { entry, ms: Date.now() - start };
    };

    const startVictoriaLogs = () => sh(store, `sudo -n systemd-run --unit=${VL_UNIT} --collect ${VL_ON_HOST}/victoria-logs ${victoriaLogsFlags(options, "/var/lib/pct-victoria-logs").join(" ")}`);
    const healthy = () =>
        eventually("VictoriaLogs answering /health", async () => (await fetch(`${vlUrl()}/health`).catch(() => undefined))?.ok || undefined, { timeoutMs: 30_000, intervalMs: 250 });
    const uploaderRestarts = async (host: TestHost) => Number((await sh(host, "systemctl show -P NRestarts systemd-journal-upload.service")).trim());
    const heartbeat = async (host: TestHost) => {
        await sh(host, "sudo -n systemctl start picloud-log-heartbeat.service");
        const text = await sh(host, `cat ${METRIC_FILE}`);
        return { text, value: Number(new RegExp(`^${JOURNAL_UPLOAD_METRIC} (\\d+)$`, "m").exec(text)?.[1]) };
    };

    beforeAll(async () => {
        const binary = realpathSync(validator("victoria-logs"));
        bed = await startTestbed({ hosts: ["logs", "ship-1", "ship-2"], binds: [{ source: path.dirname(binary), target: VL_ON_HOST }] });
        [store, ...shippers] = bed.hosts;
        await startVictoriaLogs();
        await healthy();
        const logShipping = { url: journalUploadUrl(store.address, options) };
        const pis = shippers.map((h) => ({ pi: testPi(bed, h, { name: h.name, model: "pi4", storage: "ssd" }), bootstrap: BOOTSTRAP, logShipping }));
        commands = await piHostCommands(pis, sshOnlyNetwork(bed, pis.map((p) => p.pi)));
        await Promise.all(
            shippers.map(async (h) => {
                await shipBootstrap(h, commands.get(h.name)!);
                const r = await runBootstrap(h, commands.get(h.name)!);
                if (r.code !== 0) throw new Error(`${h.name}: the bootstrap exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
                expect(r.stdout).toContain("picloud: changed log-shipping");
            }),
        );
    }, 300_000);
    afterAll(() => bed?.stop());

    it("sets up the upload as the package's own unit, with the receiving side off; a second bootstrap changes nothing", async () => {
        for (const h of shippers) {
            expect((await sh(h, "systemctl is-enabled systemd-journal-upload.service picloud-log-heartbeat.timer")).split("\n").filter(Boolean)).toEqual(["enabled", "enabled"]);
            expect((await sh(h, "systemctl is-active systemd-journal-upload.service")).trim()).toBe("active");
            expect((await h.ssh("systemctl is-enabled systemd-journal-remote.socket")).stdout.trim()).not.toBe("enabled");
            expect(await sh(h, "systemctl cat systemd-journal-upload.service")).toMatch(/--save-state=\/run\//);
            // Its cursor is in RAM, like the journal: nothing written to the SD card per upload.
            await eventually(`${h.name}'s cursor saved`, async () => ((await h.ssh(`sudo -n test -s ${LOG_SHIPPING_FILES.uploadState}`)).code === 0 ? true : undefined), { timeoutMs: 30_000 });
            expect((await h.ssh("sudo -n test -e /var/lib/systemd/journal-upload/state")).code).not.toBe(0);
            const again = await runBootstrap(h, commands.get(h.name)!);
            expect(again.stdout).toContain("picloud: ok log-shipping");
            expect(again.stdout).toMatch(/picloud-bootstrap: changed=0 /);
        }
    });

    it("finds what each Pi logs within seconds, its stream fields those of the Pi, the unit and a container's labels", async () => {
        const marker = `pct-${randomUUID()}`;
        // As Docker's journald driver writes a container's line, its stream labels passed on as fields.
        await sh(shippers[0], "logger --journald", [`MESSAGE=${marker} from a container`, "CONTAINER_NAME=valkey-0", "PICLOUD_LOG_TIER=cache", "PICLOUD_LOG_SERVICE=valkey", "SYSLOG_IDENTIFIER=ship-1/valkey-0", ""].join("\n"));
        await sh(shippers[1], `logger -t pct-test ${marker} from a host`);
        const [container, plain] = await Promise.all([arrives(`"${marker} from a container"`, 30_000), arrives(`"${marker} from a host"`, 30_000)]);
        console.log(`logShipping: a journal entry reached VictoriaLogs after ${container.ms} ms and ${plain.ms} ms`);
        // The unit is the writer's: dockerd's on a Pi, the SSH session's here, or none when journald
        // could not read the cgroup of a writer that exited at once (logger, not dockerd).
        expect(container.entry._stream).toMatch(/^\{CONTAINER_NAME="valkey-0",PICLOUD_LOG_SERVICE="valkey",PICLOUD_LOG_TIER="cache",_HOSTNAME="ship-1"(,_SYSTEMD_UNIT="[^"]+")?\}$/);
        expect(container.entry.SYSLOG_IDENTIFIER).toBe("ship-1/valkey-0");
        expect(plain.entry._HOSTNAME).toBe("ship-2");
        expect(plain.entry._stream).toContain('_HOSTNAME="ship-2"');
        // Ten times the seconds it took, and still well inside what "within seconds" means here.
        expect(Math.max(container.ms, plain.ms)).toBeLessThan(30_000);
    });

    it("exports when the last upload got through, and the heartbeat's own line arrives too", async () => {
        const before = Math.floor(Date.now() / 1000) - 120;
        const { text, value } = await heartbeat(shippers[0]);
        expect(value).toBeGreaterThan(before);
        const check = spawnSync(validator("promtool"), ["check", "metrics"], { input: text, encoding: "utf8" });
        const script = await sh(shippers[0], `cat ${LOG_SHIPPING_FILES.heartbeatScript}`);
        const lint = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-"], { input: script, encoding: "utf8" });
        expect(lint.status, lint.stdout + lint.stderr).toBe(0);
        expect(check.status, check.stdout + check.stderr).toBe(0);
        await arrives('_HOSTNAME:="ship-1" "picloud log heartbeat"', 30_000);
    });

    it("serves every vl_, vm_ and process_ metric its alerts and dashboard read, journald ingestion counted", async () => {
        const spec = victoriaLogsSpec(options, store.address);
        const exprs = [...spec.alertRules.map((r) => r.expr), ...spec.dashboard.panels.map((p) => p.expr)];
        const used = [...new Set(exprs.flatMap((e) => metricSelectors(e, ["vl", "vm", "process"]).map((m) => m.name)))].sort();
        // Not vacuous: the extraction finds what the rules plainly use.
        expect(used).toEqual(expect.arrayContaining(["vl_rows_ingested_total", "vl_http_errors_total", "vl_rows_dropped_total", "vl_data_size_bytes", "process_start_time_seconds"]));
        const text = await (await fetch(`${vlUrl()}/metrics`)).text();
        expect(used.filter((n) => !exposes(text, n))).toEqual([]);
        expect(text).toMatch(/^vl_rows_ingested_total\{type="journald"\} [1-9]/m);
        expect(text).toMatch(/^vl_http_errors_total\{path="\/insert\/journald\/upload"\}/m);
    });

    it("keeps trying while VictoriaLogs is down, then delivers what was logged meanwhile", async () => {
        await sh(store, `sudo -n systemctl stop ${VL_UNIT}`);
        const stoppedAt = Math.floor(Date.now() / 1000);
        const restarts = await Promise.all(shippers.map(uploaderRestarts));
        const marker = `pct-${randomUUID()}`;
        await Promise.all(shippers.map((h) => sh(h, `logger -t pct-test ${marker} while down from ${h.name}`)));
        // journal-upload exits on the refused upload and its drop-in restarts it, past the start limit.
        await eventually("each uploader restarted twice", async () => (await Promise.all(shippers.map(uploaderRestarts))).every((n, i) => n >= restarts[i] + 2) || undefined, { timeoutMs: 60_000 });
        expect((await heartbeat(shippers[0])).value).toBeLessThanOrEqual(stoppedAt + 1);
        await startVictoriaLogs();
        await healthy();
        for (const h of shippers) {
            const { ms } = await arrives(`"${marker} while down from ${h.name}"`, 60_000);
            console.log(`logShipping: ${h.name}'s entry logged while VictoriaLogs was down arrived ${ms} ms after it was back`);
        }
        expect((await heartbeat(shippers[0])).value).toBeGreaterThan(stoppedAt);
    });

    it("ships what a rebooted Pi logs after its boot, its journal in RAM gone", async () => {
        await bed.restart(shippers[1]);
        await eventually("the uploader running after the boot", async () => (await shippers[1].ssh("systemctl is-active systemd-journal-upload.service")).stdout.trim() === "active" || undefined, {
            timeoutMs: 60_000,
        });
        const marker = `pct-${randomUUID()}`;
        await sh(shippers[1], `logger -t pct-test ${marker} after the boot`);
        await arrives(`"${marker} after the boot"`, 30_000);
    });

    it("is taken down by a bootstrap without log shipping, and set up again by one with it", async () => {
        const h = shippers[0];
        const off = renderPiBootstrap(testPi(bed, h, { name: h.name, model: "pi4", storage: "ssd" }), BOOTSTRAP);
        await runRegistered(h, { command: commands.get(h.name)!.shipScript.command, stdin: off });
        const r = await runBootstrap(h, commands.get(h.name)!);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("picloud: changed log-shipping: the journal is no longer shipped");
        expect((await h.ssh("systemctl is-enabled systemd-journal-upload.service")).stdout.trim()).toBe("disabled");
        expect((await h.ssh("systemctl is-active systemd-journal-upload.service")).stdout.trim()).toBe("inactive");
        // The heartbeat's units are gone with its script.
        expect((await h.ssh("systemctl cat picloud-log-heartbeat.timer picloud-log-heartbeat.service")).code).not.toBe(0);
        expect((await h.ssh(`test -e ${METRIC_FILE} || test -e ${LOG_SHIPPING_FILES.uploadConfig} || test -e ${LOG_SHIPPING_FILES.heartbeatScript}`)).code).not.toBe(0);
        expect((await runBootstrap(h, commands.get(h.name)!)).stdout).toContain("picloud: skipped log-shipping");
        await shipBootstrap(h, commands.get(h.name)!);
        expect((await runBootstrap(h, commands.get(h.name)!)).stdout).toContain("picloud: changed log-shipping");
        const marker = `pct-${randomUUID()}`;
        await sh(h, `logger -t pct-test ${marker} shipped again`);
        await arrives(`"${marker} shipped again"`, 30_000);
    });
});
