import { readFileSync } from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { CloudPlan, planCloud } from "../../components/cloud/piCloud";
import { readPlacementLock } from "../../components/cloud/program";
import { PicloudConfigError } from "../../components/config/errors";
import { StackConfig, parseStackConfig } from "../../components/config/schema";

/** The folder of the example stacks' `Pulumi.<stack>.yaml` files. */
export const STACKS_DIR = path.resolve(__dirname, "../../stacks");

/** An example stack, validated and placed as the program would, without the Pulumi runtime. */
export interface ExampleStack {
    readonly config: StackConfig;
    readonly plan: CloudPlan;
}

/**
 * Validates `stacks/Pulumi.<stack>.yaml` and places its workloads, purely. The file holds no secret
 * values, so every secret the config needs is declared set (as `pulumi config set --secret` would)
 * and given a placeholder value: the pure layers only care that it exists.
 */
export function exampleStack(stack: string): ExampleStack {
    const doc = YAML.parse(readFileSync(path.join(STACKS_DIR, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
    const values = Object.fromEntries(Object.entries(doc.config ?? {}).flatMap(([key, value]) => (key.startsWith("picloud:") ? [[key.slice("picloud:".length), value]] : [])));
    let config: StackConfig;
    try {
        config = parseStackConfig({ values, secretKeys: [] });
    } catch (e) {
        if (!(e instanceof PicloudConfigError) || e.problems.some((p) => p.kind !== "missing-secret")) throw e;
        config = parseStackConfig({ values, secretKeys: e.problems.map((p) => p.key.slice("picloud:".length)) });
    }
    const secrets = Object.fromEntries(config.secretKeys.map((key) => [key, `placeholder for picloud:${key}`]));
    // Placed as `pulumi up` places it: from the stack's committed placement lock.
    return { config, plan: planCloud(config, secrets, { lock: readPlacementLock(path.join(STACKS_DIR, `placement.${stack}.json`)) }) };
}
