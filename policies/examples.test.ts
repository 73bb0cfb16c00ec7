import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ATTACHMENT_TYPE } from "../components/monitoring/contract";
import { mandatoryViolations, policyVerdicts } from "../components/plan/policyVerdicts";
import { runPlan } from "../components/plan/plan";
import { allPolicies } from "./all";
import { monitoredComponents } from "./monitoredComponents";
import { withoutAttachment } from "./testing/resourceTree";
import { INSTALLS_A_SERVICE, REMOTE_COMMAND_TYPE } from "./workloadTypes";
import { hasViolation } from "./testing/verdicts";

const stackFile = (stack: string) => path.resolve(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`);

async function plannedResources(stack: string) {
    const plan = await runPlan({ stack, source: { file: stackFile(stack) } });
    if (!plan.ok) throw new Error(plan.error);
    return plan.resources;
}

describe("the policy pack over the example stacks' plans", () => {
    for (const stack of ["lab", "dev", "prod"]) {
        it(`passes ${stack}: every policy runs, none refuses, nothing is left unchecked for unknowns`, async () => {
            const resources = await plannedResources(stack);
            const verdicts = await policyVerdicts(resources);
            expect(verdicts.map((v) => [v.policy, v.enforcementLevel])).toEqual(allPolicies.map((p) => [p.name, p.enforcementLevel]));
            expect(mandatoryViolations(verdicts)).toEqual([]);
            const urns = new Set(resources.map((r) => r.urn));
            for (const v of verdicts.flatMap((x) => x.violations)) {
                expect(urns.has(v.urn!), `${v.urn} is a planned resource`).toBe(true);
                expect(v.message).not.toMatch(/can't run .* during preview/);
            }
        });
    }

    it("finds dev's service installs (bootstrap, firewall, faasd, keepalived) among its workloads, each covered by its own component", async () => {
        const resources = await plannedResources("dev");
        const installs = resources.filter((r) => r.type === REMOTE_COMMAND_TYPE && ["create", "stdin"].some((k) => typeof r.inputs[k] === "string" && INSTALLS_A_SERVICE.test(r.inputs[k] as string)));
        expect(installs.map((r) => r.name)).toEqual(expect.arrayContaining(["picloud-dev-1-bootstrap-script", "picloud-dev-1-firewall-script", "picloud-functions-faasd-script", "picloud-loadbalancer-dev-1-keepalived-script"]));
        for (const install of installs) {
            const attachment = resources.find((a) => a.parent === install.parent && a.type === ATTACHMENT_TYPE);
            expect(attachment?.inputs.covers, install.name).toContain(install.name);
        }
    });

    it("refuses dev once a component's monitoring is taken away, naming that component", async () => {
        const resources = await plannedResources("dev");
        const owners = resources.filter((r) => resources.some((a) => a.parent === r.urn && a.type === ATTACHMENT_TYPE));
        // Every kind of component dev runs is covered, the edge and compute tiers among them.
        expect(new Set(owners.map((o) => o.type))).toEqual(
            new Set(["picloud:host:PiHost", "picloud:monitoring:Monitoring", "picloud:registry:ServiceRegistry", "picloud:blob:BlobStorage", "picloud:database:Database", "picloud:apps:AppServers", "picloud:functions:Functions", "picloud:loadbalancer:LoadBalancer", "picloud:monitoring:VictoriaLogs"]),
        );
        for (const owner of owners) {
            const verdicts = await policyVerdicts(withoutAttachment(resources, owner.urn));
            expect(hasViolation(verdicts, monitoredComponents.name, owner.urn), owner.urn).toBe(true);
            expect(mandatoryViolations(verdicts).length).toBeGreaterThan(0);
        }
    });
});
