import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../../plan/mockRuntime";
import { PlanResult, runPlan } from "../../plan/plan";
import { renderRunScriptCommand, renderShipCommand, scriptPath, withRerunKey } from "../../renderers/remoteCommands";
import { KEEPALIVED_SCRIPT_NAME } from "./keepalived";

const root = path.resolve(__dirname, "..", "..", "..");
type Planned = Extract<PlanResult, { ok: true }>;
const plans: Record<string, Planned> = {};

// The mock runtime is global to the process: plan the stacks one after the other.
beforeAll(async () => {
    for (const stack of ["lab", "dev", "prod"]) {
        const plan = await runPlan({ stack, source: { file: path.join(root, "stacks", `Pulumi.${stack}.yaml`) } });
        if (!plan.ok) throw new Error(plan.error);
        plans[stack] = plan;
    }
});

const LB = "picloud:loadbalancer:LoadBalancer";
const byUrn = (plan: Planned) => new Map(plan.resources.map((r) => [r.urn, r]));
const childrenOf = (plan: Planned, type: string) => {
    const owner = plan.resources.find((r) => r.type === type)!;
    return plan.resources.filter((r) => r.parent === owner.urn);
};
const named = (plan: Planned, name: string) => {
    const r = plan.resources.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name}; have ${plan.resources.map((x) => x.name).join(", ")}`);
    return r;
};
const containers = (plan: Planned, prefix: string) =>
    plan.resources.filter((r) => r.type === "docker:index/container:Container" && String(r.inputs.name).startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name));
const dependsOn = (r: RecordedResource, on: RecordedResource) => r.dependencies.includes(on.urn);
const hostOfProvider = (plan: Planned, r: RecordedResource) => {
    const urns = byUrn(plan);
    const provider = urns.get(r.provider.split("::").slice(0, -1).join("::"))!;
    // The PiHost is named after the cloud: picloud-<pi>.
    return urns.get(provider.parent)!.name.replace(/^picloud-/, "");
};

describe("LoadBalancer on the dev stack (two edge Pis, a virtual IP)", () => {
    it("runs HAProxy on the two Pis labelled role=edge, with host networking, as root dropping to uid 99", () => {
        const plan = plans.dev;
        const haproxy = containers(plan, "haproxy-");
        expect(haproxy.map((c) => hostOfProvider(plan, c)).sort()).toEqual(["dev-1", "dev-2"]);
        for (const c of haproxy) {
            expect(c.inputs).toMatchObject({ networkMode: "host", user: "root", memory: 128, mustRun: true, wait: true });
            expect(byUrn(plan).get(c.parent)?.type).toBe(LB);
        }
        const cfg = plan.files.find((f) => f.path === "dev-1/srv/picloud/loadbalancer/haproxy/haproxy.cfg")!.text;
        expect(cfg).toMatch(/^\s+uid 99\n\s+gid 99$/m);
        expect(plan.files.find((f) => f.path === "dev-2/srv/picloud/loadbalancer/haproxy/haproxy.cfg")!.text).toBe(cfg);
    });

    it("registers every replica of the app as a server at its Pi's address and host port", () => {
        const plan = plans.dev;
        const cfg = plan.files.find((f) => f.path === "dev-1/srv/picloud/loadbalancer/haproxy/haproxy.cfg")!.text;
        const pis = plan.outputs.pis;
        const servers = [...cfg.matchAll(/^\s+server (app-hello-\d) (\S+) check/gm)].map((m) => [m[1], m[2]]);
        const expected = containers(plan, "app-hello-").map((c) => [c.inputs.name, `${pis[hostOfProvider(plan, c)]}:8080`]);
        expect(servers).toEqual(expected);
        expect(cfg).toContain("option httpchk GET /healthz");
        expect(cfg).toContain("default_backend app-hello");
    });

    it("sets up keepalived on each load-balancer Pi after its HAProxy, the first Pi preferred", () => {
        const plan = plans.dev;
        const [first, second] = containers(plan, "haproxy-").map((c) => hostOfProvider(plan, c));
        const address = (pi: string) => plan.outputs.pis[pi];
        expect([first, second].sort()).toEqual(["dev-1", "dev-2"]);
        for (const [pi, priority, peer] of [[first, 150, address(second)], [second, 100, address(first)]] as const) {
            const script = plan.files.find((f) => f.path === `${pi}${scriptPath(KEEPALIVED_SCRIPT_NAME)}`)!.text;
            expect(script).toContain(`    priority ${priority}`);
            expect(script).toMatch(new RegExp(`unicast_peer \\{\\n\\s+${peer.replace(/\./g, "\\.")}\\n`));
            expect(script).toContain("192.168.10.10/24 dev eth0");
            const run = named(plan, `picloud-loadbalancer-${pi}-keepalived`);
            expect(run.inputs.create).toMatch(new RegExp(`\\n${renderRunScriptCommand(scriptPath(KEEPALIVED_SCRIPT_NAME))}$`));
            expect(String(run.inputs.delete)).toContain("systemctl disable --now keepalived");
            const haproxy = containers(plan, "haproxy-").find((c) => hostOfProvider(plan, c) === pi)!;
            expect(dependsOn(run, haproxy)).toBe(true);
            expect(dependsOn(run, named(plan, `picloud-loadbalancer-${pi}-keepalived-script`))).toBe(true);
        }
    });

    it("reloads HAProxy in place after checking the new file, whenever haproxy.cfg changes", () => {
        const plan = plans.dev;
        for (const c of containers(plan, "haproxy-")) {
            const pi = hostOfProvider(plan, c);
            const reload = named(plan, `picloud-loadbalancer-${pi}-reload`);
            const copy = named(plan, `picloud-loadbalancer-${pi}-haproxy-config`);
            // Run again, as an Update, with every change of the file it reloads.
            expect(reload.inputs.create).toBe(
                withRerunKey(`docker exec ${c.inputs.name} haproxy -c -q -f /usr/local/etc/haproxy/haproxy.cfg && docker kill --signal USR2 ${c.inputs.name} >/dev/null`, [
                    copy.inputs.stdin as string,
                ]),
            );
            expect(dependsOn(reload, c) && dependsOn(reload, copy)).toBe(true);
            // The container starts only once its config is there.
            expect(dependsOn(c, copy)).toBe(true);
        }
    });

    it("scrapes HAProxy on both Pis and alerts on the virtual IP's holder", () => {
        const plan = plans.dev;
        const monitoring = childrenOf(plan, LB).find((r) => r.type === "picloud:monitoring:Attachment")!;
        const coverage = monitoring.outputs?.coverage as { jobs: string[]; targets: number; alerts: string[] };
        expect(coverage.jobs).toEqual(["loadbalancer"]);
        expect(coverage.targets).toBe(2);
        expect(coverage.alerts).toEqual(
            expect.arrayContaining(["LoadbalancerTargetDown", "LoadBalancerVirtualIpUnheld", "LoadBalancerVirtualIpHeldTwice", "LoadBalancerVirtualIpMoved"]),
        );
        const app = plan.resources.find((r) => r.type === "picloud:monitoring:Attachment" && r.name === "picloud-hello-monitoring")!;
        expect((app.outputs?.coverage as { alerts: string[] }).alerts).toEqual(
            expect.arrayContaining(["AppsHelloNoHealthyServer", "AppsHelloErrorRateHigh", "AppsHelloLatencyHigh", "AppsHelloSaturated"]),
        );
    });
});

describe("rolling updates", () => {
    it("replaces replicas one at a time: each waits for the one before, deleted before it is recreated", () => {
        const plan = plans.dev;
        for (const prefix of ["app-hello-", "haproxy-"]) {
            const replicas = containers(plan, prefix);
            expect(replicas.length).toBeGreaterThan(1);
            replicas.forEach((c, i) => {
                expect(c.deleteBeforeReplace).toBe(true);
                if (i > 0) expect(dependsOn(c, replicas[i - 1]), `${c.name} waits for ${replicas[i - 1].name}`).toBe(true);
                // Gated on health: the step only ends once Docker reports the replica healthy.
                expect(c.inputs).toMatchObject({ wait: true });
                expect(Number(c.inputs.waitTimeout)).toBeGreaterThan(0);
            });
            expect(dependsOn(replicas[0], replicas[replicas.length - 1])).toBe(false);
        }
    });

    it("updates per-Pi agents everywhere at once", () => {
        const agents = containers(plans.dev, "node-exporter-");
        expect(agents).toHaveLength(3);
        for (const a of agents) for (const b of agents) expect(dependsOn(a, b)).toBe(false);
    });
});

describe("LoadBalancer on lab (one Pi) and prod (TLS)", () => {
    it("lab: one HAProxy, no keepalived and no virtual IP alerts", () => {
        const plan = plans.lab;
        expect(containers(plan, "haproxy-")).toHaveLength(1);
        expect(plan.resources.filter((r) => r.name.includes("keepalived"))).toEqual([]);
        const monitoring = childrenOf(plan, LB).find((r) => r.type === "picloud:monitoring:Attachment")!;
        expect((monitoring.outputs?.coverage as { alerts: string[] }).alerts.filter((a) => a.includes("VirtualIp"))).toEqual([]);
        expect(plan.files.find((f) => f.path.endsWith("haproxy.cfg"))!.text).not.toContain(":443");
    });

    it("prod: HTTPS with the bundle delivered on stdin as a secret, never as a file picloud renders", () => {
        const plan = plans.prod;
        const cfg = plan.files.find((f) => f.path === "edge-1/srv/picloud/loadbalancer/haproxy/haproxy.cfg")!.text;
        expect(cfg).toContain("bind :443 ssl crt /usr/local/etc/haproxy/certs/edge.pem alpn h2,http/1.1");
        expect(cfg).toContain("http-request redirect scheme https code 301 unless { ssl_fc }");
        for (const pi of ["edge-1", "edge-2"]) {
            const cert = named(plan, `picloud-loadbalancer-${pi}-certificate`);
            expect(cert.inputs.create).toBe(renderShipCommand({ path: "/srv/picloud/loadbalancer/haproxy/certs/edge.pem", mode: "0600", owner: "root" }));
            expect(cert.inputs.update).toBe(cert.inputs.create);
            expect(cert.inputs.triggers).toBeUndefined();
            expect(cert.inputs.logging).toBe("none");
            expect(cert.secretInputs).toContain("stdin");
            expect(dependsOn(named(plan, `picloud-loadbalancer-${pi}-reload`), cert)).toBe(true);
        }
        expect(plan.files.map((f) => f.path)).not.toContain("edge-1/srv/picloud/loadbalancer/haproxy/certs/edge.pem");
        const haproxy = containers(plan, "haproxy-");
        expect(haproxy.every((c) => (c.inputs.ports as unknown[]).length === 0)).toBe(true);
    });
});
