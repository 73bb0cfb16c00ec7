import * as os from "node:os";
import { ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAsync } from "../../test/support/processes";
import { tempDirs } from "../../test/support/tempDirs";
import { validator } from "../../test/support/validators";
import { renderConfirmScript } from "./confirm";
import { type MonitoringSpec, targetDownRule } from "./contract";
import { renderFileSd, renderPrometheusConfig, renderRuleFile } from "./renderers";

/**
 * The confirmation an Attachment runs on the monitoring Pi, judged by a real Prometheus (Debian's)
 * on files picloud renders, with bash, curl and jq as on a Pi: it passes once every target is up
 * and the rule group loaded, and otherwise fails within its timeout naming each target that is
 * not scraped with Prometheus's own reason.
 */
const tmp = tempDirs("picloud-confirm-");
const children: ChildProcess[] = [];
const servers: http.Server[] = [];
afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
    for (const s of servers) s.close();
});

const listen = (server: http.Server) => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
const freePort = async () => {
    const s = http.createServer();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    return port;
};

let prometheusPort = 0;
let up = "";
let down = "";
let replaced = "";
let replacedServer: http.Server;
const spec = (component: string, targets: string[]): MonitoringSpec => {
    const target = { job: component, targets };
    return {
        component,
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            { alert: `${component.replace(/-/g, "")}Busy`, expr: `up{job="${component}"} > 1`, severity: "warning", summary: "s", description: "d" },
        ],
        dashboard: { uid: component, title: component, panels: [{ title: "up", expr: "up" }] },
        logLabels: { tier: "test" },
    };
};

beforeAll(async () => {
    const metrics = http.createServer((_req, res) => res.end("confirm_test_up 1\n"));
    servers.push(metrics);
    up = `127.0.0.1:${await listen(metrics)}`;
    down = `127.0.0.1:${await freePort()}`;
    // Up now, stopped later: what a container replaced under unchanged monitoring files looks like.
    replacedServer = http.createServer((_req, res) => res.end("confirm_test_up 1\n"));
    servers.push(replacedServer);
    replaced = `127.0.0.1:${await listen(replacedServer)}`;
    prometheusPort = await freePort();
    const dir = tmp();
    const fileSdDir = path.join(dir, "file_sd");
    const rulesDir = path.join(dir, "rules");
    mkdirSync(fileSdDir);
    mkdirSync(rulesDir);
    for (const s of [spec("all-up", [up]), spec("one-down", [up, down]), spec("replaced", [replaced])]) {
        writeFileSync(path.join(fileSdDir, `${s.component}.json`), renderFileSd(s));
        writeFileSync(path.join(rulesDir, `${s.component}.yml`), renderRuleFile(s));
    }
    const config = renderPrometheusConfig({ scrapeIntervalSeconds: 30, evaluationIntervalSeconds: 5, alertmanagers: [], fileSdDir, rulesDir, externalLabels: {}, prometheusTargets: [`127.0.0.1:${prometheusPort}`] });
    writeFileSync(path.join(dir, "prometheus.yml"), config);
    const prometheus = spawn(validator("prometheus"), [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${prometheusPort}`], { stdio: "ignore" });
    children.push(prometheus);
}, 60_000);

const confirm = (s: MonitoringSpec, timeoutSeconds: number) => runAsync("bash", ["-c", renderConfirmScript(s, { prometheusPort, timeoutSeconds })]);

describe("the monitoring confirmation, against a real Prometheus", () => {
    it("passes once Prometheus reports every target up and the component's rule group loaded", async () => {
        const r = await confirm(spec("all-up", [up]), 60);
        expect(r.stderr).toBe("");
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain(`Prometheus on ${os.hostname()} confirms the monitoring of all-up: 1 target(s) up, 2 alert(s) loaded`);
    });

    it("fails after its timeout naming the target that is not scraped, with Prometheus's reason, and not the one that is", async () => {
        const r = await confirm(spec("one-down", [up, down]), 20);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`after 20 s Prometheus on ${os.hostname()} does not confirm the monitoring of one-down (picloud:tiers.monitoring.confirmTimeoutSeconds):`);
        expect(r.stderr).toMatch(new RegExp(`  - one-down ${down.replace(/\./g, "\\.")}: down: .*connection refused`));
        expect(r.stderr).not.toContain(`one-down ${up}:`);
    });

    it("counts only scrapes made since it began: a target up at its last scrape but gone since fails, with the reason", async () => {
        expect((await confirm(spec("replaced", [replaced]), 60)).status).toBe(0);
        await new Promise((r) => replacedServer.close(r));
        replacedServer.closeAllConnections();
        // Prometheus still says "up" of its last scrape, from before; the next one finds it gone.
        const r = await confirm(spec("replaced", [replaced]), 20);
        expect(r.status, r.stdout).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`  - replaced ${replaced.replace(/\./g, "\\.")}: down: .*connection refused`));
    });

    it("fails naming what Prometheus has not been given: a target no file lists, alerts its rule group lacks", async () => {
        const r = await confirm({ ...spec("all-up", [up, "127.0.0.1:1"]), alertRules: [...spec("all-up", [up]).alertRules, { alert: "Extra", expr: "vector(1)", severity: "info", summary: "s", description: "d" }] }, 3);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("all-up 127.0.0.1:1: not among Prometheus's targets");
        expect(r.stderr).toMatch(/rule group all-up: loaded with .*, expected .*Extra/);
    });

    it("says so when Prometheus does not answer at all", async () => {
        const r = await runAsync("bash", ["-c", renderConfirmScript(spec("all-up", [up]), { prometheusPort: await freePort(), timeoutSeconds: 1 })]);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/Prometheus does not answer on 127\.0\.0\.1:\d+/);
    });

    it("passes shellcheck", async () => {
        const file = path.join(tmp(), "confirm.sh");
        writeFileSync(file, `#!/bin/sh\n${renderConfirmScript(spec("one-down", [up, down]), { prometheusPort: 9090, timeoutSeconds: 180 })}\n`);
        const r = await runAsync("shellcheck", ["-S", "style", file]);
        expect(r.status, r.stdout + r.stderr).toBe(0);
    });

    it("refuses a port or a timeout it cannot use", () => {
        expect(() => renderConfirmScript(spec("x", [up]), { prometheusPort: 0, timeoutSeconds: 5 })).toThrow(/port/);
        expect(() => renderConfirmScript(spec("x", [up]), { prometheusPort: 9090, timeoutSeconds: 0 })).toThrow(/timeout/);
    });
});
