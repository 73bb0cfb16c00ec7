/**
 * A Pi's firewall as an nftables ruleset, generated from the flows into it. One table of picloud's
 * own, `inet picloud`, beside Docker's: Docker 28 programs iptables-nft, whose rules live in other
 * nftables tables (`ip filter`, `ip nat` …). A packet must be accepted by every base chain on its
 * hook, whatever table it sits in, so this table can only narrow what Docker lets through, never
 * widen it, and replacing it never touches Docker's rules.
 *
 * - `input` (policy drop) guards what listens on the Pi itself: sshd, host-network workloads
 *   (node_exporter, HAProxy), faasd's port proxies, VRRP.
 * - `forward` (policy accept) guards only connections to ports Docker publishes: Docker DNATs them
 *   to a container in PREROUTING, so they never reach `input`. They are recognised by conntrack's
 *   DNAT flag and their original destination port; every other forwarded packet (containers'
 *   egress, replies, traffic between containers) is left to Docker's own rules.
 */
import type { PiConfig } from "../config/schema";
import { NFTABLES_FILES, NFTABLES_TABLE } from "../renderers/firewallFiles";
import { Flow, NetworkPlan, checkNetworkPlan, inboundFlows, resolveSource, sourceLabel, zoneOf } from "./flows";

/**
 * Interfaces a Pi's own containers reach it from: Docker's default bridge and its user-defined
 * networks' bridges (`br-<id>`), plus the bridges tiers declare (`NetworkPlan.containerBridges`,
 * e.g. faasd's CNI bridge). A container's connection to its own Pi keeps the container's address
 * as source, so "from this Pi" means these interfaces.
 */
export const CONTAINER_INTERFACES: readonly string[] = ["docker0", "br-*"];

/** Log prefixes of dropped connections (journalctl -k | grep picloud-drop). */
export const NFTABLES_LOG_PREFIXES = { input: "picloud-drop-input: ", forward: "picloud-drop-forward: " } as const;

/** Options of {@link renderNftables}. */
export interface NftablesOptions {
    /** Interfaces of the Pi's container bridges; `*` at the end matches a prefix; default {@link CONTAINER_INTERFACES} and the plan's `containerBridges`. */
    readonly containerInterfaces?: readonly string[];
    /** Log dropped connections to the kernel log, at most 10 a minute per chain; default true. */
    readonly logDrops?: boolean;
}

/** One accept rule: the flows it stands for share chain, protocol, port and purpose. */
interface RuleGroup {
    readonly chain: "input" | "forward";
    readonly flows: Flow[];
}

const INTERFACE = /^[A-Za-z0-9_.:@-]{1,15}\*?$/;

/** The rule's match on the destination: the port as the Pi sees it (input) or as the client sent it, before DNAT (forward). */
function destinationMatch(flow: Flow, chain: "input" | "forward"): string {
    // By number: the name needs /etc/protocols, which a minimal image may lack.
    if (flow.protocol === "vrrp") return "meta l4proto 112";
    return chain === "input" ? `${flow.protocol} dport ${flow.port}` : `meta l4proto ${flow.protocol} ct original proto-dst ${flow.port}`;
}

const set = (items: readonly string[], quote = false): string => {
    const shown = items.map((i) => (quote ? `"${i}"` : i));
    return shown.length === 1 ? shown[0] : `{ ${shown.join(", ")} }`;
};

/** The accept rules of one group: one per kind of source (anyone; IPv4 sources; IPv6 sources; the Pi's own containers). */
function acceptRules(group: RuleGroup, network: NetworkPlan, containerInterfaces: readonly string[]): string[] {
    const [first] = group.flows;
    const resolved = group.flows.map((f) => resolveSource(f, network));
    const prefix = group.chain === "forward" ? "ct status dnat " : "";
    const tail = `${destinationMatch(first, group.chain)} accept comment "${first.purpose}"`;
    if (resolved.some((r) => r.any)) return [`${prefix}${tail}`];
    const addresses = [...new Set(resolved.flatMap((r) => r.addresses))];
    const v4 = addresses.filter((a) => !a.includes(":"));
    const v6 = addresses.filter((a) => a.includes(":"));
    const rules: string[] = [];
    if (v4.length) rules.push(`${prefix}ip saddr ${set(v4)} ${tail}`);
    // VRRP here is IPv4 (keepalived's unicast peers are the Pis' IPv4 addresses).
    if (v6.length && first.protocol !== "vrrp") rules.push(`${prefix}ip6 saddr ${set(v6)} ${tail}`);
    if (resolved.some((r) => r.self)) rules.push(`${prefix}iifname ${set(containerInterfaces, true)} ${tail}`);
    return rules;
}

