import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { imagePinnedByDigest } from "./imagePinnedByDigest";
import { analyzeStack } from "./testing/analyze";
import { ResourceTree } from "./testing/resourceTree";
import { hasNone, hasViolation, violationsOf } from "./testing/verdicts";

const POLICY = imagePinnedByDigest.name;
const PINNED = `nginx:1.27@sha256:${"ab12".repeat(16)}`;

async function verdictsFor(type: string, inputs: Record<string, unknown>) {
    const tree = new ResourceTree();
    const urn = tree.custom(type, "thing", inputs);
    return { urn, verdicts: await analyzeStack(tree.resources, [imagePinnedByDigest]) };
}
const pod = (...images: unknown[]) => ({ containers: images.map((image, i) => ({ name: `c${i}`, image })) });

describe(POLICY, () => {
    it("is advisory", async () => {
        const { verdicts } = await verdictsFor("docker:index/remoteImage:RemoteImage", { name: PINNED });
        expect(verdicts[0].enforcementLevel).toBe("advisory");
    });

    it("passes a RemoteImage pinned by digest", async () => {
        expect(hasNone((await verdictsFor("docker:index/remoteImage:RemoteImage", { name: PINNED })).verdicts, POLICY)).toBe(true);
    });

    it("reports a RemoteImage pulled by tag, naming it", async () => {
        const { urn, verdicts } = await verdictsFor("docker:index/remoteImage:RemoteImage", { name: "nginx:1.27" });
        expect(hasViolation(verdicts, POLICY, urn)).toBe(true);
        expect(violationsOf(verdicts, POLICY)[0].message).toBe(`${urn}: name "nginx:1.27" is not pinned by digest; use <image>@sha256:<digest>`);
    });

    it("reports a digest that is not 64 hex digits", async () => {
        const { urn, verdicts } = await verdictsFor("docker:index/remoteImage:RemoteImage", { name: "nginx@sha256:abc" });
        expect(hasViolation(verdicts, POLICY, urn)).toBe(true);
    });

    it("reads a docker container's image: a digest or an image ID passes, a tag is reported", async () => {
        const CONTAINER = "docker:index/container:Container";
        expect(hasNone((await verdictsFor(CONTAINER, { image: PINNED })).verdicts, POLICY)).toBe(true);
        expect(hasNone((await verdictsFor(CONTAINER, { image: `sha256:${"cd34".repeat(16)}` })).verdicts, POLICY)).toBe(true);
        expect(hasNone((await verdictsFor(CONTAINER, { image: pulumi.unknown })).verdicts, POLICY)).toBe(true);
        const tagged = await verdictsFor(CONTAINER, { image: "nginx:latest" });
        expect(violationsOf(tagged.verdicts, POLICY)[0].message).toBe(`${tagged.urn}: image "nginx:latest" is not pinned by digest; use <image>@sha256:<digest>`);
        const service = await verdictsFor("docker:index/service:Service", { taskSpec: { containerSpec: { image: "redis:7" } } });
        expect(violationsOf(service.verdicts, POLICY)[0].message).toContain(`taskSpec.containerSpec.image "redis:7"`);
    });

    it("checks every container of a Kubernetes workload, saying which one", async () => {
        const { urn, verdicts } = await verdictsFor("kubernetes:apps/v1:Deployment", { spec: { template: { spec: pod(PINNED, "redis:7") } } });
        expect(hasViolation(verdicts, POLICY, urn)).toBe(true);
        const violations = violationsOf(verdicts, POLICY);
        expect(violations).toHaveLength(1);
        expect(violations[0].message).toContain(`spec.template.spec.containers[1].image "redis:7"`);
    });

    it("finds the pod spec of a CronJob and of a bare Pod", async () => {
        const cron = await verdictsFor("kubernetes:batch/v1:CronJob", { spec: { jobTemplate: { spec: { template: { spec: pod("busybox") } } } } });
        expect(hasViolation(cron.verdicts, POLICY, cron.urn)).toBe(true);
        const bare = await verdictsFor("kubernetes:core/v1:Pod", { spec: pod(PINNED) });
        expect(hasNone(bare.verdicts, POLICY)).toBe(true);
    });

    it("says nothing about images that are unknown (preview)", async () => {
        expect(hasNone((await verdictsFor("docker:index/remoteImage:RemoteImage", { name: pulumi.unknown })).verdicts, POLICY)).toBe(true);
        const deployment = await verdictsFor("kubernetes:apps/v1:Deployment", { spec: { template: { spec: pod(pulumi.unknown, PINNED) } } });
        expect(hasNone(deployment.verdicts, POLICY)).toBe(true);
        const unknownSpec = await verdictsFor("kubernetes:apps/v1:Deployment", { spec: pulumi.unknown });
        expect(hasNone(unknownSpec.verdicts, POLICY)).toBe(true);
    });
});
