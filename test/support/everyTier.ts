import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { STACKS_DIR } from "./exampleStacks";

/**
 * An example stack's document with every tier the example leaves off turned on: the cache, and
 * the bus with an account, a user and a stream, and its first app using both (and RabbitMQ's first
 * user, when `overrides.bus.rabbitmq` declares one). Options (CPU limits, SD cards, RabbitMQ) come
 * from `overrides`, merged into the tiers.
 */
export function everyTierDocument(stack: string, overrides: Record<string, Record<string, unknown>> = {}): Record<string, unknown> {
    const doc = YAML.parse(readFileSync(path.join(STACKS_DIR, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, Record<string, unknown>> };
    const tiers = doc.config["picloud:tiers"] as Record<string, Record<string, unknown>>;
    tiers.cache = { ...(tiers.cache ?? {}), ...(overrides.cache ?? {}) };
    tiers.bus = { accounts: { shop: { users: { orders: {} }, streams: { ORDERS: { subjects: ["orders.>"] } } } }, ...(overrides.bus ?? {}) };
    for (const [tier, options] of Object.entries(overrides)) if (tier !== "cache" && tier !== "bus") tiers[tier] = { ...(tiers[tier] ?? {}), ...options };
    const apps = tiers.apps as Record<string, Record<string, unknown>>;
    const first = Object.keys(apps)[0];
    const rabbitmqUser = Object.values((tiers.bus.rabbitmq as { vhosts?: Record<string, { users?: Record<string, unknown> }> } | undefined)?.vhosts ?? {}).flatMap((v) => Object.keys(v.users ?? {}))[0];
    apps[first] = { ...apps[first], cache: true, busUser: "orders", ...(rabbitmqUser ? { rabbitmqUser } : {}) };
    return doc;
}

/**
 * {@link everyTierDocument} written as `Pulumi.<stack>.yaml` in a temp folder beside a copy of the
 * stack's placement lock, so what the example runs stays where it is and only the new tiers are
 * placed. Returns the file's path; the caller removes its folder.
 */
export function everyTierStackFile(stack: string, overrides: Record<string, Record<string, unknown>> = {}): string {
    const dir = mkdtempSync(path.join(tmpdir(), "picloud-every-tier-"));
    writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), YAML.stringify(everyTierDocument(stack, overrides)));
    copyFileSync(path.join(STACKS_DIR, `placement.${stack}.json`), path.join(dir, `placement.${stack}.json`));
    return path.join(dir, `Pulumi.${stack}.yaml`);
}