/** Groups a Pi's inbound flows into rules for `input` or `forward`, in a stable order: by protocol, port, purpose. */
function ruleGroups(pi: string, network: NetworkPlan): RuleGroup[] {
    const published = network.publishedPorts.get(pi) ?? [];
    const isPublished = (f: Flow) => f.protocol !== "vrrp" && published.some((p) => p.protocol === f.protocol && p.port === f.port);
    const groups = new Map<string, RuleGroup>();
    const add = (chain: RuleGroup["chain"], flow: Flow) => {
        const key = JSON.stringify([chain, flow.protocol, flow.port, flow.purpose]);
        const group = groups.get(key) ?? { chain, flows: [] };
        group.flows.push(flow);
        groups.set(key, group);
    };
    for (const flow of inboundFlows(pi, network)) {
        if (!isPublished(flow)) {
            add("input", flow);
            continue;
        }
        add("forward", flow);
        // A container reaching a published port of its own Pi on the same Docker network is not
        // DNAT'd: docker-proxy, listening on the Pi, takes the connection through `input`.
        const source = resolveSource(flow, network);
        if (source.self || source.any) add("input", { ...flow, from: { pi } });
    }
    const protocolOrder = { tcp: 0, udp: 1, vrrp: 2 };
    return [...groups.values()].sort((a, b) => {
        const [x, y] = [a.flows[0], b.flows[0]];
        return protocolOrder[x.protocol] - protocolOrder[y.protocol] || (x.port ?? 0) - (y.port ?? 0) || x.purpose.localeCompare(y.purpose);
    });
}

/** The `#` line above a group: what it is for, from whom, and who declared it. */
function groupComment(group: RuleGroup, network: NetworkPlan): string {
    const from = [...new Set(group.flows.map((f) => sourceLabel(f.from, network)))].join(", ");
    const by = [...new Set(group.flows.map((f) => f.declaredBy))].join(", ");
    return `# ${group.flows[0].purpose}: from ${from}; declared by ${by}`;
}

/**
 * The nftables ruleset for one Pi: `table inet picloud` with an `input` chain that accepts only
 * declared flows (plus established traffic, loopback and the ICMP/ICMPv6 a network needs) and a
 * `forward` chain that lets DNAT'd connections to Docker-published ports through only from their
 * declared sources. Loading it (`nft -f`) replaces the table whole in one transaction, as often
 * as it is loaded, and leaves every other table alone. Throws, naming the flow or Pi, on a plan
 * {@link checkNetworkPlan} refuses or an unknown Pi.
 */
export function renderNftables(piName: string, network: NetworkPlan, options: NftablesOptions = {}): string {
    checkNetworkPlan(network);
    const pi: PiConfig | undefined = network.pis.find((p) => p.name === piName);
    if (!pi) throw new Error(`renderNftables: expected one of the stack's Pis (${network.pis.map((p) => p.name).join(", ")}), got "${piName}"`);
    const containerInterfaces = options.containerInterfaces ?? [...CONTAINER_INTERFACES, ...(network.containerBridges ?? [])];
    if (containerInterfaces.length === 0) throw new Error(`renderNftables(${piName}): expected at least one container interface, got none`);
    for (const name of containerInterfaces) {
        if (!INTERFACE.test(name)) throw new Error(`renderNftables(${piName}): expected an interface name (at most 15 of A-Z a-z 0-9 _ . : @ -, optionally ending in *), got "${name}"`);
    }
    const logDrops = options.logDrops ?? true;
    const groups = ruleGroups(piName, network);

    const section = (chain: RuleGroup["chain"]) =>
        groups
            .filter((g) => g.chain === chain)
            .flatMap((g) => {
                const rules = acceptRules(g, network, containerInterfaces);
                // A flow from a zone no Pi is in accepts nobody; say so rather than leave it out unseen.
                return [groupComment(g, network), ...(rules.length ? rules : ["# (no source: nothing to accept)"])];
            });
    const dropLog = (chain: keyof typeof NFTABLES_LOG_PREFIXES, match: string) =>
        logDrops ? [`${match}limit rate 10/minute burst 20 packets log prefix "${NFTABLES_LOG_PREFIXES[chain]}" level info`] : [];

    const input = [
        "type filter hook input priority filter; policy drop;",
        "ct state invalid drop",
        "ct state established,related accept",
        'iif "lo" accept',
        "# ICMP a network needs: errors (path MTU discovery among them), ping, and IPv6 neighbour discovery.",
        "icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
        "icmp type echo-request limit rate 10/second burst 20 packets accept",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } accept",
        "icmpv6 type echo-request limit rate 10/second burst 20 packets accept",
        "# DHCPv6 answers a multicast solicit from a link-local address: conntrack cannot match it to the request.",
        'ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment "dhcpv6 replies"',
        ...section("input"),
        ...dropLog("input", ""),
        'counter drop comment "not declared"',
    ];
    const forward = [
        "type filter hook forward priority filter; policy accept;",
        "# Only new connections DNAT'd to a Docker-published port are judged here; the rest is Docker's business.",
        ...section("forward"),
        ...dropLog("forward", "ct state new ct status dnat "),
        'ct state new ct status dnat counter drop comment "not declared"',
    ];
    const chain = (name: string, lines: readonly string[]) => [`\tchain ${name} {`, ...lines.map((l) => `\t\t${l}`), "\t}"];
    const table = `${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name}`;
    return [
        "#!/usr/sbin/nft -f",
        `# picloud firewall of ${piName} (${pi.address}, zone ${zoneOf(pi)}), generated from the flows the stack declares; do not edit.`,
        `# Load with: ${NFTABLES_FILES.load}`,
        "",
        "# Declaring the table first makes deleting it safe on the first load too: every load replaces",
        "# the whole table in one transaction, and no other table (Docker's among them) is touched.",
        `table ${table} {}`,
        `delete table ${table}`,
        "",
        `table ${table} {`,
        ...chain("input", input),
        "",
        ...chain("forward", forward),
        "}",
        "",
    ].join("\n");
}
