/**
 * Replacing a member of a quorum group (etcd): the plan records where the cluster was formed
 * (`founders` in the lock) once a member runs anywhere else; that member starts as `existing`
 * after a join step, run through a member that stays. Replacing a majority at once, or shrinking
 * the cluster, is refused. The join step itself runs against real etcd in registry.etcd.test.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { readPlacementLock } from "../components/cloud/program";
import { parsePlacementLock, renderPlacementLock } from "../components/placement/lock";
import { runPlan } from "../components/plan/plan";

const stacks = path.resolve(__dirname, "..", "stacks");
const lock = readPlacementLock(path.join(stacks, "placement.dev.json"))!;
const dev = () => YAML.parse(fs.readFileSync(path.join(stacks, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> };
const NEW_PI = { name: "dev-4", address: "192.168.10.14", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0", model: "pi4", memoryMb: 4096, labels: { role: "data" } };

async function planned(edit: (config: Record<string, any>) => void, from = lock) {
    const doc = dev();
    edit(doc.config);
    return runPlan({ stack: "dev", source: { document: doc }, placement: { lock: from } });
}
/** dev-3 replaced by dev-4, among the monitoring Pis the config names too. */
const replaceDev3 = (config: Record<string, any>) => {
    config["picloud:pis"] = [...config["picloud:pis"].filter((p: { name: string }) => p.name !== "dev-3"), NEW_PI];
    const monitoring = config["picloud:tiers"].monitoring;
    monitoring.pis = monitoring.pis.map((pi: string) => (pi === "dev-3" ? NEW_PI.name : pi));
};

describe("a quorum member whose Pi is replaced", () => {
    const member = lock.replicas.etcd.indexOf("dev-3");

    it("records the founders in the lock and starts the moved member as existing, after a join step through a member that stays", async () => {
        const plan = await planned(replaceDev3);
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.lock.replicas.etcd[member]).toBe("dev-4");
        expect(plan.lock.founders).toEqual({ etcd: lock.replicas.etcd });
        const named = (name: string) => plan.resources.find((r) => r.name === name)!;
        const container = named(`picloud-registry-etcd-${member}`);
        expect(container.inputs.command).toContain("--initial-cluster-state=existing");
        const join = named(`picloud-registry-etcd-${member}-join`);
        expect(join.inputs.create).toContain(`add "$name" --peer-urls="$url"`);
        expect(join.inputs.create).toContain(`url='https://192.168.10.14:2380'`);
        // Through a member that stays, on its own Pi, and before the joining member starts.
        const via = lock.replicas.etcd.findIndex((pi) => pi !== "dev-3");
        expect((join.inputs.connection as { host: string }).host).toBe(plan.outputs.pis[lock.replicas.etcd[via]]);
        expect(join.inputs.create).toContain(`'etcd-${via}' 'etcdctl'`);
        expect(container.dependencies).toContain(join.urn);
        for (const [i] of lock.replicas.etcd.entries()) {
            if (i !== member) expect(named(`picloud-registry-etcd-${i}`).inputs.command).toContain("--initial-cluster-state=new");
        }
    });

    it("keeps the founders on the next run, so the member stays existing and the lock does not change", async () => {
        const first = await planned(replaceDev3);
        if (!first.ok) throw new Error(first.error);
        const written = parsePlacementLock(renderPlacementLock(first.lock, "dev"), "placement.dev.json");
        expect(written).toEqual(first.lock);
        const second = await planned(replaceDev3, written);
        if (!second.ok) throw new Error(second.error);
        expect(second.lock).toEqual(first.lock);
        expect(second.placementChanges).toEqual([]);
    });

    it("records nothing while every member is where the cluster was formed", async () => {
        const plan = await planned(() => {});
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.lock.founders).toBeUndefined();
        expect(plan.resources.some((r) => r.name.endsWith("-join"))).toBe(false);
    });

    it("refuses to replace a majority of the members in one up, naming the key and the moves", async () => {
        const plan = await planned((config) => {
            config["picloud:pis"] = [config["picloud:pis"][0], { ...NEW_PI }, { ...NEW_PI, name: "dev-5", address: "192.168.10.15", labels: { role: "edge" } }];
            config["picloud:tiers"].monitoring.pis = ["dev-1", "dev-4"];
        });
        expect(plan.ok).toBe(false);
        if (!plan.ok) expect(plan.error).toMatch(/picloud:tiers\.registry\.replicas: quorum group "etcd" would replace 2 of its 3 members at once \(.*\): the 1 that stay are no majority/);
    });

    it("refuses to shrink the cluster, which would keep counting the members it lost", async () => {
        const plan = await planned((config) => {
            config["picloud:pis"] = config["picloud:pis"].slice(0, 2);
            config["picloud:tiers"].monitoring.pis = ["dev-1", "dev-2"];
            config["picloud:tiers"].apps.hello.replicas = 2;
        });
        expect(plan.ok).toBe(false);
        if (!plan.ok) expect(plan.error).toContain('picloud:tiers.registry.replicas: quorum group "etcd" would shrink from 3 members to 1');
    });
});

it("the plan's report lists the member that joins", async () => {
    const { formatPlan } = await import("../components/plan/report");
    const plan = await planned(replaceDev3);
    if (!plan.ok) throw new Error(plan.error);
    const member = lock.replicas.etcd.indexOf("dev-3");
    expect(formatPlan(plan)).toContain(`etcd#${member} on dev-4 joins the running cluster (formed on dev-3): a join step adds it first`);
});

describe("blob storage's nodes (a quorum group whose init step manages its members)", () => {
    it("moves a node off a replaced Pi without a join step or founders: the init step lays the new node out", async () => {
        const plan = await planned(replaceDev3);
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.lock.replicas.garage).toContain("dev-4");
        expect(Object.keys(plan.lock.founders ?? {})).toEqual(["etcd"]);
    });

    it("grows while each object keeps its three copies", async () => {
        const plan = await planned((config) => {
            config["picloud:pis"] = [...config["picloud:pis"], NEW_PI];
            config["picloud:tiers"].blob.nodes = 4;
        });
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.lock.replicas.garage).toHaveLength(4);
    });

    it("refuses a node count that would change the copies its running cluster was formed with, either way", async () => {
        // Only two Pis may carry a node now: three nodes would become two, keeping two copies.
        const shrunk = await planned((config) => {
            config["picloud:tiers"].blob.allowSdCard = false;
            for (const pi of config["picloud:pis"].slice(0, 2)) pi.storage = "ssd";
        });
        expect(shrunk.ok).toBe(false);
        if (!shrunk.ok) {
            expect(shrunk.error).toContain('picloud:tiers.blob: quorum group "garage" was formed with 3 member(s) keeping 3 copies of everything, fixed for the life of its data; 2 would keep 2');
            expect(shrunk.error).toContain("expected at least 3 members");
        }
        // A cluster formed on two nodes keeps two copies: a third node would ask for three.
        const formedOnTwo = { ...lock, replicas: { ...lock.replicas, garage: lock.replicas.garage.slice(0, 2) } };
        const grown = await planned(() => {}, formedOnTwo);
        expect(grown.ok).toBe(false);
        if (!grown.ok) expect(grown.error).toContain("2 member(s) keeping 2 copies of everything, fixed for the life of its data; 3 would keep 3, which the running cluster refuses; expected 2 members, or a new cluster with its data moved over");
    });
});
