/**
 * Network separation for real (DESIGN.md §6, "the firewall matrix"): the dev stack's three Pis
 * stood in for by three test hosts, each given the ruleset picloud renders for it by PiHost's
 * firewall script over SSH, then every listener on every host tried from every
 * other host, from the unfiltered probe host (a stranger: not in mgmt) and from this machine
 * (the controller, the operator's network: mgmt is its bridge address alone). What must open is
 * read off the network plan, not written down here: a connection gets through exactly when a
 * flow into that host and port admits its source.
 *
 * Ports Docker publishes are judged in `forward`, after Docker's DNAT, which needs a Docker engine
 * these hosts cannot run (DESIGN.md §5). Here they are plain listeners in `input`, where the
 * ruleset must drop them from every other host (only a Pi's own containers reach its published
 * ports in `input`, through docker-proxy); that they open DNAT'd from their declared sources is
 * nftables.packets.test.ts' job. In the dev stack those forward-only ports are dev-1's 3000,
 * 8080, 9090, 9093, 9338 and 9797 and dev-2's and dev-3's 8080, 9338 and 9797; the matrix marks
 * them `f`.
 */
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planCloud } from "../../components/cloud/piCloud";
import { PicloudConfigError } from "../../components/config/errors";
import { PiConfig, StackConfig, parseStackConfig } from "../../components/config/schema";
import { planNetwork } from "../../components/cloud/network";
import { NetworkPlan, inboundFlows, isAddressOrCidr, resolveSource } from "../../components/network/flows";
import { renderNftables } from "../../components/network/nftables";
import { NFTABLES_TABLE } from "../../components/renderers/firewallFiles";
import { readStackDocument } from "../../components/plan/plan";
import { renderFirewallConfirmScript, renderFirewallScript } from "../../components/renderers/hostScripts";
import { STACKS_DIR } from "../support/exampleStacks";
import { startTestbed, Testbed, TestHost } from "./testbed";

/** Ports nothing in the stack declares, each a classic thing to leave open by mistake: Docker's API, Redis, MongoDB, and one of no meaning. */
const UNDECLARED_PORTS = [2375, 6379, 27017, 9999];
/** Long enough for an accepted connection on a loaded machine; a dropped one takes this long. */
const CONNECT_TIMEOUT_SECONDS = 2;
/** The listeners' unit on each host, and where they log the source of each VRRP packet the host accepts. */
const LISTENERS = { unit: "pct-listeners", script: "/tmp/pct-listeners.pl", vrrpLog: "/run/pct-vrrp.log" } as const;
const FIREWALL_SCRIPT_PATH = "/tmp/picloud-firewall.sh";
const ROLLBACK_TIMER = "picloud-firewall-rollback.timer";

/**
 * Accepts (and closes) TCP connections on every port given, and appends the source address of
 * every IP protocol 112 (VRRP) packet to the log given first: a raw socket only sees what the
 * input hook accepted. Forks once every socket is open, so that systemd (Type=forking) reports
 * the unit started only then. Perl, because it is what the hosts have (no python3, no netcat).
 */
const LISTENER_SCRIPT = String.raw`use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Socket;
my ($log, @ports) = @ARGV;
my $select = IO::Select->new;
for my $port (@ports) {
    $select->add(IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $port, Listen => 128, ReuseAddr => 1) // die "cannot listen on port $port: $@\n");
}
socket(my $vrrp, PF_INET, SOCK_RAW, 112) or die "no raw socket for IP protocol 112: $!\n";
$select->add($vrrp);
open(my $out, ">>", $log) or die "cannot open $log: $!\n";
$out->autoflush(1);
exit 0 if fork;
while (1) {
    for my $ready ($select->can_read) {
        if ($ready == $vrrp) {
            my $from = recv($vrrp, my $packet, 2048, 0);
            print $out inet_ntoa((unpack_sockaddr_in($from))[1]), "\n" if defined $from;
        } else {
            my $client = $ready->accept;
            close $client if $client;
        }
    }
}
`;

/** Sends three IP protocol 112 packets to each address given, as a VRRP advert would go (needs root). */
const VRRP_SENDER = String.raw`use Socket; socket(my $s, PF_INET, SOCK_RAW, 112) or die "raw socket: $!\n"; for my $to (@ARGV) { for (1 .. 3) { defined send($s, "picloud vrrp test", 0, pack_sockaddr_in(0, inet_aton($to))) or die "send to $to: $!\n" } }`;

