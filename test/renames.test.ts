/**
 * Renames in one `pulumi up`: an app or a Pi given `renamedFrom` keeps its replicas where the
 * placement lock has them and carries every resource over by alias, so the engine updates them in
 * place (a container is replaced with its old one stopped first: no port clash) instead of
 * creating new ones beside the old. The engine lane renames a Pi for real (test/engine).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { readPlacementLock } from "../components/cloud/program";
import { runPlan } from "../components/plan/plan";

const stacks = path.resolve(__dirname, "..", "stacks");
const lock = readPlacementLock(path.join(stacks, "placement.dev.json"))!;
const dev = () => YAML.parse(fs.readFileSync(path.join(stacks, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> };

async function planned(edit: (config: Record<string, any>) => void) {
    const doc = dev();
    edit(doc.config);
    const plan = await runPlan({ stack: "dev", source: { document: doc }, placement: { lock } });
    if (!plan.ok) throw new Error(plan.error);
    const named = (name: string) => {
        const r = plan.resources.find((x) => x.name === name);
        if (!r) throw new Error(`no resource ${name}`);
        return r;
    };
    return { plan, named };
}

describe("renaming an app with renamedFrom", () => {
    const rename = (config: Record<string, any>) => {
        const apps = config["picloud:tiers"].apps;
        apps.web = { ...apps.hello, renamedFrom: "hello" };
        delete apps.hello;
    };

    it("keeps every replica on its Pi, listing the rename, and carries each resource over by alias", async () => {
        const { plan, named } = await planned(rename);
        expect(plan.lock.replicas["app-web"]).toEqual(lock.replicas["app-hello"]);
        expect(plan.lock.replicas["app-hello"]).toBeUndefined();
        expect(plan.placementChanges.map((c) => c.reason)).toEqual(lock.replicas["app-hello"].map(() => "renamed from app-hello"));
        // Its old name, and its name before names were scoped by the cloud's (the engine gives
        // each child its parent's aliases too, so a child named after its parent needs none more).
        expect([...named("picloud-web").aliases!].sort()).toEqual(["hello", "picloud-hello", "web"]);
        lock.replicas["app-hello"].forEach((pi, i) => {
            const container = named(`picloud-web-app-web-${i}`);
            expect([...container.aliases!].sort()).toEqual([`app-hello-${i}`, `app-web-${i}`, `picloud-hello-app-hello-${i}`]);
            expect(container.deleteBeforeReplace).toBe(true);
            expect(container.provider).toContain(`::picloud-${pi}-docker::`);
        });
        expect(named("picloud-web-monitoring").aliases).toEqual(["picloud-hello-monitoring"]);
        // Its monitoring files on each monitoring Pi; the first's also under the name it had with one monitoring Pi, both old and new.
        expect([...named("picloud-web-monitoring-file-sd-dev-1").aliases!].sort()).toEqual(["picloud-hello-monitoring-file-sd", "picloud-hello-monitoring-file-sd-dev-1", "picloud-web-monitoring-file-sd"]);
        expect(named("picloud-web-monitoring-file-sd-dev-3").aliases).toEqual(["picloud-hello-monitoring-file-sd-dev-3"]);
    });

    it("writes its monitoring files under the new name and removes the old ones", async () => {
        const { named } = await planned(rename);
        const ship = named("picloud-web-monitoring-file-sd-dev-3").inputs.create as string;
        expect(ship).toContain("/srv/picloud/monitoring/prometheus/file_sd/apps-web.json");
        expect(ship).toMatch(/mv -f "\$t" "\$f"; rm -f '\/srv\/picloud\/monitoring\/prometheus\/file_sd\/apps-hello\.json'$/);
    });

    it("renames nothing else: without renamedFrom the old replicas go and new ones are placed", async () => {
        const { plan, named } = await planned((config) => {
            const apps = config["picloud:tiers"].apps;
            apps.web = apps.hello;
            delete apps.hello;
        });
        expect(named("picloud-web").aliases).toEqual(["web"]);
        expect(plan.placementChanges.filter((c) => c.workload === "app-hello").every((c) => c.to === undefined)).toBe(true);
        expect(plan.placementChanges.filter((c) => c.workload === "app-web").every((c) => c.reason === "new replica")).toBe(true);
    });
});

describe("renaming a Pi with renamedFrom", () => {
    // dev-3 is one of the monitoring Pis the config names: it is renamed there too.
    const rename = (config: Record<string, any>) => {
        config["picloud:pis"][2] = { ...config["picloud:pis"][2], name: "dev-9", renamedFrom: "dev-3" };
        config["picloud:tiers"].monitoring.pis = ["dev-1", "dev-9"];
    };

    it("keeps its replicas on it under the new name and carries the host, its provider and its monitoring over", async () => {
        const { plan, named } = await planned(rename);
        const onIt = Object.entries(lock.replicas).flatMap(([w, pis]) => pis.flatMap((p, i) => (p === "dev-3" ? [`${w}#${i}`] : [])));
        expect(onIt.length).toBeGreaterThan(0);
        expect(plan.placementChanges.map((c) => `${c.workload}#${c.replica}: ${c.reason}`)).toEqual(onIt.map((r) => `${r}: Pi dev-3 renamed to dev-9`));
        expect(plan.placementChanges.every((c) => c.from === "dev-3" && c.to === "dev-9")).toBe(true);
        expect([...named("picloud-dev-9").aliases!].sort()).toEqual(["dev-3", "dev-9", "picloud-dev-3"]);
        for (const step of ["booted", "bootstrap-script", "bootstrap", "ready", "firewall-script", "firewall", "firewall-confirmed", "docker", "monitoring"]) {
            expect(named(`picloud-dev-9-${step}`).aliases).toEqual([`picloud-dev-3-${step}`]);
        }
        expect(named("picloud-dev-9-monitoring-rules-dev-1").inputs.create).toMatch(/rm -f '\/srv\/picloud\/monitoring\/prometheus\/rules\/host-dev-3\.yml'$/);
    });

    it("a monitoring Pi renamed: what every component delivers there, and the tier's own files, carry over from the names after its old name", async () => {
        const { plan, named } = await planned(rename);
        expect(plan.lock.replicas.prometheus).toEqual(["dev-1", "dev-9"]);
        expect(named("picloud-registry-monitoring-rules-dev-9").aliases).toEqual(["picloud-registry-monitoring-rules-dev-3"]);
        expect(named("picloud-monitoring-prometheus-config-dev-9").aliases).toEqual(["picloud-monitoring-prometheus-config-dev-3"]);
        // Its own host's files there: its old name twice over, in the component's name and in the Pi's.
        expect(named("picloud-dev-9-monitoring-rules-dev-9").aliases).toEqual(expect.arrayContaining(["picloud-dev-3-monitoring-rules-dev-3"]));
    });

    it("refuses a renamedFrom that is the name of a Pi of the stack", async () => {
        const doc = dev();
        doc.config["picloud:pis"][2].renamedFrom = "dev-1";
        const plan = await runPlan({ stack: "dev", source: { document: doc }, placement: { lock } });
        expect(plan.ok).toBe(false);
        if (!plan.ok) expect(plan.error).toContain('picloud:pis[2].renamedFrom: expected the Pi\'s earlier name, got "dev-1", which is the name of a Pi of this stack now');
    });
});
