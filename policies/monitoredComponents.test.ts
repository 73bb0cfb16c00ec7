import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ATTACHMENT_TYPE as COMPONENTS_ATTACHMENT_TYPE } from "../components/monitoring/contract";
import { monitoredComponents } from "./monitoredComponents";
import { analyzeStack } from "./testing/analyze";
import { ResourceTree, withoutAttachment } from "./testing/resourceTree";
import { hasNone, hasViolation, violationsOf } from "./testing/verdicts";
import { ATTACHMENT_TYPE, K8S_POD_SPEC_PATHS, STACK_TYPE } from "./workloadTypes";

const POLICY = monitoredComponents.name;
const CONTAINER = "docker:index/container:Container";
const COMMAND = "command:remote:Command";
const analyze = (tree: ResourceTree) => analyzeStack(tree.resources, [monitoredComponents]);
const violatingUrns = async (tree: ResourceTree) => violationsOf(await analyze(tree), POLICY).map((v) => v.urn);

describe(POLICY, () => {
    it("is mandatory, and its copy of the Attachment type is the components' own", async () => {
        const [verdict] = await analyze(new ResourceTree());
        expect(verdict.enforcementLevel).toBe("mandatory");
        expect(ATTACHMENT_TYPE).toBe(COMPONENTS_ATTACHMENT_TYPE);
    });

    it("passes a component whose delivered Attachment lists the container it runs", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        tree.covered(CONTAINER, "hello-1", { image: "nginx" }, app);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses a container its component's Attachment does not list, naming the fix", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        tree.covered(CONTAINER, "hello-1", {}, app);
        const extra = tree.custom(CONTAINER, "hello-sidecar", {}, app);
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations.map((v) => v.urn)).toEqual([extra]);
        expect(violations[0].message).toContain(`is not covered by the monitoring of its component ${app}: its ${ATTACHMENT_TYPE} does not list "hello-sidecar" in covers`);
    });

    it("refuses a picloud component that runs something with no Attachment, naming it and the fix", async () => {
        const tree = new ResourceTree();
        const app = tree.component("picloud:apps:AppServers", "hello");
        tree.custom(COMMAND, "hello-setup", {}, app);
        const verdicts = await analyze(tree);
        expect(hasViolation(verdicts, POLICY, app)).toBe(true);
        const [violation] = violationsOf(verdicts, POLICY);
        expect(violation.message).toBe(`${app} has no ${ATTACHMENT_TYPE} child: declare its monitoring (see README "Monitoring your own component")`);
        expect(violation.enforcementLevel).toBe("mandatory");
    });

    it("does not ask a component that runs nothing itself (only components under it) for an Attachment", async () => {
        const tree = new ResourceTree();
        const cloud = tree.component("picloud:cloud:PiCloud", "cloud");
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello", cloud);
        tree.covered(CONTAINER, "hello-1", {}, app);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses a bare container at the top of the stack", async () => {
        const tree = new ResourceTree();
        const container = tree.custom(CONTAINER, "stray");
        const verdicts = await analyze(tree);
        expect(hasViolation(verdicts, POLICY, container)).toBe(true);
        expect(violationsOf(verdicts, POLICY)[0].message).toMatch(new RegExp(`^${escape(container)} sits outside a monitored component`));
    });

    it("passes a container nested under a monitored component when the group holding it is listed", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("acme:app:Thing", "hello");
        const group = tree.component("acme:app:Group", "hello-group", app);
        tree.cover(app, "hello-group");
        const replica = tree.component("acme:app:Replica", "hello-r1", group);
        tree.custom(CONTAINER, "hello-r1-c", {}, replica);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("still asks a picloud component nested under a monitored one for its own Attachment when it runs something", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        const replica = tree.component("picloud:apps:Replica", "hello-r1", app);
        tree.cover(app, "hello-r1");
        tree.custom(CONTAINER, "hello-r1-c", {}, replica);
        expect(await violatingUrns(tree)).toEqual([replica]);
    });

    it("counts a user's own component type as monitored when its Attachment lists what it runs", async () => {
        const tree = new ResourceTree();
        const thing = tree.monitoredComponent("acme:app:Thing", "thing");
        tree.covered(CONTAINER, "thing-c", {}, thing);
        tree.covered("kubernetes:apps/v1:Deployment", "thing-d", {}, thing);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses the workloads of a user's component without an Attachment, not the component's type", async () => {
        const tree = new ResourceTree();
        const thing = tree.component("acme:app:Thing", "thing");
        const container = tree.custom(CONTAINER, "thing-c", {}, thing);
        const job = tree.custom("kubernetes:batch/v1:CronJob", "thing-job", {}, thing);
        expect((await violatingUrns(tree)).sort()).toEqual([container, job].sort());
    });

    it("refuses a component once its Attachment is taken away", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        const container = tree.covered(CONTAINER, "hello-1", {}, app);
        const verdicts = await analyzeStack(withoutAttachment(tree.resources, app), [monitoredComponents]);
        expect(hasViolation(verdicts, POLICY, app)).toBe(true);
        expect(hasViolation(verdicts, POLICY, container)).toBe(true);
    });

    it("decides on types, parents and plain declarations: unknown container props in preview change nothing", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        tree.covered(CONTAINER, "hello-1", { image: pulumi.unknown, memory: pulumi.unknown }, app);
        const stray = tree.custom(CONTAINER, "stray", { image: pulumi.unknown });
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations).toEqual([expect.objectContaining({ urn: stray, enforcementLevel: "mandatory" })]);
    });
});

