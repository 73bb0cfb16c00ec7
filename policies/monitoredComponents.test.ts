import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ATTACHMENT_TYPE } from "../components/monitoring/contract";
import { monitoredComponents } from "./monitoredComponents";
import { analyzeStack } from "./testing/analyze";
import { ResourceTree, withoutAttachment } from "./testing/resourceTree";
import { hasNone, hasViolation, violationsOf } from "./testing/verdicts";

const POLICY = monitoredComponents.name;
const CONTAINER = "docker:index/container:Container";
const analyze = (tree: ResourceTree) => analyzeStack(tree.resources, [monitoredComponents]);

describe(POLICY, () => {
    it("is mandatory", async () => {
        const [verdict] = await analyze(new ResourceTree());
        expect(verdict.enforcementLevel).toBe("mandatory");
    });

    it("passes a component that runs a container and carries an Attachment", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        tree.custom(CONTAINER, "hello-1", { image: "nginx" }, app);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses a picloud component that runs something with no Attachment, naming it and the fix", async () => {
        const tree = new ResourceTree();
        const app = tree.component("picloud:apps:AppServers", "hello");
        tree.custom("command:remote:Command", "hello-setup", {}, app);
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
        tree.custom(CONTAINER, "hello-1", {}, app);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses a bare container at the top of the stack", async () => {
        const tree = new ResourceTree();
        const container = tree.custom(CONTAINER, "stray");
        const verdicts = await analyze(tree);
        expect(hasViolation(verdicts, POLICY, container)).toBe(true);
        expect(violationsOf(verdicts, POLICY)[0].message).toMatch(new RegExp(`^${escape(container)} sits outside a monitored component`));
    });

    it("passes a container nested two levels under a monitored component", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        const group = tree.component("acme:app:Group", "hello-group", app);
        const replica = tree.component("acme:app:Replica", "hello-r1", group);
        tree.custom(CONTAINER, "hello-r1-c", {}, replica);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("still asks a picloud component nested under a monitored one for its own Attachment when it runs something", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        const replica = tree.component("picloud:apps:Replica", "hello-r1", app);
        tree.custom(CONTAINER, "hello-r1-c", {}, replica);
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations.map((v) => v.urn)).toEqual([replica]);
    });

    it("counts a user's own component type as monitored when it carries an Attachment", async () => {
        const tree = new ResourceTree();
        const thing = tree.monitoredComponent("acme:app:Thing", "thing");
        tree.custom(CONTAINER, "thing-c", {}, thing);
        tree.custom("kubernetes:apps/v1:Deployment", "thing-d", {}, thing);
        expect(hasNone(await analyze(tree), POLICY)).toBe(true);
    });

    it("refuses the workloads of a user's component without an Attachment, not the component's type", async () => {
        const tree = new ResourceTree();
        const thing = tree.component("acme:app:Thing", "thing");
        const container = tree.custom(CONTAINER, "thing-c", {}, thing);
        const job = tree.custom("kubernetes:batch/v1:CronJob", "thing-job", {}, thing);
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations.map((v) => v.urn).sort()).toEqual([container, job].sort());
    });

    it("refuses a component once its Attachment is taken away", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        const container = tree.custom(CONTAINER, "hello-1", {}, app);
        const verdicts = await analyzeStack(withoutAttachment(tree.resources, app), [monitoredComponents]);
        expect(hasViolation(verdicts, POLICY, app)).toBe(true);
        expect(hasViolation(verdicts, POLICY, container)).toBe(true);
    });

    it("decides on types and parents alone: unknown props in preview change nothing", async () => {
        const tree = new ResourceTree();
        const app = tree.monitoredComponent("picloud:apps:AppServers", "hello");
        tree.custom(CONTAINER, "hello-1", { image: pulumi.unknown, memory: pulumi.unknown }, app);
        const stray = tree.custom(CONTAINER, "stray", { image: pulumi.unknown });
        const violations = violationsOf(await analyze(tree), POLICY);
        expect(violations).toEqual([expect.objectContaining({ urn: stray, enforcementLevel: "mandatory" })]);
    });
});

function escape(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
