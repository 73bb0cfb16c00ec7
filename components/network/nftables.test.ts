/**
 * The rulesets judged by nftables itself: `nft -c` (a dry-run transaction against the kernel)
 * inside a fresh user and network namespace (`unshare -rn`), so the host's own ruleset is never
 * read or touched; and loaded for real into such a namespace beside a stand-in of Docker's tables.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exampleStack } from "../../test/support/exampleStacks";
import { planNetwork } from "../cloud/network";
import type { Flow, NetworkPlan } from "./flows";
import { NFTABLES_FILES } from "../renderers/firewallFiles";
import { renderNftables } from "./nftables";

/** nft from Debian's nftables package; a missing one fails the suite with the fix rather than skipping it. */
const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((f) => {
    try {
        accessSync(f, constants.X_OK);
        return true;
    } catch {
        return false;
    }
});
function nft(): string {
    if (!NFT) throw new Error("nft not found: apt-get install -y nftables");
    return NFT;
}

const work = mkdtempSync(path.join(tmpdir(), "picloud-nft-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let written = 0;
function fileOf(text: string): string {
    const file = path.join(work, `ruleset-${written++}.nft`);
    writeFileSync(file, text);
    return file;
}

/** Runs a shell script in a fresh user + network namespace: nothing it does reaches the host's ruleset. */
function inNamespace(script: string): { status: number | null; out: string } {
    const r = spawnSync("unshare", ["-rn", "sh", "-ec", script], { encoding: "utf8", timeout: 30_000 });
    if (r.error) throw r.error;
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const nftCheck = (text: string) => inNamespace(`${nft()} -c -f ${fileOf(text)}`);

const stacks = ["lab", "dev", "prod"].map((stack) => {
    const { config, plan } = exampleStack(stack);
    return { stack, config, network: planNetwork(config, plan) };
});
const dev = stacks.find((s) => s.stack === "dev")!.network;

/** The lines of one chain, trimmed. */
function chainOf(ruleset: string, chain: "input" | "forward"): string[] {
    const match = new RegExp(`chain ${chain} \\{\\n([\\s\\S]*?)\\n\\t\\}`).exec(ruleset);
    if (!match) throw new Error(`no chain ${chain} in:\n${ruleset}`);
    return match[1].split("\n").map((l) => l.trim());
}

describe.each(stacks)("the $stack stack's rulesets", ({ config, network }) => {
    it.each(config.pis.map((p) => p.name))("%s's passes nft -c", (pi) => {
        const result = nftCheck(renderNftables(pi, network));
        expect(result.out).toBe("");
        expect(result.status).toBe(0);
    });
});

describe("nft -c can fail", () => {
    it("refuses a ruleset with a broken rule, pointing at it", () => {
        const broken = renderNftables("dev-3", dev).replace('tcp dport 22 accept comment "ssh"', 'tcp dport 70000 accept comment "ssh"');
        const result = nftCheck(broken);
        expect(result.status).not.toBe(0);
        expect(result.out).toMatch(/Error: Service out of range\s+.*tcp dport 70000/);
    });

    it("refuses a DNAT match without its protocol: the mistake the forward rules are written to avoid", () => {
        // ct original proto-dst has no type until the transport protocol is known.
        const broken = renderNftables("dev-3", dev).replace("meta l4proto tcp ct original proto-dst 8080", "ct original proto-dst 8080");
        const result = nftCheck(broken);
        expect(result.status).not.toBe(0);
        expect(result.out).toMatch(/Error: .*\s+.*ct original proto-dst 8080/);
    });
});

describe("dev-3's ruleset", () => {
    const ruleset = renderNftables("dev-3", dev);
    const input = chainOf(ruleset, "input");
    const forward = chainOf(ruleset, "forward");

    it("drops by default on input, accepting established traffic, loopback and essential ICMP first", () => {
        expect(input.slice(0, 4)).toEqual(["type filter hook input priority filter; policy drop;", "ct state invalid drop", "ct state established,related accept", 'iif "lo" accept']);
        expect(input).toContain("icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept");
        expect(input.at(-1)).toBe('counter drop comment "not declared"');
    });

    it("accepts host-network ports on input from their declared sources: SSH from mgmt, node_exporter from dev-1 (and dev-3's own Prometheus)", () => {
        expect(input).toContain('ip saddr 192.168.10.0/24 tcp dport 22 accept comment "ssh"');
        expect(input).toContain('ip saddr 192.168.10.11 tcp dport 9100 accept comment "scrape host-dev-3"');
    });

    it("filters Docker-published ports in forward, by their original port, from their declared sources only", () => {
        expect(forward[0]).toBe("type filter hook forward priority filter; policy accept;");
        expect(forward).toContain('ct status dnat ip saddr { 192.168.10.12, 192.168.10.11 } meta l4proto tcp ct original proto-dst 8080 accept comment "load balancer to app-hello"');
        expect(forward).toContain('ct status dnat ip saddr 192.168.10.11 meta l4proto tcp ct original proto-dst 9797 accept comment "scrape apps-hello"');
        expect(forward.at(-1)).toBe('ct state new ct status dnat counter drop comment "not declared"');
        // Published ports are not opened on input to other Pis (its own Prometheus's containers reach them
        // over their bridge there, as on lab), host ports not in forward.
        expect(input.some((l) => /^ip saddr .*dport (8080|9797|9338) /.test(l))).toBe(false);
        expect(forward.some((l) => /proto-dst (22|9100) /.test(l))).toBe(false);
    });

    it("names each group's sources and declaring key in a comment line", () => {
        expect(input).toContain("# scrape host-dev-3: from dev-1, dev-3; declared by picloud:pis[2]");
        expect(ruleset).toMatch(/^# picloud firewall of dev-3 \(192\.168\.10\.13, zone data\)/m);
    });

    it("is the same text every time", () => {
        expect(renderNftables("dev-3", dev)).toBe(ruleset);
    });
});

describe("dev-1's ruleset: the monitoring Pi, a load balancer and an app replica at once", () => {
    const ruleset = renderNftables("dev-1", dev);
    const input = chainOf(ruleset, "input");
    const forward = chainOf(ruleset, "forward");
    const bridges = '{ "docker0", "br-*", "openfaas0" }';

    it("lets its own containers (Prometheus) reach what it scrapes on the Pi, over their bridges", () => {
        expect(input).toContain(`iifname ${bridges} tcp dport 9100 accept comment "scrape host-dev-1"`);
        // cAdvisor is published: from another Docker network it is DNAT'd (forward) ...
        expect(forward).toContain(`ct status dnat iifname ${bridges} meta l4proto tcp ct original proto-dst 9338 accept comment "scrape cadvisor"`);
        // ... and from the same network docker-proxy takes it on the Pi (input).
        expect(input).toContain(`iifname ${bridges} tcp dport 9338 accept comment "scrape cadvisor"`);
    });

    it("accepts VRRP from the other load-balancer Pi only", () => {
        expect(input.filter((l) => l.includes("l4proto 112"))).toEqual(['ip saddr 192.168.10.12 meta l4proto 112 accept comment "vrrp from dev-2"']);
    });
});

describe("renderNftables options and errors", () => {
    it("can leave out logging, and take other container interfaces", () => {
        const text = renderNftables("dev-1", dev, { logDrops: false, containerInterfaces: ["cni0"] });
        expect(text).not.toMatch(/\blog prefix/);
        expect(text).toContain('iifname "cni0" tcp dport 9100 accept');
        expect(nftCheck(text).status).toBe(0);
    });

    it("refuses an unknown Pi and a bad interface name, saying what is expected", () => {
        expect(() => renderNftables("dev-9", dev)).toThrow(/expected one of the stack's Pis \(dev-1, dev-2, dev-3\), got "dev-9"/);
        expect(() => renderNftables("dev-1", dev, { containerInterfaces: ['br"x'] })).toThrow(/renderNftables\(dev-1\): expected an interface name .* got "br"x"/);
    });

    it("refuses a plan with a bad flow, naming it", () => {
        const bad: Flow = { from: "any", to: "dev-1", protocol: "tcp", port: 0, purpose: "broken", declaredBy: "my:key" };
        expect(() => renderNftables("dev-1", { ...dev, flows: [...dev.flows, bad] })).toThrow(/flow "broken" \(declared by my:key\): expected a TCP port/);
    });

    it("renders IPv6 sources, a zone without Pis, and UDP; nft accepts them", () => {
        const flows: Flow[] = [
            { from: { cidr: "2001:db8::/64" }, to: "dev-3", protocol: "udp", port: 5353, purpose: "v6 udp", declaredBy: "t" },
            { from: { cidr: "10.1.0.0/16" }, to: "dev-3", protocol: "udp", port: 5353, purpose: "v6 udp", declaredBy: "t" },
            { from: { zone: "app" }, to: "dev-3", protocol: "tcp", port: 5432, purpose: "app to db", declaredBy: "t" },
        ];
        const network: NetworkPlan = { ...dev, flows };
        const input = chainOf(renderNftables("dev-3", network), "input");
        expect(input).toContain('ip saddr 10.1.0.0/16 udp dport 5353 accept comment "v6 udp"');
        expect(input).toContain('ip6 saddr 2001:db8::/64 udp dport 5353 accept comment "v6 udp"');
        // dev has no Pi in the app zone.
        expect(input).toContain("# (no source: nothing to accept)");
        expect(nftCheck(renderNftables("dev-3", network)).status).toBe(0);
    });
});

describe("loaded for real into a network namespace", () => {
    // A stand-in for what Docker 28 programs through iptables-nft: its own tables, FORWARD dropping by default.
    const dockerTables = [
        "table ip filter {",
        "\tchain FORWARD { type filter hook forward priority filter; policy drop; }",
        "}",
        "table ip nat {",
        "\tchain PREROUTING { type nat hook prerouting priority dstnat; policy accept; }",
        "}",
        "",
    ].join("\n");

    it("loads twice to the same ruleset, replacing only its own table and leaving Docker's alone", () => {
        const ruleset = fileOf(renderNftables("dev-1", dev));
        const docker = fileOf(dockerTables);
        const result = inNamespace(
            [
                `${nft()} -f ${docker}`,
                `${nft()} -f ${ruleset}`,
                `${nft()} list ruleset > ${work}/first`,
                `${nft()} -f ${ruleset}`,
                `${nft()} list ruleset > ${work}/second`,
                `cmp ${work}/first ${work}/second`,
                `${nft()} list tables`,
            ].join("\n"),
        );
        expect(result.status, result.out).toBe(0);
        expect(result.out.trim().split("\n").sort()).toEqual(["table inet picloud", "table ip filter", "table ip nat"]);
    });

    it("survives a stale table of the same name, changed by hand", () => {
        const result = inNamespace(
            [
                `${nft()} -f ${fileOf(renderNftables("dev-2", dev))}`,
                `${nft()} add rule inet picloud input tcp dport 4444 accept`,
                `${nft()} -f ${fileOf(renderNftables("dev-2", dev))}`,
                `${nft()} list table inet picloud`,
            ].join("\n"),
        );
        expect(result.status, result.out).toBe(0);
        expect(result.out).not.toContain("4444");
        expect(result.out).toContain('comment "vrrp from dev-1"');
    });

    it("is meant for the path the bootstrap loads it from", () => {
        expect(NFTABLES_FILES).toEqual({ ruleset: "/etc/nftables.d/picloud.nft", check: "nft -c -f /etc/nftables.d/picloud.nft", load: "nft -f /etc/nftables.d/picloud.nft" });
    });
});