describe(`${POLICY} refuses every way around it`, () => {
    it("an Attachment parented to the stack, which would otherwise monitor every container", async () => {
        const tree = new ResourceTree();
        const stack = tree.component(STACK_TYPE, "picloud-dev");
        const attachment = tree.attachment(stack);
        const container = tree.custom(CONTAINER, "anything", {}, stack);
        tree.cover(stack, "anything");
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations.map((v) => v.urn)).toContain(attachment);
        expect(violations.find((v) => v.urn === attachment)?.message).toContain("sits on the stack, not inside a component");
        expect(container).toBeDefined();
    });

    it("a user's component placed under an unrelated, monitored PiHost", async () => {
        const tree = new ResourceTree();
        const host = tree.monitoredComponent("picloud:host:PiHost", "dev-1");
        tree.covered(COMMAND, "dev-1-bootstrap", { create: "sudo -n bash /var/lib/picloud/scripts/bootstrap.sh" }, host);
        const mine = tree.component("acme:shop:Cart", "cart", host);
        const container = tree.custom(CONTAINER, "cart-web", {}, mine);
        expect(await violatingUrns(tree)).toEqual([container]);
    });

    it("a bare ComponentResource typed as an Attachment", async () => {
        const tree = new ResourceTree();
        const thing = tree.component("acme:app:Thing", "thing");
        const fake = tree.component(ATTACHMENT_TYPE, "thing-monitoring", thing);
        const container = tree.custom(CONTAINER, "thing-c", {}, thing);
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations.map((v) => v.urn).sort()).toEqual([fake, container].sort());
        expect(violations.find((v) => v.urn === fake)?.message).toContain("is not a picloud Attachment: it declares no covers");
    });

    it("an Attachment delivered nowhere", async () => {
        const tree = new ResourceTree();
        const thing = tree.monitoredComponent("acme:app:Thing", "thing", "", { delivered: false });
        tree.covered(CONTAINER, "thing-c", {}, thing);
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations).toEqual([expect.objectContaining({ urn: `${thing.replace("acme:app:Thing::thing", `acme:app:Thing$${ATTACHMENT_TYPE}::thing-monitoring`)}` })]);
        expect(violations[0].message).toContain("is delivered to no monitoring endpoint");
    });

    it.each(["kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart", "kubernetes:apps/v1:DeploymentPatch", "kubernetes:core/v1:ReplicationController", "kubernetes:apps/v1beta2:StatefulSet"])(
        "a %s outside monitoring",
        async (type) => {
            const tree = new ResourceTree();
            const thing = tree.component("acme:app:Thing", "thing");
            const workload = tree.custom(type, "w", {}, thing);
            expect(await violatingUrns(tree)).toEqual([workload]);
        },
    );

    it("a non-picloud component that installs a service with remote.Command, in its command or in the script it ships", async () => {
        const tree = new ResourceTree();
        const thing = tree.component("acme:ops:Setup", "setup");
        const direct = tree.custom(COMMAND, "setup-agent", { create: "sudo systemctl enable --now my-agent" }, thing);
        const shipped = tree.custom(COMMAND, "setup-script", { create: "cat > /var/lib/x/install.sh", stdin: "#!/bin/sh\napt-get -y install redis-server\n" }, thing);
        tree.custom(COMMAND, "setup-echo", { create: "echo hello" }, thing);
        tree.custom(COMMAND, "setup-later", { create: pulumi.unknown }, thing);
        expect((await violatingUrns(tree)).sort()).toEqual([direct, shipped].sort());
    });

    it("covers every Kubernetes kind it knows in each API version, patches included", () => {
        for (const kind of ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]) {
            expect(K8S_POD_SPEC_PATHS[`kubernetes:apps/v1:${kind}`]).toEqual(["spec", "template", "spec"]);
            expect(K8S_POD_SPEC_PATHS[`kubernetes:apps/v1:${kind}Patch`]).toEqual(["spec", "template", "spec"]);
        }
        expect(K8S_POD_SPEC_PATHS["kubernetes:batch/v1:CronJobPatch"]).toEqual(["spec", "jobTemplate", "spec", "template", "spec"]);
    });
});

function escape(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
