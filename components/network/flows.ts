/**
 * Network separation, the pure part: who may open a connection to which port of which Pi, as a
 * list of flows that components declare. Everything not declared is refused by the firewall
 * `renderNftables` writes for each Pi. Flows are Pi-grained: a Pi's containers reach other
 * Pis from the Pi's own address (Docker masquerades their egress), so "from dev-1" means "from
 * anything running on dev-1".
 */
import { isIPv4, isIPv6 } from "node:net";
import type { PiConfig } from "../config/schema";

/**
 * The zones of the cloud. `edge` takes client traffic (load balancers); `app` runs compute (apps,
 * functions, anything without a role); `data` holds state (databases, and the metrics database:
 * the monitoring Pi); `mgmt` is the operator's side, the network SSH and the admin UIs are reached
 * from: not a Pi, a source.
 */
export type Zone = "edge" | "app" | "data" | "mgmt";

/** Every zone. */
export const ZONES: readonly Zone[] = ["edge", "app", "data", "mgmt"];

/** The zone of each `labels.role` picloud knows; any other role, or none, is `app`. */
const ZONE_OF_ROLE: ReadonlyMap<string, Zone> = new Map([
    ["edge", "edge"],
    ["app", "app"],
    ["functions", "app"],
    ["data", "data"],
    ["monitoring", "data"],
]);

/**
 * The zone a Pi belongs to, from its `role` label: edge → edge; app and functions → app; data and
 * monitoring → data (Prometheus is the cloud's real-time metrics database, the Pi that keeps the
 * longest-lived state on SSD; its reaching out to scrape every Pi is a declared flow like any
 * other, not a reason to trust it further). No Pi is in `mgmt`: that zone is the operator's
 * network, so a compromised Pi gains no SSH or admin-UI reach from its zone.
 */
export function zoneOf(pi: Pick<PiConfig, "labels">): Zone {
    return ZONE_OF_ROLE.get(pi.labels.role ?? "") ?? "app";
}

/**
 * Who opens the connection: one Pi (by name), every Pi of a zone (`{ zone: "mgmt" }` is the
 * operator's network), an IPv4/IPv6 address or CIDR, or anyone.
 */
export type FlowSource = "any" | { readonly pi: string } | { readonly zone: Zone } | { readonly cidr: string };

/** Transport of a flow: TCP or UDP to a port, or VRRP (IP protocol 112, no port). */
export type FlowProtocol = "tcp" | "udp" | "vrrp";

/** One kind of connection a component needs: from a source to a port on one Pi. */
export interface Flow {
    /** Who opens the connection. */
    readonly from: FlowSource;
    /** The Pi that accepts the connection. */
    readonly to: string;
    readonly protocol: FlowProtocol;
    /** Destination port; absent for VRRP. For a port Docker publishes, the Pi's (host) port. */
    readonly port?: number;
    /** Why the flow exists, shown as the rule's comment, e.g. "scrape apps-hello". */
    readonly purpose: string;
    /** The config key that asks for it, e.g. `picloud:tiers.apps.hello.hostPort`. */
    readonly declaredBy: string;
}

/** A port Docker publishes on a Pi: connections to it are DNAT'd to a container, so they cross `forward`, not `input`. */
export interface PublishedPort {
    readonly protocol: "tcp" | "udp";
    readonly port: number;
}

/** Everything a Pi's firewall is generated from. */
export interface NetworkPlan {
    /** The stack's Pis: addresses and zones of flow sources and destinations. */
    readonly pis: readonly PiConfig[];
    /** What `{ zone: "mgmt" }` stands for: the operator's network as a CIDR, or "any". */
    readonly mgmtNetwork: string;
    readonly flows: readonly Flow[];
    /** Ports Docker publishes, by Pi name. */
    readonly publishedPorts: ReadonlyMap<string, readonly PublishedPort[]>;
    /** Container bridges tiers add to Docker's (faasd's CNI bridge): traffic from them is the Pi's own containers'. */
    readonly containerBridges?: readonly string[];
}

