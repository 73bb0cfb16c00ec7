import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPlan } from "../components/plan/plan";
import { MONITORING_DIRS } from "../components/tiers/monitoring/specs";
import { validator } from "./support/validators";

const root = path.resolve(__dirname, "..");

function run(tool: string, args: string[]): { status: number | null; output: string } {
    const r = spawnSync(tool, args, { encoding: "utf8" });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/**
 * Everything the Monitoring tier and the attachments would put on the monitoring Pi, as the
 * offline plan rendered it for each example stack, judged by Prometheus's and Alertmanager's own
 * tools. prometheus.yml names the folders as mounted in the container; they are pointed at the
 * plan's copy of the Pi's folder.
 */
const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe.each(["lab", "dev", "prod"])("monitoring files the %s plan renders", (stack) => {
    // The SDK's runtime is global: plans run one after another, each in its describe's beforeAll.
    let planned: Promise<{ plan: Extract<Awaited<ReturnType<typeof runPlan>>, { ok: true }>; onPi: (dir: string) => string }>;
    beforeAll(() => {
        planned = planStack();
        return planned.then(() => undefined);
    });
    const planStack = async () => {
        const outDir = fs.mkdtempSync(path.join(os.tmpdir(), `picloud-artifacts-${stack}-`));
        made.push(outDir);
        const plan = await runPlan({ stack, source: { file: path.join(root, "stacks", `Pulumi.${stack}.yaml`) }, outDir });
        if (!plan.ok) throw new Error(plan.error);
        const pis = Object.keys(plan.outputs.pis);
        const home = path.join(outDir, pis.find((p) => fs.existsSync(path.join(outDir, p, MONITORING_DIRS.base.slice(1))))!);
        return { plan, onPi: (dir: string) => path.join(home, dir.slice(1)) };
    };

    it("prometheus.yml, with every rule and file_sd file, passes promtool check config", async () => {
        const { onPi } = await planned;
        const config = fs.readFileSync(path.join(onPi(MONITORING_DIRS.prometheusConfig), "prometheus.yml"), "utf8");
        expect(config).toContain("/etc/prometheus/picloud/");
        const local = path.join(onPi(MONITORING_DIRS.prometheusConfig), "prometheus.local.yml");
        fs.writeFileSync(local, config.replaceAll("/etc/prometheus/picloud", onPi(MONITORING_DIRS.prometheusConfig)));
        const result = run(validator("promtool"), ["check", "config", local]);
        expect(result.output).toMatch(/SUCCESS/);
        expect(result.status, result.output).toBe(0);
    });

    it("every component's rule file passes promtool check rules", async () => {
        const { onPi, plan } = await planned;
        const files = fs.readdirSync(onPi(MONITORING_DIRS.rules)).map((f) => path.join(onPi(MONITORING_DIRS.rules), f));
        // One rule file per monitored component: every host, the Monitoring tier and every tier the stack enables.
        const attachments = plan.resources.filter((r) => r.type === "picloud:monitoring:Attachment");
        expect(attachments.length).toBeGreaterThanOrEqual(Object.keys(plan.outputs.pis).length + 4);
        expect(files.length).toBe(attachments.length);
        const result = run(validator("promtool"), ["check", "rules", ...files]);
        expect(result.status, result.output).toBe(0);
    });

    it("alertmanager.yml passes amtool check-config", async () => {
        const { onPi } = await planned;
        const result = run(validator("amtool"), ["check-config", path.join(onPi(MONITORING_DIRS.alertmanagerConfig), "alertmanager.yml")]);
        expect(result.status, result.output).toBe(0);
    });
});
