import { createRequire } from "node:module";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

// A user's own stack: it imports picloud by package name and writes its own component.
const requireFromConsumer = createRequire(path.join(__dirname, "consumer-stack.js"));
const picloud = requireFromConsumer("picloud") as typeof import("../components");
const pulumi = requireFromConsumer("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
const docker = requireFromConsumer("@pulumi/docker") as typeof import("@pulumi/docker");

const IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1@sha256:862ca45e61b32392f7941a1bdfdbe5ff8b6899070135f1bdca1c287d0057fc94";

const CART_SPEC = (() => {
    const job = { job: "acme-cart", targets: ["192.168.1.40:9797"] };
    return {
        component: "acme-cart",
        scrapeTargets: [job],
        alertRules: [
            picloud.targetDownRule(job),
            { alert: "AcmeCartSlow", expr: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="acme-cart"}[5m]))) > 0.5', for: "10m", severity: "warning" as const, summary: "Cart p99 above 500 ms", description: "Checkout feels slow." },
        ],
        dashboard: { uid: "acme-cart", title: "acme / cart", panels: [{ title: "p99", expr: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="acme-cart"}[5m])))', unit: "s" }] },
        logLabels: { team: "shop" },
    };
})();

/** The README's example: a component of the user's own, monitored through picloud's public API; its monitoring covers what it runs. */
class Cart extends picloud.MonitoredComponent {
    constructor(name: string, endpoint: import("../components").MonitoringEndpoint | undefined, opts?: import("@pulumi/pulumi").ComponentResourceOptions) {
        super("acme:shop:Cart", name, opts);
        new docker.Container(`${name}-0`, { image: IMAGE, memory: 64 }, { parent: this });
        this.attach(CART_SPEC, endpoint);
        this.registerOutputs({});
    }
}

/** The same component written without monitoring, or with an attachment that lists less than it runs. */
class PlainCart extends pulumi.ComponentResource {
    constructor(name: string, attach?: { endpoint: import("../components").MonitoringEndpoint; covers: string[] }, opts?: import("@pulumi/pulumi").ComponentResourceOptions) {
        super("acme:shop:Cart", name, {}, opts);
        new docker.Container(`${name}-0`, { image: IMAGE, memory: 64 }, { parent: this });
        new docker.Container(`${name}-1`, { image: IMAGE, memory: 64 }, { parent: this });
        if (attach) picloud.attachMonitoring(this, name, CART_SPEC, attach.endpoint, attach.covers);
        this.registerOutputs({});
    }
}

const endpoint = () =>
    picloud.monitoringEndpointFromOutput(
        { host: "192.168.1.10", port: 22, user: "pi", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0", fileSdDir: "/fsd", rulesDir: "/rules", dashboardsDir: "/dash", prometheusPort: 9090 },
        pulumi.secret("placeholder"),
    );

async function verdictsOf(build: () => void) {
    const run = await picloud.installMockRuntime({ project: "shop", stack: "test", config: {}, secretKeys: [] });
    build();
    await run.settle();
    return { run, violations: picloud.mandatoryViolations(await picloud.policyVerdicts(run.resources)) };
}

describe("a user's own component", () => {
    it("attaches monitoring through the public API, delivered to another stack's Monitoring tier, and passes", async () => {
        const { run, violations } = await verdictsOf(() => new Cart("cart", endpoint()));
        expect(violations).toEqual([]);
        const copies = run.resources.flatMap((r) => picloud.shippedPath(r.inputs.create) ?? []).sort();
        expect(copies).toEqual(["/dash/acme-cart.json", "/fsd/acme-cart.json", "/rules/acme-cart.yml"]);
        expect(run.resources.find((r) => r.type === "picloud:monitoring:Attachment")?.inputs).toMatchObject({ covers: ["cart-0"], delivered: true });
    });

    it("is refused without monitoring, naming the URN of what it runs", async () => {
        const { violations } = await verdictsOf(() => new PlainCart("cart"));
        expect(violations.map((v) => v.message).join("\n")).toMatch(/urn:pulumi:test::shop::acme:shop:Cart\$docker:index\/container:Container::cart-0 sits outside a monitored component/);
    });

    it("is refused when its attachment lists less than it runs, or is delivered nowhere", async () => {
        const partly = await verdictsOf(() => new PlainCart("cart", { endpoint: endpoint(), covers: ["cart-0"] }));
        expect(partly.violations.map((v) => v.urn)).toEqual(["urn:pulumi:test::shop::acme:shop:Cart$docker:index/container:Container::cart-1"]);
        const nowhere = await verdictsOf(() => new Cart("cart", undefined));
        expect(nowhere.violations.map((v) => v.message).join("\n")).toContain("is delivered to no monitoring endpoint");
    });

    it("cannot register its outputs without attaching its monitoring", async () => {
        const run = await picloud.installMockRuntime({ project: "shop", stack: "test", config: {}, secretKeys: [] });
        class Forgetful extends picloud.MonitoredComponent {
            constructor() {
                super("acme:shop:Forgetful", "f");
                this.registerOutputs({});
            }
        }
        expect(() => new Forgetful()).toThrow(/f: attach its monitoring \(this\.attach\) before registering its outputs/);
        // What the SDK registered before the constructor threw finishes in this run, not the next.
        await run.settle();
    });

    it("refuses a bare container outside any component", async () => {
        const { violations } = await verdictsOf(() => new docker.Container("stray", { image: IMAGE, memory: 64 }));
        expect(violations.map((v) => v.message).join("\n")).toMatch(/docker:index\/container:Container::stray/);
    });

    it("cannot attach an incomplete declaration", async () => {
        await picloud.installMockRuntime({ project: "shop", stack: "test", config: {}, secretKeys: [] });
        const owner = new pulumi.ComponentResource("acme:shop:Thing", "thing");
        const job = { job: "acme-thing", targets: ["h:1"] };
        expect(() =>
            picloud.attachMonitoring(owner, "thing", { component: "acme-thing", scrapeTargets: [job], alertRules: [picloud.targetDownRule(job)], dashboard: { uid: "t", title: "t", panels: [{ title: "p", expr: "up" }] }, logLabels: { a: "b" } }),
        ).toThrow(/no alert of its own beyond target-down/);
    });
});
