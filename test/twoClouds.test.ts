/**
 * Two PiClouds in one program: every child is named after its cloud, so the engine, which knows a
 * resource by its URN (type chain and name, not its parent's name), never sees two resources as one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { expect, it } from "vitest";
import { PiCloud } from "../components/cloud/piCloud";
import { parseStackConfig } from "../components/config/schema";
import { installMockRuntime } from "../components/plan/mockRuntime";

function devConfig() {
    const doc = YAML.parse(fs.readFileSync(path.resolve(__dirname, "..", "stacks", "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
    const values: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    for (const [full, value] of Object.entries(doc)) {
        const key = full.replace(/^picloud:/, "");
        if (value !== null && typeof value === "object" && "secure" in value) secretKeys.push(key);
        else values[key] = value;
    }
    // The example leaves the SSH key to each operator; a secret of some value stands in.
    return parseStackConfig({ values, secretKeys: [...secretKeys, "sshPrivateKey"] });
}

it("two PiClouds with the same Pi names in one program register no URN twice", async () => {
    const run = await installMockRuntime({ project: "picloud", stack: "dev", config: {}, secretKeys: [] });
    const config = devConfig();
    const secrets = Object.fromEntries(config.secretKeys.map((k) => [k, pulumi.secret("not-a-secret")]));
    new PiCloud("blue", { config, secrets, cloudName: "blue" });
    new PiCloud("green", { config, secrets, cloudName: "green" });
    await run.settle();

    const urns = run.resources.map((r) => r.urn);
    const twice = urns.filter((u, i) => urns.indexOf(u) !== i);
    expect(twice).toEqual([]);
    const blue = run.resources.filter((r) => r.name.startsWith("blue"));
    const green = run.resources.filter((r) => r.name.startsWith("green"));
    // Everything but the two clouds' own components lives under one name or the other, evenly.
    expect(blue.length).toBeGreaterThan(100);
    expect(green.length).toBe(blue.length);
    expect(blue.length + green.length).toBe(run.resources.length);
});