/**
 * Tries every `address:port` given at once: prints `address:port <exit>`, where 0 is open, 124
 * no answer in time (dropped) and 1 refused. bash's /dev/tcp is on every host.
 */
const CONNECTOR_SCRIPT = `for target in "$@"; do
    (timeout ${CONNECT_TIMEOUT_SECONDS} bash -c 'exec 3<>"/dev/tcp/$1/$2"' - "\${target%:*}" "\${target#*:}" 2>/dev/null; echo "$target $?") &
done
wait`;

type Outcome = "open" | "dropped" | "refused" | `error ${string}`;

const OUTCOME_OF_EXIT: Record<string, Outcome> = { "0": "open", "124": "dropped", "1": "refused" };

/** One place connections are tried from. */
interface Source {
    readonly name: string;
    readonly address: string;
    /** Tries every `address:port` at once; resolves to each one's outcome. */
    connect(targets: readonly string[]): Promise<Map<string, Outcome>>;
}

/** One cell of the matrix: a connection from a source to a port of a host, and what the plan says of it. */
interface Cell {
    readonly from: Source;
    readonly to: PiConfig;
    readonly port: number;
    /** Some flow into the host admits this source on this port. */
    readonly declared: boolean;
    /** Docker publishes the port on the host: its flows are the `forward` chain's, after DNAT. */
    readonly published: boolean;
}

/** What `input` must do with a cell's connection: open only for a declared flow to a port the host serves itself. */
const expectedOutcome = (cell: Cell): Outcome => (cell.declared && !cell.published ? "open" : "dropped");

function ipv4Number(address: string): number {
    return address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** Is IPv4 `address` inside `cidr` (an IPv4 address or CIDR)? IPv6 never is. */
function inCidr(address: string, cidr: string): boolean {
    const [network, bits = "32"] = cidr.split("/");
    if (!net.isIPv4(address) || !net.isIPv4(network)) return false;
    const size = 2 ** (32 - Number(bits));
    return Math.floor(ipv4Number(address) / size) === Math.floor(ipv4Number(network) / size);
}

/** Does a flow into `to` on `protocol`/`port` admit connections from `address`? Read off the plan: the flows and their resolved sources. */
function admits(network: NetworkPlan, to: string, protocol: "tcp" | "vrrp", port: number | undefined, address: string): boolean {
    return inboundFlows(to, network).some((flow) => {
        if (flow.protocol !== protocol || flow.port !== port) return false;
        const source = resolveSource(flow, network);
        return source.any || source.addresses.some((cidr) => inCidr(address, cidr));
    });
}

/** The dev stack's config file, its `picloud:` keys without the prefix. */
function devStackValues(): Record<string, unknown> {
    const doc = readStackDocument(path.join(STACKS_DIR, "Pulumi.dev.yaml"));
    return Object.fromEntries(Object.entries(doc.config ?? {}).flatMap(([key, value]) => (key.startsWith("picloud:") ? [[key.slice("picloud:".length), structuredClone(value)]] : [])));
}

/** Every string in a config value that is an address or CIDR, with where it sits. */
function addressesIn(value: unknown, where: string): [string, string][] {
    if (typeof value === "string") return isAddressOrCidr(value) ? [[where, value]] : [];
    if (Array.isArray(value)) return value.flatMap((v, i) => addressesIn(v, `${where}[${i}]`));
    if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => addressesIn(v, `${where}.${k}`));
    return [];
}

/**
 * The dev stack moved onto the test bed: each Pi gets its test host's address and host key, the
 * subnet becomes the bridge's, the load balancer's virtual IP a free address on it; names, labels
 * and tiers stay. Validated as the program validates it, secrets declared set (the file holds none).
 */
