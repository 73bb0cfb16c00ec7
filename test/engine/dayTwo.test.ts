/**
 * Day 2 under the real Pulumi engine (DESIGN.md §6, level 7): the Pulumi CLI built from its Go
 * module and the command provider deploy picloud's host-layer components onto the test bed's
 * namespaced Debian hosts, then live through what a cloud lives through: a second `up`, a changed
 * monitoring spec, two firewall changes in a row, a power cut, a rotated SSH key, a removed Pi, the
 * policy pack, `refresh` and `destroy`. After each step the hosts themselves are asked.
 *
 * The steps build on each other, in order; the hosts, state and keys live for the whole file.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as auto from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PiConfig } from "../../components/config/schema";
import type { NetworkPlan } from "../../components/network/flows";
import { hostSpec } from "../../components/tiers/monitoring/specs";
import { DEFAULT_VALIDATORS_DIR, validator } from "../support/validators";
import { monitoringSchema } from "../../components/tiers/monitoring/config";
import { VICTORIA_LOGS_PATHS, victoriaLogsFlags } from "../../components/tiers/monitoring/victoriaLogs";
import { sshOnlyNetwork, testPi } from "../hosts/piHostCommands";
import { startTestbed, Testbed, TestHost } from "../hosts/testbed";
import { EngineStack, engineStack, policyPack } from "./engine";
import { EngineSpec, engineProgram } from "./program";

/** Short, so the lane can wait it out; production keeps 300 s. */
const ROLLBACK_SECONDS = 20;
const TABLE = "inet picloud";
const ROLLBACK_TIMER = "picloud-firewall-rollback.timer";
const SCRIPTS = "/var/lib/picloud/scripts";
const RULES = "/srv/picloud/monitoring/prometheus/rules";
const VALIDATORS_ON_HOST = "/opt/picloud-validators";
const VICTORIA_LOGS_ON_HOST = "/opt/picloud-victoria-logs";

/**
 * What a Pi has and a test host cannot: Docker Engine. A script answers what picloud asks of it
 * (the host check's `docker version`, the Monitoring tier's "is Grafana there?"), a oneshot unit
 * stands in for the service the bootstrap enables, and the docker group exists.
 */
const DOCKER_STAND_IN = `#!/bin/sh
# Stand-in for Docker Engine on an engine-lane test host: there is no Docker engine here.
case "$1" in
version) echo 0.0.0-engine-lane ;;
container) exit 1 ;;
# The backup's image is there, and its run is recorded (step m).
image) echo sha256:engine-lane ;;
run) cat >/dev/null; echo "docker $*" >>/var/log/pct-docker-runs; exit 0 ;;
*) echo "docker stand-in: no Docker engine on this test host ($*)" >&2; exit 1 ;;
esac
`;
const DOCKER_UNIT = `[Unit]
Description=Stand-in for Docker Engine (engine lane)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
`;