/** What the firewall reads of a component's monitoring (a `MonitoringSpec` is one): the endpoints Prometheus scrapes. */
export interface ScrapeDeclaration {
    readonly component: string;
    readonly scrapeTargets: readonly { readonly job: string; readonly targets: readonly string[] }[];
}

/** A component's monitoring and the config key that turns it on. */
export interface DeclaredSpec {
    readonly spec: ScrapeDeclaration;
    readonly declaredBy: string;
}

/** What the firewall reads of a load-balancer backend (an `EdgeBackend` is one): the servers it sends to. */
export interface BackendDeclaration {
    readonly backend: { readonly name: string; readonly servers: readonly { readonly name: string; readonly address: string }[]; readonly checkPort?: number };
}

/** A load-balancer backend and the config key that puts it there. */
export interface DeclaredBackend {
    readonly backend: BackendDeclaration;
    readonly declaredBy: string;
}

/** The flow as errors name it. */
export function describeFlow(flow: Pick<Flow, "purpose" | "declaredBy">): string {
    return `flow "${flow.purpose}" (declared by ${flow.declaredBy})`;
}

/** The Pi (by address) behind a `host:port` endpoint; throws, naming who declared it, when it is no Pi of the stack. */
function endpointPi(endpoint: string, pis: readonly PiConfig[], where: string): { pi: PiConfig; port: number } {
    const match = /^(.+):(\d{1,5})$/.exec(endpoint);
    const pi = match ? pis.find((p) => p.address === match[1]) : undefined;
    if (!match || !pi) {
        throw new Error(`${where}: expected a "<Pi address>:<port>" endpoint on one of the stack's Pis (${pis.map((p) => `${p.name} ${p.address}`).join(", ")}), got "${endpoint}"`);
    }
    return { pi, port: Number(match[2]) };
}

/**
 * Prometheus's flows, read off the monitoring specs: from the Pi running Prometheus to every
 * scrape target's port. A component's scrape targets are thus opened exactly as far as its
 * monitoring says, and a new tier's scrape flows come with its spec.
 */
export function scrapeFlows(specs: readonly DeclaredSpec[], prometheusPi: string, pis: readonly PiConfig[]): Flow[] {
    return specs.flatMap(({ spec, declaredBy }) =>
        spec.scrapeTargets.flatMap((target) =>
            target.targets.map((endpoint) => {
                const { pi, port } = endpointPi(endpoint, pis, `${declaredBy}: scrape job "${target.job}" of component "${spec.component}"`);
                return { from: { pi: prometheusPi }, to: pi.name, protocol: "tcp" as const, port, purpose: `scrape ${target.job}`, declaredBy };
            }),
        ),
    );
}

/**
 * The load balancer's flows to its backends, read off the backends' servers: from every
 * load-balancer Pi to each server's port (requests and health checks alike).
 */
/** A service port on Pi `to` that every other Pi (its clients, peers and exporters) and the operator reach. */
export function clientFlows(to: string, port: number, what: string, declaredBy: string, pis: readonly Pick<PiConfig, "name">[]): Flow[] {
    return [
        ...pis.filter((p) => p.name !== to).map((p): Flow => ({ from: { pi: p.name }, to, protocol: "tcp", port, purpose: `${what} from ${p.name}`, declaredBy })),
        { from: { zone: "mgmt" }, to, protocol: "tcp", port, purpose: `operator to ${what}`, declaredBy },
    ];
}

export function backendFlows(backends: readonly DeclaredBackend[], lbPis: readonly string[], pis: readonly PiConfig[]): Flow[] {
    const flows = backends.flatMap(({ backend, declaredBy }) =>
        backend.backend.servers.flatMap((server) => {
            const { pi, port } = endpointPi(server.address, pis, `${declaredBy}: server "${server.name}" of backend "${backend.backend.name}"`);
            const ports = backend.backend.checkPort === undefined ? [port] : [port, backend.backend.checkPort];
            return lbPis.flatMap((lb) => ports.map((p) => ({ from: { pi: lb }, to: pi.name, protocol: "tcp" as const, port: p, purpose: `load balancer to ${backend.backend.name}`, declaredBy })));
        }),
    );
    // Two backends on the same servers (the database's primary and standbys) need one rule each way, not two.
    const seen = new Set<string>();
    return flows.filter((f) => {
        const key = `${f.from.pi}>${f.to}:${f.port}`;
        return !seen.has(key) && (seen.add(key), true);
    });
}

