import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../../plan/mockRuntime";
import { PlanResult, runPlan } from "../../plan/plan";
import { renderRunScriptCommand, scriptPath } from "../../renderers/remoteCommands";
import { FAASD_PATHS } from "./renderers";

const root = path.resolve(__dirname, "..", "..", "..");
type Planned = Extract<PlanResult, { ok: true }>;
const plans: Record<string, Planned> = {};

// The mock runtime is global to the process: plan the stacks one after the other.
beforeAll(async () => {
    for (const stack of ["dev", "prod"]) {
        const plan = await runPlan({ stack, source: { file: path.join(root, "stacks", `Pulumi.${stack}.yaml`) } });
        if (!plan.ok) throw new Error(plan.error);
        plans[stack] = plan;
    }
});

const named = (plan: Planned, name: string): RecordedResource => {
    const r = plan.resources.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name}`);
    return r;
};
const faasdPiOf = (plan: Planned) => Object.entries(plan.outputs.placement).find(([, u]) => u.replicas.includes("faasd-0"))![0];

describe("Functions on the dev stack", () => {
    it("installs faasd over SSH on the Pi placement chose, once that Pi is bootstrapped, with the admin password on stdin", () => {
        const plan = plans.dev;
        const pi = faasdPiOf(plan);
        const install = named(plan, "picloud-functions-faasd");
        expect(install.inputs.create).toMatch(new RegExp(`\\n${renderRunScriptCommand(scriptPath(FAASD_PATHS.installScriptName))}$`));
        expect(install.inputs.update).toBe(install.inputs.create);
        expect((install.inputs.connection as { host: string }).host).toBe(plan.outputs.pis[pi]);
        expect(install.secretInputs).toContain("stdin");
        expect(String(install.inputs.delete)).toContain("systemctl disable --now faasd faasd-provider");
        const ready = named(plan, `picloud-${pi}-firewall-confirmed`);
        expect(named(plan, "picloud-functions-faasd-script").dependencies).toContain(ready.urn);
        const script = plan.files.find((f) => f.path === `${pi}${scriptPath(FAASD_PATHS.installScriptName)}`)!.text;
        expect(script).toMatch(/^#!\/usr\/bin\/env bash/);
        expect(script).toContain("readonly GATEWAY_PORT='8180'");
    });

    it("deploys each declared function through the gateway after faasd, and removes it through the gateway", () => {
        const plan = plans.dev;
        const run = named(plan, "picloud-functions-whoami");
        const install = named(plan, "picloud-functions-faasd");
        expect(run.dependencies).toContain(install.urn);
        expect(run.inputs.create).toMatch(new RegExp(`\\n${renderRunScriptCommand(scriptPath("function-whoami.sh"))}$`));
        expect(String(run.inputs.delete)).toMatch(/^sudo -n bash -s <<'PICLOUD_SCRIPT'\n#!\/usr\/bin\/env bash\n[\s\S]*DELETE \/system\/functions[\s\S]*\nPICLOUD_SCRIPT$/);
        const deploy = plan.files.find((f) => f.path.endsWith(scriptPath("function-whoami.sh")))!.text;
        expect(deploy).toContain("traefik/whoami:v1.10@sha256:1699d99cb4b9acc17f74ca670b3d8d0b7ba27c948b3445f0593b58ebece92f04");
        expect(deploy).toContain('"limits":{"memory":"32Mi","cpu":"0.1"}');
    });

    it("reserves faasd's memory and ports on its Pi, and puts the gateway behind the load balancer", () => {
        const plan = plans.dev;
        const pi = faasdPiOf(plan);
        const cfg = plan.files.find((f) => f.path.endsWith("haproxy/haproxy.cfg"))!.text;
        expect(cfg).toContain(`server gateway ${plan.outputs.pis[pi]}:8180 check`);
        expect(cfg).toMatch(/acl route\d+_path path_beg \/function\/\n\s+use_backend functions/);
        // 384 MB for faasd itself plus the function's 32 MB.
        const usage = plan.outputs.placement[pi];
        expect(usage.replicas).toContain("faasd-0");
    });

    it("scrapes the gateway's metrics and alerts on failing and slow invocations", () => {
        const plan = plans.dev;
        const pi = faasdPiOf(plan);
        const attachment = plan.resources.find((r) => r.type === "picloud:monitoring:Attachment" && r.name === "picloud-functions-monitoring")!;
        const coverage = attachment.outputs?.coverage as { jobs: string[]; alerts: string[] };
        expect(coverage.jobs).toEqual(["functions-gateway"]);
        expect(coverage.alerts).toEqual(
            expect.arrayContaining(["FunctionsGatewayTargetDown", "FunctionErrorRatioHigh", "FunctionLatencyHigh", "FunctionsGatewayNoHealthyServer", "FunctionsGatewayErrorRateHigh"]),
        );
        const fileSd = plan.files.find((f) => f.path.endsWith("file_sd/functions.json"))!.text;
        expect(JSON.parse(fileSd)[0].targets).toEqual([`${plan.outputs.pis[pi]}:8182`]);
    });
});

describe("Functions on prod", () => {
    it("runs faasd on the Pi the config names", () => {
        expect(faasdPiOf(plans.prod)).toBe("app-2");
        expect((named(plans.prod, "picloud-functions-faasd").inputs.connection as { host: string }).host).toBe("10.20.0.22");
    });
});