async function must(host: TestHost, command: string, input?: string): Promise<string> {
    const r = await host.ssh(command, { input });
    if (r.code !== 0) throw new Error(`on ${host.name}: '${command}' exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
}

/** Polls `check` until it holds or `seconds` pass; a loaded machine gets its margin here, not in a sleep. */
async function eventually(what: string, seconds: number, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        if (await check()) return;
        if (Date.now() > deadline) throw new Error(`${what}: not so after ${seconds} s`);
        await new Promise((r) => setTimeout(r, 500));
    }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("day 2 under the real engine, on namespaced Debian Pis", () => {
    let bed: Testbed;
    let engine: EngineStack;
    let e1: TestHost, e2: TestHost, e3: TestHost;
    let pis: PiConfig[];
    let spec: EngineSpec;
    let firstKey: string;
    let secondKey: string;
    let secondKeyPath: string;

    const network = (on: readonly PiConfig[], extraPorts: Readonly<Record<string, number | readonly number[]>> = {}): NetworkPlan => {
        const base = sshOnlyNetwork(bed, on);
        const extra = Object.entries(extraPorts).flatMap(([pi, ports]) =>
            [ports].flat().map((port) => ({ from: { zone: "mgmt" as const }, to: pi, protocol: "tcp" as const, port, purpose: "engine-lane", declaredBy: "picloud:engine" })),
        );
        return { ...base, flows: [...base.flows, ...extra] };
    };
    const run = async <T extends { stdout: string; stderr: string }>(what: string, op: Promise<T>, expectFailure = false): Promise<T> => {
        try {
            const r = await op;
            engine.log.push(`== ${what}\n${r.stdout}`);
            return r;
        } catch (e) {
            if (expectFailure) {
                engine.log.push(`== ${what} refused, as expected\n${String(e)}`);
                throw e;
            }
            // What the Pis' sshd and journal saw around the failure, for the reader of the log.
            const journals = await Promise.all(bed.hosts.map(async (h) => `-- ${h.name}:\n${(await h.ssh("sudo -n journalctl --no-pager -n 60 -u ssh -u fail2ban")).stdout}`));
            engine.log.push(`== ${what} FAILED\n${String(e)}\n${journals.join("\n")}`);
            console.log(`engine lane: ${what} failed; the hosts' sshd and fail2ban journals:\n${journals.join("\n")}`);
            throw e;
        }
    };
    /**
     * An up. Once in a few runs the Automation API's inline program cannot reach the engine at all
     * ("14 UNAVAILABLE: No connection established", pulumi/pulumi#6457; the up ends within a second
     * having run nothing of the program): that up is tried once more, and says so in the log.
     */
    const up = async (s: EngineSpec, opts: auto.UpOptions = {}) => {
        const attempt = () => engine.stack.up({ program: engineProgram(s), color: "never", ...opts });
        try {
            return await run("up", attempt());
        } catch (e) {
            if (!/14 UNAVAILABLE: No connection established/.test(String(e)) || /\b(created|updated|deleted|replaced)\b/.test(String(e))) throw e;
            console.log("engine lane: the inline program could not reach the engine (14 UNAVAILABLE); trying the up once more");
            return run("up, again after 14 UNAVAILABLE", attempt());
        }
    };
    /** An up expected to fail: its error, or "" when it passed. */
    const refusedUp = async (what: string, s: EngineSpec): Promise<string> => {
        try {
            await run(what, engine.stack.up({ program: engineProgram(s), color: "never" }), true);
            return "";
        } catch (e) {
            return String(e);
        }
    };
    const preview = (s: EngineSpec, opts: auto.PreviewOptions = {}, expectFailure = false) =>
        run("preview", engine.stack.preview({ program: engineProgram(s), color: "never", ...opts }), expectFailure);
    const changes = (r: auto.UpResult) => r.summary.resourceChanges ?? {};
    const table = async (host: TestHost) => (await host.ssh(`sudo -n nft list table ${TABLE}`)).stdout;
    const timerState = async (host: TestHost) => (await host.ssh(`systemctl is-active ${ROLLBACK_TIMER} || true`)).stdout.trim();
    const rules = async (): Promise<{ name: string; rules: { name: string }[] }[]> => {
        const r = await e1.ssh("curl -fsS http://127.0.0.1:9090/api/v1/rules");
        return r.code === 0 ? (JSON.parse(r.stdout) as { data: { groups: { name: string; rules: { name: string }[] }[] } }).data.groups : [];
    };
    const ruleNames = async () => (await rules()).flatMap((g) => g.rules.map((x) => x.name));
    const ruleGroups = async () => (await rules()).map((g) => g.name);


    beforeAll(async () => {
        bed = await startTestbed({
            hosts: ["e1", "e2", "e3"],
            binds: [
                { source: DEFAULT_VALIDATORS_DIR, target: VALIDATORS_ON_HOST },
                // Its link there points outside what the hosts see: its own folder, for step k.
                { source: path.dirname(fs.realpathSync(validator("victoria-logs"))), target: VICTORIA_LOGS_ON_HOST },
            ],
        });
        [e1, e2, e3] = bed.hosts;
        pis = [
            testPi(bed, e1, { name: "e1", model: "pi4", storage: "ssd" }),
            testPi(bed, e2, { name: "e2", model: "pi4", storage: "sd" }),
            testPi(bed, e3, { name: "e3", model: "pi5", storage: "sd" }),
        ];
        firstKey = fs.readFileSync(bed.privateKeyPath, "utf8");
        secondKeyPath = path.join(path.dirname(bed.privateKeyPath), "rotated_ed25519");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "picloud-rotated", "-f", secondKeyPath]);
        secondKey = fs.readFileSync(secondKeyPath, "utf8");
        await Promise.all(
            bed.hosts.map(async (h) => {
                await must(h, "sudo -n install -m 0755 /dev/stdin /usr/local/bin/docker", DOCKER_STAND_IN);
                await must(h, "sudo -n install -m 0644 /dev/stdin /etc/systemd/system/docker.service && sudo -n systemctl daemon-reload && sudo -n groupadd -f docker", DOCKER_UNIT);
            }),
        );
        spec = {
            pis,
            privateKey: firstKey,
            monitoringPis: ["e1"],
            bootstrap: { timezone: "Etc/UTC", ntpServers: ["0.debian.pool.ntp.org"], journalRuntimeMaxMb: 64, fail2banIgnore: [bed.bridgeAddress] },
            network: network(pis),
            probeAlert: "EngineProbeFailing",
            firewallRollbackSeconds: ROLLBACK_SECONDS,
            grafanaAdminPassword: "engine-lane-grafana-1",
        };
        engine = await engineStack("lane", engineProgram(spec));
    });
    afterAll(async () => {
        if (engine && process.env.PICLOUD_ENGINE_LOG) fs.writeFileSync(process.env.PICLOUD_ENGINE_LOG, engine.log.join("\n"));
        engine?.remove();
        await bed?.stop();
    });

    it("a) pulumi up from bare hosts: every Pi bootstrapped and behind its confirmed firewall, every attachment delivered", async () => {
        const started = Date.now();
        const result = await up(spec);
        console.log(`engine lane: first up of 3 Pis in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        expect(changes(result).create).toBeGreaterThan(40);
        for (const host of [e1, e2, e3]) {
            expect(await must(host, `sudo -n ls ${SCRIPTS}`)).toBe("bootstrap.sh\nfirewall.sh\n");
            expect(await table(host)).toContain('tcp dport 22 accept comment "ssh"');
            expect(await timerState(host)).toBe("inactive");
        }
        expect((await must(e1, `ls ${RULES}`)).split("\n").filter(Boolean).sort()).toEqual([...pis.map((p) => hostSpec(p).component), "engine-probe", "monitoring"].map((c) => `${c}.yml`).sort());
        // Grafana's password reaches only Grafana's uid; it is in no rendered file.
        expect(await must(e1, "sudo -n stat -c '%u %a' /srv/picloud/monitoring/secrets/grafana_admin_password")).toBe("472 400\n");

        // Prometheus, as its container would run it, on the files the tier shipped.
        await must(e1, `sudo -n mkdir -p /etc/prometheus && sudo -n ln -sfn /srv/picloud/monitoring/prometheus /etc/prometheus/picloud`);
        await must(
            e1,
            `sudo -n systemd-run --unit=pct-prometheus ${VALIDATORS_ON_HOST}/prometheus --config.file=/etc/prometheus/picloud/prometheus.yml --storage.tsdb.path=/var/lib/pct-prometheus --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle`,
        );
        await eventually("Prometheus loaded the probe's rules", 60, async () => (await ruleNames()).includes("EngineProbeFailing"));
        expect(await ruleNames()).toEqual(expect.arrayContaining(["Watchdog", "EngineProbeTargetDown"]));
    });

    it("i) pulumi preview --policy-pack policies loads the real pack: the program passes, and is refused with a Pi's attachment taken out", async () => {
        const pack = policyPack();
        const passed = await preview(spec, { policyPacks: [pack] });
        expect(passed.stdout).toMatch(/Policies:\n\s+✅ picloud@v[\d.]+ \(local: /);
        await expect(preview({ ...spec, unmonitored: "e2" }, { policyPacks: [pack] }, true)).rejects.toThrow(/picloud-components-monitored[\s\S]*PiHost::e2 has no picloud:monitoring:Attachment child/);
    });

    it("b) a second pulumi up --expect-no-changes passes", async () => {
        const result = await up(spec, { expectNoChanges: true });
        expect(Object.keys(changes(result))).toEqual(["same"]);
    });

    it("c) a changed monitoring spec is written in place and reloaded: an Update, nothing deleted afterwards", async () => {
        spec = { ...spec, probeAlert: "EngineProbeErroring" };
        const result = await up(spec);
        // The file first: a replacement would have shipped it, then let the old resource's delete remove it.
        const rules = await must(e1, `cat ${RULES}/engine-probe.yml`);
        expect(rules).toContain("EngineProbeErroring");
        expect(rules).not.toContain("EngineProbeFailing");
        expect(changes(result)).toMatchObject({ update: expect.any(Number) });
        expect(changes(result)).not.toHaveProperty("delete");
        expect(changes(result)).not.toHaveProperty("replace");
        await eventually("Prometheus serves the new rule, not the old", 30, async () => {
            const names = await ruleNames();
            return names.includes("EngineProbeErroring") && !names.includes("EngineProbeFailing");
        });
    });

    it("c2) a rotated secret is written in place, still Grafana's alone: an Update, not a replacement whose delete would remove it", async () => {
        const file = "/srv/picloud/monitoring/secrets/grafana_admin_password";
        spec = { ...spec, grafanaAdminPassword: "engine-lane-grafana-2" };
        const result = await up(spec);
        expect(await must(e1, `sudo -n cat ${file}`)).toBe("engine-lane-grafana-2");
        expect(await must(e1, `sudo -n stat -c '%u %a' ${file}`)).toBe("472 400\n");
        expect(changes(result)).not.toHaveProperty("delete");
        expect(changes(result)).not.toHaveProperty("replace");
        // Nor is it in the engine's log of the run.
        expect(engine.log.at(-1)).not.toContain("engine-lane-grafana-2");
    });

    it("j) done means monitored: with a host's node_exporter stopped the up fails, naming its target and Prometheus's reason; started, the next up passes; what a component runs, replaced, is confirmed again", async () => {
        const before = spec;
        // Real node_exporters where the attachments say: every host's, and the probe's port on e1.
        const exporter = (h: TestHost, unit: string, port: number) =>
            must(h, `sudo -n systemd-run --unit=${unit} ${VALIDATORS_ON_HOST}/node_exporter --web.listen-address=:${port} --collector.disable-defaults --collector.loadavg`);
        await exporter(e1, "pct-node-exporter", 9100);
        await exporter(e1, "pct-probe-exporter", 9797);
        await exporter(e3, "pct-node-exporter", 9100);
        spec = { ...spec, confirmSeconds: 30, network: network(pis, { e2: 9100, e3: 9100 }) };
        const refusal = await refusedUp("up, e2's exporter stopped", spec);
        expect(refusal, "the up passed with e2's node_exporter stopped").toContain("Prometheus on e1 does not confirm the monitoring of host-e2");
        expect(refusal).toMatch(new RegExp(`host-e2 ${pis[1].address.replaceAll(".", "\\.")}:9100: down: .*connection refused`));
        expect(refusal).toContain("Prometheus on e1 confirms the monitoring of host-e1: 1 target(s) up, 6 alert(s) loaded");
        expect(refusal).toContain("Prometheus on e1 confirms the monitoring of engine-probe: 1 target(s) up, 2 alert(s) loaded");
        expect(refusal).not.toContain("does not confirm the monitoring of host-e1");

        await exporter(e2, "pct-node-exporter", 9100);
        const passed = await up(spec);
        expect(changes(passed)).toMatchObject({ create: 1 });
        expect(passed.stdout).toContain("Prometheus on e1 confirms the monitoring of host-e2: 1 target(s) up, 6 alert(s) loaded");

        // What a component runs replaced under unchanged monitoring files (a new container): its
        // monitoring is confirmed again, and a replacement Prometheus cannot scrape fails the up.
        spec = { ...spec, probeVersion: "2" };
        const replaced = await up(spec);
        expect(changes(replaced)).toMatchObject({ replace: 1, update: 1 });
        expect(replaced.stdout).toContain("Prometheus on e1 confirms the monitoring of engine-probe: 1 target(s) up, 2 alert(s) loaded");
        await must(e1, "sudo -n systemctl stop pct-probe-exporter");
        spec = { ...spec, probeVersion: "3" };
        const unscraped = await refusedUp("up, the probe replaced with its exporter stopped", spec);
        expect(unscraped, "the up passed with the replaced probe's exporter stopped").toContain("Prometheus on e1 does not confirm the monitoring of engine-probe");
        await exporter(e1, "pct-probe-exporter-2", 9797);
        await up(spec);

        // Turned off again: the confirmations leave the stack, nothing else changes on the Pis.
        spec = before;
        const off = await up(spec);
        expect(changes(off)).toMatchObject({ delete: 4 });
        await must(e1, "sudo -n systemctl stop pct-node-exporter pct-probe-exporter-2");
        await Promise.all([e2, e3].map((h) => must(h, "sudo -n systemctl stop pct-node-exporter")));
    });

    it("k) VictoriaLogs added to a running stack: every Pi's bootstrap runs again as an Update and ships its journal; taken away, the next up takes the shipping down", async () => {
        const before = spec;
        const options = monitoringSchema.parse({ victoriaLogs: {} }).victoriaLogs!;
        await must(e1, `sudo -n systemd-run --unit=pct-victoria-logs ${VICTORIA_LOGS_ON_HOST}/victoria-logs ${victoriaLogsFlags(options, "/var/lib/pct-victoria-logs").join(" ")}`);
        // The uploads come from the other Pis, which are in the management network here.
        spec = { ...spec, logsPi: "e1", network: network(pis, { e1: options.httpPort }) };
        const on = await up(spec);
        expect(changes(on)).toMatchObject({ update: expect.any(Number) });
        expect(changes(on)).not.toHaveProperty("replace");
        expect(changes(on)).not.toHaveProperty("delete");
        for (const h of bed.hosts) expect((await must(h, "systemctl is-active systemd-journal-upload.service")).trim()).toBe("active");
        expect(await must(e1, `cat ${RULES}/host-e2.yml`)).toContain("HostLogsStopped");
        const marker = `pct-engine-${Date.now()}`;
        await must(e2, `logger -t pct-engine ${marker}`);
        await eventually("e2's line in VictoriaLogs", 30, async () => (await e1.ssh(`curl -fsS http://127.0.0.1:${options.httpPort}${VICTORIA_LOGS_PATHS.query} -d 'query="${marker}"'`)).stdout.includes('"_HOSTNAME":"e2"'));
        expect(Object.keys(changes(await up(spec, { expectNoChanges: true })))).toEqual(["same"]);

        spec = { ...before, network: spec.network };
        const off = await up(spec);
        expect(changes(off)).toMatchObject({ update: expect.any(Number), delete: expect.any(Number) });
        for (const h of bed.hosts) expect((await h.ssh("systemctl is-enabled systemd-journal-upload.service")).stdout.trim()).toBe("disabled");
        expect(await must(e1, `cat ${RULES}/host-e2.yml`)).not.toContain("HostLogsStopped");
        await must(e1, "sudo -n systemctl stop pct-victoria-logs");
        spec = before;
    });

    it("l) a second monitoring replica: every attachment delivered to its Pi too, nothing on the first touched; each Prometheus confirms for itself", async () => {
        const before = spec;
        // Every component's files but the tier's own, whose rules now watch both replicas.
        const stamps = async (h: TestHost) => (await must(h, `cd ${RULES} && stat -c '%n %Y %s' *`)).split("\n").filter((l) => !l.startsWith("monitoring.yml "));
        const onE1 = await stamps(e1);
        spec = { ...spec, monitoringPis: ["e1", "e3"] };
        const added = await up(spec);
        expect(changes(added)).toMatchObject({ create: expect.any(Number) });
        expect(changes(added)).not.toHaveProperty("delete");
        expect(changes(added)).not.toHaveProperty("replace");
        expect(await must(e3, `ls ${RULES}`)).toBe(await must(e1, `ls ${RULES}`));
        expect(await stamps(e1)).toEqual(onE1);
        // One prometheus.yml for both: each scrapes both replicas and alerts both Alertmanagers.
        const config = await must(e1, "cat /srv/picloud/monitoring/prometheus/prometheus.yml");
        expect(await must(e3, "cat /srv/picloud/monitoring/prometheus/prometheus.yml")).toBe(config);
        for (const p of [pis[0], pis[2]]) expect(config).toContain(`${p.address}:9093`);

        // Done means monitored on each replica: e3's Prometheus not running fails the up, naming e3.
        const exporter = (h: TestHost, unit: string, port: number) =>
            must(h, `sudo -n systemd-run --unit=${unit} ${VALIDATORS_ON_HOST}/node_exporter --web.listen-address=:${port} --collector.disable-defaults --collector.loadavg`);
        await Promise.all([exporter(e1, "pct-node-exporter", 9100), exporter(e1, "pct-probe-exporter", 9797), exporter(e2, "pct-node-exporter", 9100), exporter(e3, "pct-node-exporter", 9100)]);
        spec = { ...spec, confirmSeconds: 20, network: network(pis, { e1: [9100, 9797], e2: 9100, e3: 9100 }) };
        const refusal = await refusedUp("up, e3's Prometheus not running", spec);
        expect(refusal, "the up passed with e3's Prometheus not running").toContain("Prometheus on e3 does not confirm the monitoring of host-e2");
        expect(refusal).toContain("Prometheus does not answer on 127.0.0.1:9090");
        expect(refusal).toContain("Prometheus on e1 confirms the monitoring of host-e2");
        await must(e3, `sudo -n mkdir -p /etc/prometheus && sudo -n ln -sfn /srv/picloud/monitoring/prometheus /etc/prometheus/picloud`);
        await must(
            e3,
            `sudo -n systemd-run --unit=pct-prometheus ${VALIDATORS_ON_HOST}/prometheus --config.file=/etc/prometheus/picloud/prometheus.yml --storage.tsdb.path=/var/lib/pct-prometheus --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle`,
        );
        const confirmed = await up(spec);
        for (const component of [...pis.map((p) => hostSpec(p).component), "engine-probe"]) expect(confirmed.stdout).toContain(`Prometheus on e3 confirms the monitoring of ${component}`);

        // Confirmations off again; the second replica stays for the steps that follow.
        spec = { ...before, monitoringPis: spec.monitoringPis, network: before.network };
        expect(changes(await up(spec))).toMatchObject({ delete: 8 });
        await must(e1, "sudo -n systemctl stop pct-node-exporter pct-probe-exporter");
        await Promise.all([e2, e3].map((h) => must(h, "sudo -n systemctl stop pct-node-exporter")));
        await must(e3, "sudo -n systemctl stop pct-prometheus");
    });

    it("d) two firewall-only changes in a row: each confirmed, and the ruleset still loaded after the rollback window", async () => {
        spec = { ...spec, network: network(pis, { e2: 9999 }) };
        await up(spec);
        expect(await table(e2)).toContain("tcp dport 9999 accept");
        expect(await timerState(e2)).toBe("inactive");
        spec = { ...spec, network: network(pis, { e2: 9998 }) };
        const second = await up(spec);
        expect(changes(second)).not.toHaveProperty("delete");
        const confirmed = Date.now();
        expect(await table(e2)).toContain("tcp dport 9998 accept");
        expect(await table(e2)).not.toContain("9999");
        expect(await timerState(e2)).toBe("inactive");
        // Nothing to poll for: the point is that nothing happens. Wait the window out, with margin.
        await sleep(Math.max(0, confirmed + (ROLLBACK_SECONDS + 10) * 1000 - Date.now()));
        expect(await table(e2)).toContain("tcp dport 9998 accept");
    });

    it("e) after a power cut, the firewall is back from boot, /tmp is empty, and an Update re-runs the scripts from where they were kept", async () => {
        await must(e3, "touch /tmp/pct-before-the-power-cut");
        await bed.restart(e3);
        expect((await e3.ssh("test -e /tmp/pct-before-the-power-cut")).code).not.toBe(0);
        await eventually("the firewall is loaded at boot", 30, async () => (await table(e3)).includes('comment "ssh"'));
        expect(await must(e3, `sudo -n ls ${SCRIPTS}`)).toBe("bootstrap.sh\nfirewall.sh\n");
        spec = { ...spec, bootstrap: { ...spec.bootstrap, journalRuntimeMaxMb: 48 } };
        const result = await up(spec);
        expect(changes(result)).not.toHaveProperty("delete");
        expect(await must(e3, "cat /etc/systemd/journald.conf.d/picloud.conf")).toContain("RuntimeMaxUse=48M");
    });

    it("f) a rotated sshPrivateKey: every command runs again with the new key, and the old one is no longer needed", async () => {
        const publicKey = execFileSync("ssh-keygen", ["-y", "-f", secondKeyPath], { encoding: "utf8" });
        await Promise.all([e1, e2, e3].map((h) => must(h, "cat >> ~/.ssh/authorized_keys", publicKey)));
        spec = { ...spec, privateKey: secondKey };
        const result = await up(spec);
        expect(changes(result).update).toBeGreaterThan(20);
        expect(changes(result)).not.toHaveProperty("delete");
        expect(changes(result)).not.toHaveProperty("replace");
        // The first key goes; the test bed's own ssh keeps working through its own key file.
        const firstPublic = execFileSync("ssh-keygen", ["-y", "-f", bed.privateKeyPath], { encoding: "utf8" }).trim();
        await Promise.all(
            [e1, e2, e3].map(async (h) => {
                const keys = (await must(h, "cat ~/.ssh/authorized_keys")).split("\n").filter((l) => l && !l.startsWith(firstPublic.split(" ").slice(0, 2).join(" ")));
                await must(h, "cat > ~/.ssh/authorized_keys.new && mv ~/.ssh/authorized_keys.new ~/.ssh/authorized_keys", `${keys.join("\n")}\n${firstPublic}\n`);
            }),
        );
        await up(spec, { expectNoChanges: true });
    });

    it("f2) a Pi renamed with renamedFrom, in one up: everything it had carries over by alias, nothing is created beside it, its monitoring moves to the new name", async () => {
        const old = hostSpec(pis[1]).component;
        pis = pis.map((p) => (p.name === "e2" ? { ...p, name: "e2b", renamedFrom: "e2" } : p));
        spec = { ...spec, pis, network: network(pis, { e2b: 9998 }) };
        const result = await up(spec);
        expect(changes(result)).not.toHaveProperty("create");
        expect(changes(result)).not.toHaveProperty("delete");
        expect(changes(result)).not.toHaveProperty("replace");
        const state = (await engine.stack.exportStack()).deployment as { resources: { urn: string }[] };
        const names = state.resources.map((r) => r.urn.split("::").at(-1)!);
        expect(names).toContain("e2b-bootstrap");
        expect(names.filter((n) => n === "e2" || n.startsWith("e2-"))).toEqual([]);
        expect(await must(e2, "cat /etc/hostname")).toBe("e2b\n");
        expect(await must(e2, `sudo -n ls ${SCRIPTS}`)).toBe("bootstrap.sh\nfirewall.sh\n");
        const files = await must(e1, `ls ${RULES}`);
        expect(files).toContain(`${hostSpec(pis[1]).component}.yml`);
        expect(files).not.toContain(`${old}.yml`);
        await eventually("Prometheus has e2b's rules and not e2's", 30, async () => {
            const groups = await ruleGroups();
            return groups.includes(hostSpec(pis[1]).component) && !groups.includes(old);
        });
        // Once applied, renamedFrom can go: the aliases have done their work, and only the ship
        // commands that also removed the old files are written again.
        pis = pis.map(({ renamedFrom: _, ...p }) => p);
        spec = { ...spec, pis };
        const after = await up(spec);
        expect(Object.keys(changes(after)).sort()).toEqual(["same", "update"]);
        expect(await must(e1, `ls ${RULES}`)).toContain(`${hostSpec(pis[1]).component}.yml`);
    });

    it("f3) children named after their cloud (picloud-<pi>, picloud-monitoring), in one up: every resource carries over by alias, nothing created, deleted or replaced", async () => {
        const before = ((await engine.stack.exportStack()).deployment as { resources: { urn: string }[] }).resources.length;
        spec = { ...spec, scopedNames: true };
        const result = await up(spec);
        expect(changes(result)).not.toHaveProperty("create");
        expect(changes(result)).not.toHaveProperty("delete");
        expect(changes(result)).not.toHaveProperty("replace");
        const state = (await engine.stack.exportStack()).deployment as { resources: { urn: string; type: string }[] };
        expect(state.resources).toHaveLength(before);
        const names = state.resources.filter((r) => r.type.startsWith("command:") || r.type === "picloud:host:PiHost").map((r) => r.urn.split("::").at(-1)!);
        expect(names.filter((n) => !n.startsWith("picloud-") && !n.startsWith("probe-"))).toEqual([]);
        expect(names).toEqual(expect.arrayContaining(["picloud-e1-bootstrap", "picloud-e2b-firewall-confirmed", "picloud-monitoring-prometheus-config-e1", "picloud-e1-monitoring-rules-e3"]));
        // The aliases stay in the program; the next up finds nothing to do.
        await up(spec, { expectNoChanges: true });
    });

    it("g) a Pi removed from the stack, a monitoring replica on it: its firewall and scripts leave it, its monitoring leaves both monitoring Pis, the replica moves without touching the other's files", async () => {
        expect(await ruleGroups()).toContain(hostSpec(pis[2]).component);
        const onE1 = await must(e1, `ls ${RULES}`);
        const kept = pis.filter((p) => p.name !== "e3");
        spec = { ...spec, pis: kept, monitoringPis: ["e1", "e2b"], network: network(kept, { e2b: 9998 }) };
        const result = await up(spec);
        expect(changes(result).delete).toBeGreaterThan(5);
        expect(changes(result)).not.toHaveProperty("replace");
        expect((await e3.ssh(`sudo -n nft list table ${TABLE}`)).code).not.toBe(0);
        expect(await must(e3, `sudo -n ls -A ${SCRIPTS}`)).toBe("");
        expect(await must(e3, `ls -A ${RULES}`)).toBe("");
        const left = onE1.split("\n").filter((f) => f && f !== `${hostSpec(pis[2]).component}.yml`);
        expect((await must(e1, `ls ${RULES}`)).split("\n").filter(Boolean)).toEqual(left);
        expect((await must(e2, `ls ${RULES}`)).split("\n").filter(Boolean)).toEqual(left);
        await eventually("Prometheus no longer has e3's rules", 30, async () => {
            const names = await ruleGroups();
            return names.length > 0 && !names.includes(hostSpec(pis[2]).component);
        });
    });

    it("m) VictoriaMetrics' backup added, changed and taken away: each an up that creates, updates or deletes only what it must, the timer, credentials, resolver and restore tool on the store's Pi with it", async () => {
        const before = spec;
        const BACKUP_DIR = "/etc/picloud/victoria-metrics-backup";
        const TIMER = "/etc/systemd/system/picloud-backup-victoria-metrics.timer";
        const TOOL = "/usr/local/sbin/picloud-restore-victoria-metrics";
        const METRIC = "/var/lib/picloud/textfile/backup-victoria-metrics.prom";
        const keyId = "GK0123456789abcdef01234567";
        spec = { ...spec, metricsBackup: { pi: "e1", onCalendar: "*-*-* 03:15", keyId, keySecret: "00ff".repeat(16) } };
        const on = await up(spec).catch(async (e: unknown) => {
            throw new Error(`${String(e)}\n${(await e1.ssh("sudo -n journalctl --no-pager -n 40 -u picloud-backup-victoria-metrics.service")).stdout}`);
        });
        expect(changes(on).create).toBeGreaterThanOrEqual(5);
        expect(changes(on)).not.toHaveProperty("replace");
        expect(changes(on)).not.toHaveProperty("delete");
        expect((await must(e1, "systemctl is-enabled picloud-backup-victoria-metrics.timer")).trim()).toBe("enabled");
        expect(await must(e1, `sudo -n stat -c '%U %a' ${BACKUP_DIR}/s3-credentials ${TOOL}`)).toBe("root 600\nroot 700\n");
        expect(await must(e1, `sudo -n cat ${BACKUP_DIR}/s3-credentials`)).toContain(`aws_access_key_id = ${keyId}`);
        expect(await must(e1, `cat ${BACKUP_DIR}/resolv.conf`)).toBe(`nameserver ${pis[0].address}\n`);
        // The first backup ran at once, through the runner, and recorded its success.
        expect(await must(e1, "cat /var/log/pct-docker-runs")).toMatch(/^docker run --rm --network host .*picloud\/vmbackup:.* -dst=s3:\/\/backups\/engine\/victoria-metrics /m);
        expect(await must(e1, `cat ${METRIC}`)).toMatch(/picloud_backup_last_success_timestamp_seconds\{backup="victoria-metrics"\} \d+/);
        expect(Object.keys(changes(await up(spec, { expectNoChanges: true })))).toEqual(["same"]);

        // A new schedule: the timer's script runs again as an Update, nothing shipped before is removed by a late delete.
        spec = { ...spec, metricsBackup: { ...spec.metricsBackup!, onCalendar: "*-*-* 04:45" } };
        const changed = await up(spec);
        expect(changes(changed)).toMatchObject({ update: expect.any(Number) });
        expect(changes(changed)).not.toHaveProperty("replace");
        expect(changes(changed)).not.toHaveProperty("delete");
        expect(await must(e1, `cat ${TIMER}`)).toContain("OnCalendar=*-*-* 04:45");
        expect((await e1.ssh(`sudo -n test -s ${BACKUP_DIR}/s3-credentials && sudo -n test -x ${TOOL}`)).code).toBe(0);

        spec = before;
        const off = await up(spec);
        expect(changes(off).delete).toBeGreaterThanOrEqual(5);
        expect(changes(off)).not.toHaveProperty("replace");
        expect((await e1.ssh("systemctl is-enabled picloud-backup-victoria-metrics.timer")).stdout.trim()).not.toBe("enabled");
        for (const gone of [TIMER, `${BACKUP_DIR}/s3-credentials`, `${BACKUP_DIR}/resolv.conf`, TOOL, METRIC]) expect((await e1.ssh(`sudo -n test -e ${gone}`)).code, gone).not.toBe(0);
    });

    it("h) pulumi refresh, then pulumi destroy: both succeed without the program, and what picloud put on the Pis is gone", async () => {
        await run("refresh", engine.stack.refresh({ color: "never" }));
        await run("destroy", engine.stack.destroy({ color: "never" }));
        for (const host of [e1, e2]) {
            expect((await host.ssh(`sudo -n nft list table ${TABLE}`)).code).not.toBe(0);
            expect(await must(host, `sudo -n ls -A ${SCRIPTS}`)).toBe("");
            expect((await host.ssh("systemctl is-enabled picloud-firewall.service")).stdout.trim()).not.toBe("enabled");
        }
        for (const host of [e1, e2]) expect(await must(host, `ls -A ${RULES} /srv/picloud/monitoring/prometheus/file_sd /srv/picloud/monitoring/grafana/dashboards`)).not.toMatch(/\.(yml|json)/);
        expect((await e1.ssh("sudo -n test -e /srv/picloud/monitoring/secrets/grafana_admin_password")).code).not.toBe(0);
        // The engine opens one SSH connection per command, many at once: none of them, over the
        // whole lane, was turned away by the hardened sshd's MaxStartups (10 unauthenticated at once).
        for (const host of [e1, e2]) {
            const sshd = await must(host, "sudo -n journalctl --no-pager -o cat -u ssh");
            expect(sshd).toMatch(/Accepted publickey/);
            expect(sshd.split("\n").filter((l) => /MaxStartups/.test(l))).toEqual([]);
        }
    });
});