const PURPOSE = /^[A-Za-z0-9][A-Za-z0-9 ._:/()+,=-]*$/;
/** nftables keeps at most 128 bytes of a rule comment; leave room. */
const MAX_PURPOSE = 100;

/** Is `text` an IPv4/IPv6 address or CIDR? */
export function isAddressOrCidr(text: string): boolean {
    const [address, bits, extra] = text.split("/");
    if (extra !== undefined) return false;
    const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : undefined;
    if (max === undefined) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
}

/**
 * Checks a network plan: every flow names a Pi of the stack as destination and as Pi source, a
 * known zone, a valid CIDR, a port exactly when TCP/UDP, a purpose fit for a rule comment. Throws
 * one error listing every problem, each naming its flow.
 */
export function checkNetworkPlan(network: NetworkPlan): void {
    const names = new Set(network.pis.map((p) => p.name));
    const known = [...names].join(", ");
    const problems: string[] = [];
    if (network.mgmtNetwork !== "any" && !isAddressOrCidr(network.mgmtNetwork)) {
        problems.push(`mgmtNetwork: expected the operator's network as an IPv4/IPv6 CIDR such as 192.168.1.0/24, or "any", got "${network.mgmtNetwork}"`);
    }
    for (const flow of network.flows) {
        const where = describeFlow(flow);
        if (!flow.declaredBy) problems.push(`${where}: expected the config key that declares it, got nothing`);
        if (!PURPOSE.test(flow.purpose) || flow.purpose.length > MAX_PURPOSE) {
            problems.push(`${where}: expected a purpose of at most ${MAX_PURPOSE} letters, digits, spaces and ._:/()+,=- (it becomes an nftables comment)`);
        }
        if (!names.has(flow.to)) problems.push(`${where}: expected "to" to be one of the stack's Pis (${known}), got "${flow.to}"`);
        const from = flow.from;
        if (from !== "any") {
            if ("pi" in from && !names.has(from.pi)) problems.push(`${where}: expected "from.pi" to be one of the stack's Pis (${known}), got "${from.pi}"`);
            if ("zone" in from && !ZONES.includes(from.zone)) problems.push(`${where}: expected "from.zone" to be one of ${ZONES.join(", ")}, got "${from.zone}"`);
            if ("cidr" in from && !isAddressOrCidr(from.cidr)) problems.push(`${where}: expected "from.cidr" to be an IPv4/IPv6 address or CIDR such as 192.168.1.0/24, got "${from.cidr}"`);
        }
        if (flow.protocol === "vrrp") {
            if (flow.port !== undefined) problems.push(`${where}: VRRP has no ports, got port ${flow.port}`);
        } else if (flow.protocol !== "tcp" && flow.protocol !== "udp") {
            problems.push(`${where}: expected protocol "tcp", "udp" or "vrrp", got "${String(flow.protocol)}"`);
        } else if (flow.port === undefined || !Number.isInteger(flow.port) || flow.port < 1 || flow.port > 65535) {
            problems.push(`${where}: expected a ${flow.protocol.toUpperCase()} port from 1 to 65535, got ${flow.port ?? "nothing"}`);
        }
    }
    for (const [pi, ports] of network.publishedPorts) {
        if (!names.has(pi)) problems.push(`published ports: expected one of the stack's Pis (${known}), got "${pi}"`);
        for (const p of ports) {
            if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) problems.push(`published ports of ${pi}: expected ports from 1 to 65535, got ${p.port}`);
        }
    }
    if (problems.length === 1) throw new Error(`invalid network plan: ${problems[0]}`);
    if (problems.length > 1) throw new Error(`invalid network plan (${problems.length} problems):\n  - ${problems.join("\n  - ")}`);
}

/** Where a flow comes from, resolved for one destination Pi. */
export interface ResolvedSources {
    /** Anyone at all may connect. */
    readonly any: boolean;
    /** Addresses and CIDRs, IPv4 and IPv6 mixed. */
    readonly addresses: readonly string[];
    /** The destination Pi itself: its own containers, which reach it over their bridges rather than from its address. */
    readonly self: boolean;
}

