/**
 * The flows against what the program really configures: the offline plan runs each example stack
 * under the mock runtime and renders every file it would put on the Pis. Whatever Prometheus is
 * told to scrape (file_sd), HAProxy to balance over (haproxy.cfg) and keepalived to talk to
 * (unicast peers) must be a declared flow, so a tier whose traffic the firewall would drop fails
 * here, not on a Pi.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { exampleStack } from "../../test/support/exampleStacks";
import { runPlan } from "../plan/plan";
import { planNetwork } from "./network";
import { NetworkPlan, inboundFlows, resolveSource } from "../network/flows";

type Planned = Extract<Awaited<ReturnType<typeof runPlan>>, { ok: true }>;

/** True when the network lets `from` (a Pi's address) open `protocol` to `port` on the Pi at `to`. */
function allows(network: NetworkPlan, fromAddress: string, toAddress: string, protocol: "tcp" | "vrrp", port?: number): boolean {
    const to = network.pis.find((p) => p.address === toAddress)!;
    const from = network.pis.find((p) => p.address === fromAddress)!;
    return inboundFlows(to.name, network).some((f) => {
        if (f.protocol !== protocol || f.port !== port) return false;
        const source = resolveSource(f, network);
        return source.any || (from === to ? source.self : source.addresses.includes(fromAddress));
    });
}

describe.each(["lab", "dev", "prod"])("the %s stack's flows cover what its components configure", (stack) => {
    const { config, plan } = exampleStack(stack);
    const network = planNetwork(config, plan);
    const addressOf = (pi: string) => config.pis.find((p) => p.name === pi)!.address;
    // The SDK's runtime is global: plans run one after another, each in its describe's beforeAll.
    let planned: Planned;
    beforeAll(async () => {
        const result = await runPlan({ stack, source: { file: path.resolve(__dirname, "../../stacks", `Pulumi.${stack}.yaml`) } });
        if (!result.ok) throw new Error(result.error);
        planned = result;
    });
    const filesMatching = (pattern: RegExp) => planned.files.filter((f) => pattern.test(f.path)).map((f) => ({ pi: f.path.split("/")[0], text: f.text }));

    it("every target Prometheus scrapes (file_sd on the monitoring Pi) has a flow from that Pi", () => {
        const files = filesMatching(/^[^/]+\/srv\/picloud\/monitoring\/prometheus\/file_sd\/.+\.json$/);
        expect(files.length).toBeGreaterThan(config.pis.length);
        const unreachable = files.flatMap(({ pi, text }) =>
            (JSON.parse(text) as { targets: string[] }[]).flatMap((group) => group.targets).filter((target) => {
                const [host, port] = target.split(":");
                return !allows(network, addressOf(pi), host, "tcp", Number(port));
            }),
        );
        expect(unreachable).toEqual([]);
    });

    it("every server in haproxy.cfg has a flow from the load-balancer Pi that holds the file", () => {
        const files = filesMatching(/^[^/]+\/srv\/picloud\/loadbalancer\/haproxy\/haproxy\.cfg$/);
        expect(files.length).toBe(config.tiers.loadBalancer ? Math.min(2, config.pis.length) : 0);
        const unreachable = files.flatMap(({ pi, text }) =>
            [...text.matchAll(/^\s*server \S+ (\S+):(\d+) /gm)].filter(([, host, port]) => !allows(network, addressOf(pi), host, "tcp", Number(port))).map(([line]) => `${pi}: ${line.trim()}`),
        );
        expect(unreachable).toEqual([]);
    });

    it("every keepalived unicast peer may send the Pi VRRP, and no one else may", () => {
        const files = filesMatching(/^[^/]+\/var\/lib\/picloud\/scripts\/keepalived\.sh$/);
        expect(files.length).toBe(config.tiers.loadBalancer?.virtualIp ? 2 : 0);
        for (const { pi, text } of files) {
            const peers = /unicast_peer \{([^}]*)\}/.exec(text)![1].trim().split(/\s+/);
            for (const peer of peers) expect(allows(network, peer, addressOf(pi), "vrrp"), `${peer} -> ${pi}`).toBe(true);
            for (const other of config.pis.filter((p) => p.name !== pi && !peers.includes(p.address))) expect(allows(network, other.address, addressOf(pi), "vrrp")).toBe(false);
        }
    });
});