function devStackOn(bed: Testbed): StackConfig {
    const values = devStackValues();
    const pis = values.pis as { address: string; hostKey: string }[];
    bed.hosts.forEach((host, i) => Object.assign(pis[i], { address: host.address, hostKey: host.hostKey }));
    values.network = { ...(values.network as object), subnet: bed.subnet };
    const loadBalancer = (values.tiers as { loadBalancer?: { virtualIp?: string } }).loadBalancer;
    // No test host has it: they are numbered from .10 up.
    if (loadBalancer?.virtualIp) loadBalancer.virtualIp = bed.subnet.replace(/\.0\/24$/, ".250");
    const stale = addressesIn(values, "picloud").filter(([, a]) => !inCidr(a.split("/")[0], bed.subnet));
    if (stale.length) throw new Error(`the dev stack has addresses this test does not move onto the test bed's ${bed.subnet}: ${stale.map(([k, a]) => `${k} = ${a}`).join(", ")}`);

    try {
        return parseStackConfig({ values, secretKeys: [] });
    } catch (e) {
        if (!(e instanceof PicloudConfigError) || e.problems.some((p) => p.kind !== "missing-secret")) throw e;
        return parseStackConfig({ values, secretKeys: e.problems.map((p) => p.key.slice("picloud:".length)) });
    }
}