/**
 * Resolves a flow's source for its destination Pi: a Pi to its address (or to `self` when it is
 * the destination), a zone to its Pis (mgmt to the operator's network), a CIDR to itself.
 */
export function resolveSource(flow: Flow, network: NetworkPlan): ResolvedSources {
    const from = flow.from;
    const none = { any: false, addresses: [], self: false };
    if (from === "any") return { ...none, any: true };
    if ("cidr" in from) return { ...none, addresses: [from.cidr] };
    if ("zone" in from && from.zone === "mgmt") return network.mgmtNetwork === "any" ? { ...none, any: true } : { ...none, addresses: [network.mgmtNetwork] };
    const sources = "pi" in from ? network.pis.filter((p) => p.name === from.pi) : network.pis.filter((p) => zoneOf(p) === from.zone);
    return {
        any: false,
        addresses: sources.filter((p) => p.name !== flow.to).map((p) => p.address),
        self: sources.some((p) => p.name === flow.to),
    };
}

/** Flows into one Pi, each once (a flow derived twice, e.g. by two specs, counts once). */
export function inboundFlows(pi: string, network: NetworkPlan): Flow[] {
    const seen = new Set<string>();
    return network.flows.filter((f) => {
        if (f.to !== pi) return false;
        const key = JSON.stringify([f.from, f.protocol, f.port, f.purpose]);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
    });
}

/** A flow's source for people: "any", "dev-1" (a Pi), "zone app", "mgmt (192.168.10.0/24)", "10.0.0.0/8". */
export function sourceLabel(from: FlowSource, network: Pick<NetworkPlan, "mgmtNetwork">): string {
    if (from === "any") return "any";
    if ("pi" in from) return from.pi;
    if ("cidr" in from) return from.cidr;
    return from.zone === "mgmt" ? `mgmt (${network.mgmtNetwork})` : `zone ${from.zone}`;
}

/** The flows as a fixed-width table (to, port, from, purpose, declared by), sorted by Pi and port: for the offline plan and reviews. */
export function formatFlows(network: NetworkPlan): string {
    const rows = network.pis.flatMap((pi) =>
        inboundFlows(pi.name, network)
            .sort((a, b) => (a.port ?? 0) - (b.port ?? 0) || a.purpose.localeCompare(b.purpose))
            .map((f) => [`${f.to} (${zoneOf(pi)})`, f.protocol === "vrrp" ? "vrrp" : `${f.protocol}/${f.port}`, sourceLabel(f.from, network), f.purpose, f.declaredBy]),
    );
    const table = [["to", "port", "from", "purpose", "declared by"], ...rows];
    const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
    return table.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ")).join("\n");
}

/** What {@link publishedPorts} reads of a workload (a runtime `Workload` is one). */
export interface PublishingWorkload {
    readonly name: string;
    readonly hostNetwork?: boolean;
    readonly ports?: readonly { readonly host?: number; readonly protocol?: "tcp" | "udp" }[];
}

/**
 * The host ports Docker publishes on each Pi (host-network workloads have none: their ports are
 * the Pi's own). Connections to these are DNAT'd to a container in PREROUTING, so the firewall
 * filters them in `forward`.
 */
export function publishedPorts(workloads: readonly PublishingWorkload[], assignments: ReadonlyMap<string, readonly string[]>): Map<string, PublishedPort[]> {
    const byPi = new Map<string, PublishedPort[]>();
    for (const w of workloads) {
        if (w.hostNetwork) continue;
        const ports = (w.ports ?? []).flatMap((p) => (p.host === undefined ? [] : [{ protocol: p.protocol ?? "tcp", port: p.host }]));
        for (const pi of assignments.get(w.name) ?? []) {
            const list = byPi.get(pi) ?? [];
            for (const p of ports) if (!list.some((q) => q.protocol === p.protocol && q.port === p.port)) list.push(p);
            byPi.set(pi, list);
        }
    }
    for (const list of byPi.values()) list.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
    return byPi;
}
