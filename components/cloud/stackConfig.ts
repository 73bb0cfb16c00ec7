import * as pulumi from "@pulumi/pulumi";
import { RawStackConfig, StackConfig, parseStackConfig } from "../config/schema";
import type { SecretValues } from "../tiers/registry";

const NAMESPACE = "picloud";

/** Pulumi's own check for a secret config key; internal to the SDK but present at runtime. */
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret(key: string): boolean }).isConfigSecret;

/**
 * Reads the `picloud:` namespace of the running stack. Plain values are JSON-decoded the way
 * `Config.getObject` does; secret values are left out and only their keys reported.
 */
export function readStackConfig(): RawStackConfig {
    const values: Record<string, unknown> = {};
    const secretKeys: string[] = [];
    for (const [fullKey, text] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
        const key = fullKey.slice(NAMESPACE.length + 1);
        if (isConfigSecret(fullKey)) {
            secretKeys.push(key);
            continue;
        }
        values[key] = decode(text);
    }
    return { values, secretKeys };
}

function decode(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** Reads and validates the running stack's config; throws PicloudConfigError naming each bad key. */
export function loadStackConfig(): StackConfig {
    return parseStackConfig(readStackConfig());
}

/** The secret values a validated config refers to, as Pulumi secrets. */
export function secretValues(config: StackConfig): SecretValues {
    const cfg = new pulumi.Config(NAMESPACE);
    return Object.fromEntries(config.secretKeys.map((key) => [key, cfg.requireSecret(key)]));
}