async function mustSsh(host: TestHost, command: string, input?: string): Promise<string> {
    const r = await host.ssh(command, { input });
    if (r.code !== 0) throw new Error(`on ${host.name} (${host.address}), '${command.split("\n")[0]}' exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
}

/** A source that tries its connections on a test host, over SSH. */
function hostSource(host: TestHost): Source {
    return {
        name: host.name,
        address: host.address,
        async connect(targets) {
            const out = await mustSsh(host, `bash -s -- ${targets.join(" ")}`, CONNECTOR_SCRIPT);
            return new Map(
                out
                    .trim()
                    .split("\n")
                    .map((line) => {
                        const [target, code] = line.split(" ");
                        return [target, OUTCOME_OF_EXIT[code] ?? (`error exit ${code}` as Outcome)];
                    }),
            );
        },
    };
}

/** This machine, on the bridge: the operator's side. */
function controllerSource(address: string): Source {
    const tryOne = (target: string) =>
        new Promise<[string, Outcome]>((resolve) => {
            const [host, port] = target.split(":");
            const socket = net.connect({ host, port: Number(port), timeout: CONNECT_TIMEOUT_SECONDS * 1000 });
            const done = (outcome: Outcome) => {
                socket.destroy();
                resolve([target, outcome]);
            };
            socket.once("connect", () => done("open"));
            socket.once("timeout", () => done("dropped"));
            socket.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "refused" : `error ${e.code}`));
        });
    return { name: "controller", address, connect: async (targets) => new Map(await Promise.all(targets.map(tryOne))) };
}

/** Every cell's outcome, every source trying all of its connections at once. */
async function runMatrix(cells: readonly Cell[]): Promise<Outcome[]> {
    const sources = [...new Set(cells.map((c) => c.from))];
    const target = (c: Cell) => `${c.to.address}:${c.port}`;
    const results = new Map(await Promise.all(sources.map(async (s) => [s, await s.connect(cells.filter((c) => c.from === s).map(target))] as const)));
    return cells.map((c) => results.get(c.from)!.get(target(c)) ?? "error not tried");
}

const rows = (cells: readonly Cell[], outcomes: readonly Outcome[]) => cells.map((c, i) => `${c.from.name} -> ${c.to.name}:${c.port} ${outcomes[i]}`);

/** The matrix, one line per host and port, one column per source: o open, x dropped, f forward-only (dropped here), - not tried; `!` marks a cell not as expected. */
function formatMatrix(sources: readonly Source[], cells: readonly Cell[], outcomes: readonly Outcome[]): string {
    const targets = [...new Set(cells.map((c) => `${c.to.name}:${c.port}`))];
    const width = Math.max(...targets.map((t) => t.length), 2);
    const header = ["to".padEnd(width), ...sources.map((s) => s.name)].join("  ");
    const lines = targets.map((t) => {
        const marks = sources.map((s) => {
            const i = cells.findIndex((c) => c.from === s && `${c.to.name}:${c.port}` === t);
            if (i < 0) return "-".padEnd(s.name.length);
            const cell = cells[i];
            const mark = outcomes[i] === "open" ? "o" : outcomes[i] !== "dropped" ? "?" : cell.declared && cell.published ? "f" : "x";
            return `${mark}${outcomes[i] === expectedOutcome(cell) ? "" : "!"}`.padEnd(s.name.length);
        });
        return [t.padEnd(width), ...marks].join("  ").trimEnd();
    });
    return [header, ...lines].join("\n");
}

/** One host sending VRRP adverts to others. */
interface VrrpSend {
    readonly from: TestHost;
    readonly to: readonly TestHost[];
}

/**
 * Who sends VRRP to whom. The hosts a VRRP flow admits (the load balancers) send along their
 * flows only, as keepalived's unicast adverts go; every other host sends to each of those that
 * did not send to it, and the probe to every host. No host is thus sent to by one it sent to
 * itself: conntrack tracks IP protocol 112 by its two addresses alone, so such a packet would
 * pass `ct state established` as a reply, whatever the flows say.
 */
function planVrrpSends(network: NetworkPlan, pis: readonly PiConfig[], bed: Testbed): VrrpSend[] {
    const hostOf = (pi: PiConfig) => bed.hosts[pis.indexOf(pi)];
    const peers = (from: PiConfig) => pis.filter((to) => to !== from && admits(network, to.name, "vrrp", undefined, from.address));
    const speakers = pis.filter((pi) => peers(pi).length > 0);
    return [
        ...speakers.map((pi) => ({ from: hostOf(pi), to: peers(pi).map(hostOf) })),
        ...pis.filter((pi) => !speakers.includes(pi)).map((pi) => ({ from: hostOf(pi), to: speakers.filter((s) => !peers(s).includes(pi)).map(hostOf) })),
        { from: bed.probe, to: bed.hosts },
    ];
}

describe("network separation for real: the dev stack's firewalls on test hosts, loaded over SSH as PiHost loads them", () => {
    const devPis = (devStackValues().pis as { name: string }[]).map((p) => p.name);
    let bed: Testbed;
    let config: StackConfig;
    let network: NetworkPlan;
    let hosts: Map<string, TestHost>;
    let cells: Cell[];
    let ports: number[];
    let sources: Source[];
    let vrrpSends: VrrpSend[];

    beforeAll(async () => {
        bed = await startTestbed({ hosts: devPis });
        config = devStackOn(bed);
        // The pure layers only need the secrets to exist, as in test/support/exampleStacks.ts.
        const secrets = Object.fromEntries(config.secretKeys.map((key) => [key, `placeholder for picloud:${key}`]));
        network = planNetwork(config, planCloud(config, secrets), { mgmtNetwork: `${bed.bridgeAddress}/32` });
        hosts = new Map(config.pis.map((pi, i) => [pi.name, bed.hosts[i]]));

        const declaredPorts = network.flows.flatMap((f) => (f.protocol === "tcp" ? [f.port!] : []));
        ports = [...new Set([...declaredPorts, ...UNDECLARED_PORTS])].sort((a, b) => a - b);
        // sshd, which the test bed reaches the hosts by, already listens on 22.
        const listened = ports.filter((p) => p !== 22);
        await Promise.all(
            bed.hosts.map(async (host) => {
                await mustSsh(host, `cat > ${LISTENERS.script}`, LISTENER_SCRIPT);
                await mustSsh(host, `sudo -n systemd-run --quiet --unit=${LISTENERS.unit} --property=Type=forking perl ${LISTENERS.script} ${LISTENERS.vrrpLog} ${listened.join(" ")}`);
            }),
        );

        sources = [...bed.hosts.map(hostSource), hostSource(bed.probe), controllerSource(bed.bridgeAddress)];
        cells = config.pis.flatMap((to) =>
            ports.flatMap((port) =>
                sources
                    .filter((from) => from.address !== to.address)
                    .map((from) => ({
                        from,
                        to,
                        port,
                        declared: admits(network, to.name, "tcp", port, from.address),
                        published: (network.publishedPorts.get(to.name) ?? []).some((p) => p.protocol === "tcp" && p.port === port),
                    })),
            ),
        );
        vrrpSends = planVrrpSends(network, config.pis, bed);
    });
    // The listeners and firewalls live and die with the hosts.
    afterAll(() => bed?.stop());

    /** Sends `sends` at once and resolves to the senders (by name) each test host's log then shows VRRP from, by Pi name. */
    async function vrrpSeen(sends: readonly VrrpSend[]): Promise<Map<string, string[]>> {
        await Promise.all(bed.hosts.map((h) => mustSsh(h, `sudo -n truncate -s 0 ${LISTENERS.vrrpLog}`)));
        await Promise.all(sends.map(({ from, to }) => mustSsh(from, `sudo -n perl -e '${VRRP_SENDER}' ${to.map((h) => h.address).join(" ")}`)));
        // Delivery is immediate; this is slack for a loaded machine.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const logs = await Promise.all(config.pis.map(async (pi) => (await mustSsh(hosts.get(pi.name)!, `cat ${LISTENERS.vrrpLog}`)).split("\n").filter(Boolean)));
        const nameOf = (address: string) => [...bed.hosts, bed.probe].find((h) => h.address === address)?.name ?? address;
        return new Map(config.pis.map((pi, i) => [pi.name, [...new Set(logs[i].map(nameOf))].sort()]));
    }

    /** The senders (by name) of `sends` to each Pi: those its ruleset must admit (`declared`), or all of them. */
    const vrrpSenders = (sends: readonly VrrpSend[], declared: boolean) =>
        new Map(
            config.pis.map((pi) => {
                const senders = sends.filter((s) => s.to.includes(hosts.get(pi.name)!)).map((s) => s.from);
                return [pi.name, senders.filter((h) => !declared || admits(network, pi.name, "vrrp", undefined, h.address)).map((h) => h.name).sort()];
            }),
        );

    it("without firewalls, every listener answers every source and VRRP reaches every host (the setup works)", async () => {
        expect(inCidr(bed.bridgeAddress, network.mgmtNetwork) && !inCidr(bed.probe.address, network.mgmtNetwork)).toBe(true);
        expect(ports).toEqual(expect.arrayContaining(UNDECLARED_PORTS));
        expect(network.flows.filter((f) => UNDECLARED_PORTS.includes(f.port ?? 0))).toEqual([]);
        const outcomes = await runMatrix(cells);
        expect(rows(cells, outcomes)).toEqual(rows(cells, cells.map(() => "open")));
        expect(await vrrpSeen(vrrpSends)).toEqual(vrrpSenders(vrrpSends, false));
    });

    it("PiHost's firewall script checks and loads each host's ruleset, and its confirmation over the operator's next SSH connection calls off the rollback", async () => {
        await Promise.all(
            config.pis.map(async (pi) => {
                const host = hosts.get(pi.name)!;
                await mustSsh(host, `cat > ${FIREWALL_SCRIPT_PATH}`, renderFirewallScript({ ruleset: renderNftables(pi.name, network) }));
                expect(await mustSsh(host, `sudo -n bash ${FIREWALL_SCRIPT_PATH}`)).toBe("picloud: changed firewall\npicloud-firewall: changed=1\n");
                expect(await mustSsh(host, `systemctl is-active ${ROLLBACK_TIMER}`)).toBe("active\n");
                // A second run finds everything in place: no reload, no new rollback.
                expect(await mustSsh(host, `sudo -n bash ${FIREWALL_SCRIPT_PATH}`)).toBe("picloud: ok firewall\npicloud-firewall: changed=0\n");
                expect(await mustSsh(host, renderFirewallConfirmScript())).toBe("picloud-firewall: confirmed\n");
                expect((await host.ssh(`systemctl is-active ${ROLLBACK_TIMER}`)).stdout).toBe("inactive\n");
                expect((await host.ssh(`sudo -n nft list table ${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name} >/dev/null`)).code).toBe(0);
            }),
        );
    });

    it("every declared flow opens and every other connection is dropped, from each host, the probe and the operator", async () => {
        const outcomes = await runMatrix(cells);
        const open = outcomes.filter((o) => o === "open").length;
        console.log(
            `firewall matrix: ${cells.length} connections, ${open} open; o open, x dropped, f forward-only (dropped in input), - not tried, ! unexpected\n${formatMatrix(sources, cells, outcomes)}`,
        );
        expect(rows(cells, outcomes)).toEqual(rows(cells, cells.map(expectedOutcome)));
        // Every source is let through somewhere, so none of them is simply cut off.
        for (const s of new Set(cells.map((c) => c.from))) expect(cells.some((c, i) => c.from === s && outcomes[i] === "open"), s.name).toBe(true);
    });

    it("VRRP reaches a load-balancer host from the other one only: not from the probe, nor from a host outside the pair", async () => {
        const seen = await vrrpSeen(vrrpSends);
        const expected = vrrpSenders(vrrpSends, true);
        console.log(`VRRP accepted: ${[...seen].map(([pi, from]) => `${pi} from ${from.join(", ") || "nobody"}`).join("; ")}`);
        expect(seen).toEqual(expected);
        expect([...expected.values()].filter((from) => from.length > 0)).toHaveLength(2);
    });
});
