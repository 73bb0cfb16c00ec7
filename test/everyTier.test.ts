/**
 * prod with every tier on (the cache and the bus with its RabbitMQ option, which the example
 * leaves off), planned as `npm run plan` plans it: the cache's, the bus's and RabbitMQ's
 * components are built under the mock runtime,
 * each carries its monitoring (the policy pack refuses the stack without it); an app that uses
 * them gets their addresses plainly and their passwords as secrets only.
 */
import { rmSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ATTACHMENT_TYPE } from "../components/monitoring/contract";
import { mandatoryViolations, policyVerdicts } from "../components/plan/policyVerdicts";
import { runPlan } from "../components/plan/plan";
import { withoutAttachment } from "../policies/testing/resourceTree";
import { appSchema } from "../components/tiers/apps/config";
import { appWorkload } from "../components/tiers/apps/appServers";
import { busSchema } from "../components/tiers/bus/config";
import { busEnvironment } from "../components/tiers/bus/nats";
import { rabbitmqEnvironment } from "../components/tiers/bus/rabbitmq";
import { cacheEnvironment } from "../components/tiers/cache/valkey";
import { everyTierStackFile } from "./support/everyTier";

async function planned() {
    const rabbitmq = { allowSdCard: true, cpus: 0.25, memoryMb: 512, walMaxMb: 32, vhosts: { shop: { users: { worker: {} }, queues: { orders: {} } } } };
    // NATS fsyncs: its three nodes take prod's three SSD Pis, so the second monitoring replica makes room on data-2 and goes to app-2.
    const file = everyTierStackFile("prod", { bus: { cpus: 0.25, rabbitmq }, monitoring: { pis: ["data-1", "app-2"] } });
    try {
        const plan = await runPlan({ stack: "prod", source: { file } });
        if (!plan.ok) throw new Error(plan.error);
        return plan.resources;
    } finally {
        rmSync(path.dirname(file), { recursive: true, force: true });
    }
}

describe("prod with every tier on", () => {
    it("builds the cache, the bus and RabbitMQ, each monitored, and the policy pack passes it and refuses it without their monitoring", async () => {
        const resources = await planned();
        expect(mandatoryViolations(await policyVerdicts(resources))).toEqual([]);
        for (const type of ["picloud:cache:Cache", "picloud:bus:Bus", "picloud:bus:RabbitmqCluster"]) {
            const component = resources.find((r) => r.type === type);
            expect(component, type).toBeDefined();
            expect(resources.some((a) => a.parent === component!.urn && a.type === ATTACHMENT_TYPE), type).toBe(true);
            expect(mandatoryViolations(await policyVerdicts(withoutAttachment(resources, component!.urn))).length).toBeGreaterThan(0);
        }
        const containers = resources.filter((r) => r.type === "docker:index/container:Container").map((r) => r.name);
        for (const w of ["valkey-0", "valkey-2", "valkey-sentinel-2", "valkey-exporter-0", "valkey-sentinel-exporter-0", "nats-2", "nats-exporter-0", "rabbitmq-0", "rabbitmq-2"]) expect(containers.some((n) => n.endsWith(`-${w}`)), w).toBe(true);
        expect(resources.some((r) => r.name === "picloud-bus-streams")).toBe(true);
        expect(resources.some((r) => r.name === "picloud-rabbitmq-definitions")).toBe(true);
    });

    it("gives an app that uses the Sentinels, the bus and RabbitMQ their addresses plainly, and their passwords only as secrets", () => {
        const app = appSchema.parse({ image: `nginx@sha256:${"a".repeat(64)}`, memoryMb: 64, port: 80, metrics: { port: 9113 }, cache: true, busUser: "orders", rabbitmqUser: "worker" });
        const nodes = [{ address: "10.0.0.11" }, { address: "10.0.0.12" }];
        const bus = busSchema.parse({ rabbitmq: { vhosts: { shop: { users: { worker: {} } } } } });
        const w = appWorkload("web", app, {}, [], [cacheEnvironment(["10.0.0.11:26379", "10.0.0.12:26379"], "valkey-secret"), busEnvironment(nodes, bus, "orders", "nats-secret"), rabbitmqEnvironment(nodes, bus.rabbitmq!, "worker", "rabbitmq-secret")]);
        expect(w.env).toMatchObject({ VALKEY_SENTINELS: "10.0.0.11:26379,10.0.0.12:26379", VALKEY_MASTER_NAME: "picloud", NATS_URL: "nats://10.0.0.11:4222,nats://10.0.0.12:4222", NATS_USER: "orders", RABBITMQ_ADDRESSES: "10.0.0.11:5672,10.0.0.12:5672", RABBITMQ_VHOST: "shop", RABBITMQ_USER: "worker" });
        expect(w.secretEnv).toEqual({ VALKEY_PASSWORD: "valkey-secret", NATS_PASSWORD: "nats-secret", RABBITMQ_PASSWORD: "rabbitmq-secret" });
        expect(JSON.stringify(w.env)).not.toMatch(/secret/);
    });
});
