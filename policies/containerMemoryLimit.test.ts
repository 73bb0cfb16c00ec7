import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { containerMemoryLimit } from "./containerMemoryLimit";
import { analyzeStack } from "./testing/analyze";
import { ResourceTree } from "./testing/resourceTree";
import { hasNone, hasViolation, violationsOf } from "./testing/verdicts";

const POLICY = containerMemoryLimit.name;
const CONTAINER = "docker:index/container:Container";

async function verdictsFor(inputs: Record<string, unknown>, type = CONTAINER) {
    const tree = new ResourceTree();
    const urn = tree.custom(type, "hello-1", { image: "nginx", ...inputs });
    return { urn, verdicts: await analyzeStack(tree.resources, [containerMemoryLimit]) };
}

describe(POLICY, () => {
    it("is advisory", async () => {
        const { verdicts } = await verdictsFor({ memory: 256 });
        expect(verdicts[0].enforcementLevel).toBe("advisory");
    });

    it("passes a container with a memory limit", async () => {
        expect(hasNone((await verdictsFor({ memory: 256 })).verdicts, POLICY)).toBe(true);
    });

    it("reports a container without memory, naming it", async () => {
        const { urn, verdicts } = await verdictsFor({});
        expect(hasViolation(verdicts, POLICY, urn)).toBe(true);
        expect(violationsOf(verdicts, POLICY)[0].message).toBe(`${urn}: memory is not set; set memory (MB) to what the container needs, e.g. memory: 256`);
    });

    it("reports a zero memory limit", async () => {
        const { urn, verdicts } = await verdictsFor({ memory: 0 });
        expect(hasViolation(verdicts, POLICY, urn)).toBe(true);
        expect(violationsOf(verdicts, POLICY)[0].message).toContain("memory is 0");
    });

    it("says nothing while memory is unknown (preview)", async () => {
        expect(hasNone((await verdictsFor({ memory: pulumi.unknown })).verdicts, POLICY)).toBe(true);
        expect(hasNone((await verdictsFor({ memory: pulumi.output(1).apply(() => pulumi.unknown) })).verdicts, POLICY)).toBe(true);
    });

    it("leaves other resource types alone", async () => {
        expect(hasNone((await verdictsFor({}, "docker:index/remoteImage:RemoteImage")).verdicts, POLICY)).toBe(true);
    });
});
