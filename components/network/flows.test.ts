import { describe, expect, it } from "vitest";
import { exampleStack } from "../../test/support/exampleStacks";
import type { PiConfig } from "../config/schema";
import { faasdHostPorts } from "../tiers/functions/renderers";
import { faasdInput, faasdPi } from "../tiers/functions/specs";
import { planNetwork } from "../cloud/network";
import { Flow, NetworkPlan, checkNetworkPlan, formatFlows, inboundFlows, resolveSource, scrapeFlows, sourceLabel, zoneOf } from "./flows";

const stacks = ["lab", "dev", "prod"] as const;
const networkOf = (stack: string) => {
    const { config, plan } = exampleStack(stack);
    return { config, plan, network: planNetwork(config, plan) };
};

/** "tcp/9100 <- dev-1" for every flow into a Pi, sorted: what its firewall accepts, at a glance. */
function inbound(network: NetworkPlan, pi: string): string[] {
    return inboundFlows(pi, network)
        .map((f) => `${f.protocol === "vrrp" ? "vrrp" : `${f.protocol}/${f.port}`} <- ${sourceLabel(f.from, network)}`)
        .sort();
}

/** The sources allowed to one port of one Pi. */
function sourcesOf(network: NetworkPlan, pi: string, port: number | "vrrp"): string[] {
    return inboundFlows(pi, network)
        .filter((f) => (port === "vrrp" ? f.protocol === "vrrp" : f.port === port))
        .map((f) => sourceLabel(f.from, network))
        .sort();
}

const describeFlowShort = (f: Flow) => `${f.purpose} to ${f.to}:${f.port}`;

const pi = (name: string, role?: string): PiConfig =>
    ({ name, address: "10.0.0.1", labels: role === undefined ? {} : { role } }) as unknown as PiConfig;

describe("zoneOf", () => {
    it.each([
        ["edge", "edge"],
        ["app", "app"],
        ["functions", "app"],
        ["data", "data"],
        ["monitoring", "data"],
        ["gpu", "app"],
        ["constructor", "app"],
    ])("role %s is zone %s", (role, zone) => {
        expect(zoneOf(pi("p", role))).toBe(zone);
    });

    it("a Pi without a role is an app Pi; no Pi is ever in mgmt (the operator's side)", () => {
        expect(zoneOf(pi("p"))).toBe("app");
        for (const stack of stacks) for (const p of exampleStack(stack).config.pis) expect(zoneOf(p)).not.toBe("mgmt");
    });
});

describe("the dev stack's flows", () => {
    const { network } = networkOf("dev");
    const mgmt = "mgmt (192.168.10.0/24)";

    it("dev-3 (an app replica, an etcd member, a Garage node, a database member, VictoriaLogs and the second monitoring replica) accepts exactly SSH, DNS, etcd's client port, S3, PostgreSQL, VictoriaLogs and the monitoring UIs from mgmt, the other members and nodes on their peer ports, every Pi on S3, PostgreSQL and journal uploads, the load balancers on the app port and Patroni's, Prometheus on dev-1 and itself, and dev-1's Alertmanager peer", () => {
        const prometheus = ["dev-1", "dev-3"];
        const scraped = (port: number) => prometheus.map((from) => `tcp/${port} <- ${from}`);
        // DNS from itself (its containers) too; every Pi has a member, so none forwards the zone to it.
        const dns = [mgmt, "dev-3"].flatMap((from) => [`tcp/53 <- ${from}`, `udp/53 <- ${from}`]);
        // PostgreSQL from every other Pi and the operator, and again from the load balancers' own flow; Patroni from
        // the other members, again from the load balancers (their role check) and from both Prometheus replicas.
        const postgres = ["tcp/5432 <- dev-1", "tcp/5432 <- dev-1", "tcp/5432 <- dev-2", "tcp/5432 <- dev-2", `tcp/5432 <- ${mgmt}`, "tcp/8008 <- dev-1", "tcp/8008 <- dev-1", "tcp/8008 <- dev-2", "tcp/8008 <- dev-2", ...scraped(8008), ...scraped(9187)];
        // Journal uploads from every Pi, itself included (the monitoring Pis' also carry Grafana's queries), both replicas' scrapes, the operator's queries.
        const logs = [...["dev-1", "dev-2", "dev-3", mgmt].map((from) => `tcp/9428 <- ${from}`), ...scraped(9428)];
        // Its own Prometheus, Alertmanager and Grafana: the operator, both replicas' scrapes, dev-1's alerts and the cluster's gossip.
        const monitoring = [3000, 9090, 9093].flatMap((port) => [...scraped(port), `tcp/${port} <- ${mgmt}`]);
        const peer = ["tcp/9093 <- dev-1", "tcp/9094 <- dev-1", "udp/9094 <- dev-1"];
        expect(inbound(network, "dev-3")).toEqual(
            [
                ...logs,
                ...monitoring,
                ...peer,
                `tcp/22 <- ${mgmt}`,
                `tcp/2379 <- ${mgmt}`,
                "tcp/2380 <- dev-1",
                "tcp/2380 <- dev-2",
                "tcp/2383 <- dev-1",
                "tcp/2383 <- dev-2",
                "tcp/3900 <- dev-1",
                "tcp/3900 <- dev-2",
                `tcp/3900 <- ${mgmt}`,
                "tcp/3901 <- dev-1",
                "tcp/3901 <- dev-2",
                "tcp/8080 <- dev-1",
                "tcp/8080 <- dev-2",
                ...[2381, 3903, 9100, 9153, 9338, 9797].flatMap(scraped),
                ...postgres,
                ...dns,
            ].sort(),
        );
    });

    it("the database's load-balancer ports take every other Pi and the operator on the load-balancer Pis, and nothing elsewhere", () => {
        for (const port of [5000, 5001]) {
            expect(sourcesOf(network, "dev-1", port)).toEqual(["dev-2", "dev-3", mgmt]);
            expect(sourcesOf(network, "dev-2", port)).toEqual(["dev-1", "dev-3", mgmt]);
            expect(sourcesOf(network, "dev-3", port)).toEqual([]);
        }
    });

    it("the app's host port on each replica's Pi accepts only the load-balancer Pis (dev-2, dev-1)", () => {
        for (const p of ["dev-1", "dev-2", "dev-3"]) expect(sourcesOf(network, p, 8080)).toEqual(["dev-1", "dev-2"]);
    });

    it("node_exporter, cAdvisor and the app's metrics accept only the monitoring Pis (dev-1, dev-3)", () => {
        for (const p of ["dev-1", "dev-2", "dev-3"]) {
            for (const port of [9100, 9338, 9797]) expect(sourcesOf(network, p, port)).toEqual(["dev-1", "dev-3"]);
        }
    });

    it("SSH on every Pi accepts the operator's network, the stack's subnet by default", () => {
        for (const p of ["dev-1", "dev-2", "dev-3"]) expect(sourcesOf(network, p, 22)).toEqual([mgmt]);
        expect(network.mgmtNetwork).toBe("192.168.10.0/24");
    });

    it("VRRP flows only between the two load-balancer Pis, each from the other", () => {
        expect(sourcesOf(network, "dev-1", "vrrp")).toEqual(["dev-2"]);
        expect(sourcesOf(network, "dev-2", "vrrp")).toEqual(["dev-1"]);
        expect(sourcesOf(network, "dev-3", "vrrp")).toEqual([]);
    });

    it("clients reach HTTP on the load-balancer Pis only; no TLS, no 443", () => {
        expect(sourcesOf(network, "dev-1", 80)).toEqual(["any"]);
        expect(sourcesOf(network, "dev-2", 80)).toEqual(["any"]);
        expect(sourcesOf(network, "dev-3", 80)).toEqual([]);
        expect(network.flows.some((f) => f.port === 443)).toBe(false);
    });

    it("faasd on dev-2: the gateway from the load balancers and mgmt, metrics from both Prometheus replicas, the provider from dev-2 alone", () => {
        expect(sourcesOf(network, "dev-2", 8180)).toEqual(["dev-1", "dev-2", mgmt]);
        expect(sourcesOf(network, "dev-2", 8182)).toEqual(["dev-1", "dev-3"]);
        expect(sourcesOf(network, "dev-2", 8181)).toEqual(["dev-2"]);
    });

    it("the monitoring services on each monitoring Pi take the operator and both Prometheus replicas; the Alertmanagers gossip with each other only", () => {
        for (const [home, other] of [["dev-1", "dev-3"], ["dev-3", "dev-1"]]) {
            for (const port of [3000, 9090]) expect(sourcesOf(network, home, port)).toEqual(["dev-1", "dev-3", mgmt]);
            // Both replicas scrape Alertmanager; the other's Prometheus also sends it alerts.
            expect(sourcesOf(network, home, 9093)).toEqual(["dev-1", "dev-3", other, mgmt].sort());
            // Gossip on tcp and udp.
            expect(sourcesOf(network, home, 9094)).toEqual([other, other]);
        }
        for (const port of [3000, 9090, 9093, 9094]) expect(sourcesOf(network, "dev-2", port)).toEqual([]);
    });

    it("Docker publishes the central monitoring services on dev-1 and dev-3 (Alertmanager's gossip on tcp and udp), VictoriaLogs on dev-3 and the app and cAdvisor everywhere; host-network ports are not published", () => {
        const published = (p: string) => (network.publishedPorts.get(p) ?? []).map((x) => x.port);
        expect(published("dev-1")).toEqual([3000, 8080, 9090, 9093, 9094, 9094, 9187, 9338, 9797]);
        expect(published("dev-3")).toEqual([3000, 8080, 9090, 9093, 9094, 9094, 9187, 9338, 9428, 9797]);
        for (const port of [80, 8404, 9100, 8180, 9090]) expect(published("dev-2")).not.toContain(port);
    });

    it("every flow names the config key that asks for it", () => {
        const keys = new Set(network.flows.map((f) => f.declaredBy));
        expect([...keys].sort()).toEqual(
            [
                "picloud:pis[0]",
                "picloud:pis[0].sshPort",
                "picloud:pis[1]",
                "picloud:pis[1].sshPort",
                "picloud:pis[2]",
                "picloud:pis[2].sshPort",
                "picloud:tiers.apps.hello.hostPort",
                "picloud:tiers.apps.hello.metrics",
                "picloud:tiers.blob.adminPort",
                "picloud:tiers.blob.rpcPort",
                "picloud:tiers.blob.s3Port",
                "picloud:tiers.database.loadBalancer",
                "picloud:tiers.database.loadBalancer.primaryPort",
                "picloud:tiers.database.loadBalancer.replicasPort",
                "picloud:tiers.database.port",
                "picloud:tiers.database.restApiPort",
                "picloud:tiers.functions.gatewayPort",
                "picloud:tiers.functions.metricsPort",
                "picloud:tiers.functions.providerPort",
                "picloud:tiers.loadBalancer",
                "picloud:tiers.loadBalancer.statsPort",
                "picloud:tiers.loadBalancer.virtualIp",
                "picloud:tiers.monitoring",
                "picloud:tiers.monitoring.replicas",
                "picloud:tiers.monitoring.victoriaLogs",
                "picloud:tiers.monitoring.victoriaLogs.httpPort",
                "picloud:tiers.registry.clientPort",
                "picloud:tiers.registry.dcsPort",
                "picloud:tiers.registry.dns",
                "picloud:tiers.registry.metricsPort",
                "picloud:tiers.registry.peerPort",
            ].sort(),
        );
    });

    it("formats as a table, one row per flow into each Pi", () => {
        const table = formatFlows(network).split("\n");
        expect(table[0]).toMatch(/^to\s+port\s+from\s+purpose\s+declared by$/);
        expect(table).toContainEqual(expect.stringMatching(/^dev-3 \(data\)\s+tcp\/8080\s+dev-2\s+load balancer to app-hello\s+picloud:tiers\.apps\.hello\.hostPort$/));
        expect(table.length).toBe(1 + ["dev-1", "dev-2", "dev-3"].reduce((n, p) => n + inboundFlows(p, network).length, 0));
    });
});

describe("the prod stack's flows", () => {
    const { network, config } = networkOf("prod");
    const names = config.pis.map((p) => p.name);

    it("the app port on app-1 and app-2 accepts only edge-1 and edge-2; the edge and data Pis do not publish it", () => {
        expect(sourcesOf(network, "app-1", 8080)).toEqual(["edge-1", "edge-2"]);
        expect(sourcesOf(network, "app-2", 8080)).toEqual(["edge-1", "edge-2"]);
        for (const p of ["edge-1", "edge-2", "data-1", "data-2"]) expect(sourcesOf(network, p, 8080)).toEqual([]);
    });

    it("node_exporter on every Pi accepts only the monitoring Pis, data-1 and data-2", () => {
        for (const p of names) expect(sourcesOf(network, p, 9100)).toEqual(["data-1", "data-2"]);
    });

    it("clients reach 80 and 443 (TLS) on the edge Pis only; VRRP runs between edge-1 and edge-2 only", () => {
        for (const p of names) {
            const edge = p.startsWith("edge-");
            expect(sourcesOf(network, p, 80)).toEqual(edge ? ["any"] : []);
            expect(sourcesOf(network, p, 443)).toEqual(edge ? ["any"] : []);
        }
        expect(sourcesOf(network, "edge-1", "vrrp")).toEqual(["edge-2"]);
        expect(sourcesOf(network, "edge-2", "vrrp")).toEqual(["edge-1"]);
        expect(network.flows.filter((f) => f.protocol === "vrrp").map((f) => f.to).sort()).toEqual(["edge-1", "edge-2"]);
    });

    it("data-2 (an etcd member, Garage's first node, a database member, VictoriaMetrics and the second monitoring replica) holds nothing anyone reaches but SSH, etcd's clients from mgmt and its peers, S3 and PostgreSQL from every Pi, mgmt and the load balancers (which check Garage's admin port and Patroni's), Garage's RPC and Patroni from their peers, both Prometheus replicas, pushes and queries to VictoriaMetrics from every Pi and mgmt, the monitoring services from mgmt, both replicas and data-1's Alertmanager peer, and DNS from mgmt and the Pis without a member", () => {
        const scraped = (port: number) => ["data-1", "data-2"].map((from) => `tcp/${port} <- ${from}`);
        const dns = ["mgmt (10.20.0.0/24)", "app-2", "edge-1", "edge-2", "data-2"].flatMap((from) => [`tcp/53 <- ${from}`, `udp/53 <- ${from}`]);
        const s3 = ["app-1", "app-2", "data-1", "edge-1", "edge-2", "mgmt (10.20.0.0/24)"].map((from) => `tcp/3900 <- ${from}`);
        // The load balancers' own flow to their S3 backend beside S3 from every Pi: one rule each, each saying why.
        const lb = ["tcp/3900 <- edge-1", "tcp/3900 <- edge-2", "tcp/3903 <- edge-1", "tcp/3903 <- edge-2"];
        const garage = ["tcp/3901 <- app-1", "tcp/3901 <- data-1", ...scraped(3903), ...s3, ...lb];
        const postgres = [
            ...["app-1", "app-2", "data-1", "edge-1", "edge-2", "mgmt (10.20.0.0/24)"].map((from) => `tcp/5432 <- ${from}`),
            ...["tcp/5432 <- edge-1", "tcp/5432 <- edge-2"],
            ...["app-1", "data-1", "edge-1", "edge-2"].map((from) => `tcp/8008 <- ${from}`),
            ...scraped(8008),
            ...["tcp/2383 <- app-1", "tcp/2383 <- data-1"],
        ];
        // Both replicas' remote_write (data-2's own from its containers) and scrapes; pushes from every other Pi; the operator's queries.
        const victoriaMetrics = [...["data-1", "data-2", "app-1", "app-2", "edge-1", "edge-2", "mgmt (10.20.0.0/24)"].map((from) => `tcp/8428 <- ${from}`), ...scraped(8428)];
        // Its own Prometheus, Alertmanager and Grafana: the operator, both replicas' scrapes, data-1's alerts and the cluster's gossip.
        const monitoring = [3000, 9090, 9093].flatMap((port) => [...scraped(port), `tcp/${port} <- mgmt (10.20.0.0/24)`]);
        const peer = ["tcp/9093 <- data-1", "tcp/9094 <- data-1", "udp/9094 <- data-1"];
        expect(inbound(network, "data-2")).toEqual(
            ["tcp/22 <- mgmt (10.20.0.0/24)", "tcp/2379 <- mgmt (10.20.0.0/24)", "tcp/2380 <- app-1", "tcp/2380 <- data-1", ...[2381, 9100, 9153, 9338].flatMap(scraped), ...garage, ...postgres, ...victoriaMetrics, ...monitoring, ...peer, ...dns].sort(),
        );
    });
});

describe("the lab stack's flows", () => {
    const { network } = networkOf("lab");

    it("without picloud:network.subnet the operator's network is anyone, and a single load balancer has no VRRP", () => {
        expect(network.mgmtNetwork).toBe("any");
        expect(sourcesOf(network, "lab-pi", 22)).toEqual(["mgmt (any)"]);
        expect(resolveSource(inboundFlows("lab-pi", network).find((f) => f.port === 22)!, network).any).toBe(true);
        expect(network.flows.some((f) => f.protocol === "vrrp")).toBe(false);
    });

    it("everything Prometheus scrapes sits on the one Pi: a flow from the Pi to itself, resolved as its own containers", () => {
        const scrape = inboundFlows("lab-pi", network).find((f) => f.purpose === "scrape apps-hello")!;
        expect(resolveSource(scrape, network)).toEqual({ any: false, addresses: [], self: true });
    });
});

describe.each(stacks)("the %s stack's flows and what listens", (stack) => {
    const { config, plan, network } = networkOf(stack);
    const sshd = new Map(config.pis.map((p) => [p.name, p.sshPort]));
    /** Every TCP port something listens on, by Pi: published or host-network workload ports, faasd's, sshd's. */
    const listening = new Map(config.pis.map((p) => [p.name, new Set<number>([sshd.get(p.name)!])]));
    for (const w of plan.workloads) {
        for (const p of plan.placement.assignments.get(w.name) ?? []) for (const port of w.ports ?? []) if (port.host !== undefined && !port.loopback) listening.get(p)!.add(port.host);
    }
    if (config.tiers.functions) for (const port of faasdHostPorts(faasdInput(config.tiers.functions))) listening.get(faasdPi(plan.placement, config.pis).name)!.add(port);

    it("every port a Pi opens is reachable by someone: nothing is published for nobody", () => {
        for (const [p, ports] of listening) {
            for (const port of ports) expect(sourcesOf(network, p, port), `${stack}: ${p}:${port}`).not.toEqual([]);
        }
    });

    it("every TCP flow goes to a port something listens on", () => {
        for (const f of network.flows.filter((x) => x.protocol === "tcp")) expect(listening.get(f.to)!.has(f.port!), `${describeFlowShort(f)}`).toBe(true);
    });
});

describe("planNetwork options and checks", () => {
    const { config, plan, network } = networkOf("dev");
    const base: NetworkPlan = { ...network, flows: [] };
    const flow = (over: Partial<Flow>): Flow => ({ from: "any", to: "dev-1", protocol: "tcp", port: 8000, purpose: "test", declaredBy: "picloud:test", ...over });

    it("takes the operator's network from the options", () => {
        const narrowed = planNetwork(config, plan, { mgmtNetwork: "192.168.10.64/28" });
        expect(sourcesOf(narrowed, "dev-3", 22)).toEqual(["mgmt (192.168.10.64/28)"]);
        expect(() => planNetwork(config, plan, { mgmtNetwork: "192.168.10.0/33" })).toThrow(/mgmtNetwork: expected the operator's network .* got "192\.168\.10\.0\/33"/);
    });

    it("adds the user's own flows, checked like picloud's", () => {
        const extra = flow({ from: { zone: "edge" }, to: "dev-3", port: 27017, purpose: "edge to mongodb", declaredBy: "my:db" });
        expect(sourcesOf(planNetwork(config, plan, { extraFlows: [extra] }), "dev-3", 27017)).toEqual(["zone edge"]);
        expect(() => planNetwork(config, plan, { extraFlows: [{ ...extra, to: "dev-9" }] })).toThrow(/flow "edge to mongodb" \(declared by my:db\): expected "to" to be one of the stack's Pis \(dev-1, dev-2, dev-3\), got "dev-9"/);
    });

    it("a zone resolves to its Pis, the destination itself as its own containers", () => {
        const f = flow({ from: { zone: "edge" }, to: "dev-1" });
        expect(resolveSource(f, { ...base, flows: [f] })).toEqual({ any: false, addresses: ["192.168.10.12"], self: true });
    });

    it.each<[string, Partial<Flow>, RegExp]>([
        ["an unknown source Pi", { from: { pi: "dev-7" } }, /expected "from\.pi" to be one of the stack's Pis \(dev-1, dev-2, dev-3\), got "dev-7"/],
        ["an unknown zone", { from: { zone: "dmz" as never } }, /expected "from\.zone" to be one of edge, app, data, mgmt, got "dmz"/],
        ["a bad CIDR", { from: { cidr: "10.0.0.0/40" } }, /expected "from\.cidr" to be an IPv4\/IPv6 address or CIDR .* got "10\.0\.0\.0\/40"/],
        ["a port out of range", { port: 70000 }, /expected a TCP port from 1 to 65535, got 70000/],
        ["a TCP flow without a port", { port: undefined }, /expected a TCP port from 1 to 65535, got nothing/],
        ["VRRP with a port", { protocol: "vrrp", port: 112 }, /VRRP has no ports, got port 112/],
        ["a quote in the purpose", { purpose: 'say "hi"' }, /expected a purpose of at most 100 letters/],
        ["no declaring key", { declaredBy: "" }, /expected the config key that declares it, got nothing/],
    ])("refuses %s, naming the flow", (_, over, message) => {
        const bad = flow(over);
        expect(() => checkNetworkPlan({ ...base, flows: [bad] })).toThrow(message);
        expect(() => checkNetworkPlan({ ...base, flows: [bad] })).toThrow(/flow "/);
    });

    it("lists every problem at once", () => {
        expect(() => checkNetworkPlan({ ...base, flows: [flow({ to: "x" }), flow({ port: 0 })] })).toThrow(/invalid network plan \(2 problems\)/);
    });

    it("refuses a scrape target that is no Pi of the stack, naming the job and the key", () => {
        const spec = { component: "mine", scrapeTargets: [{ job: "mine", targets: ["db.example:9187"] }], alertRules: [], dashboard: { uid: "m", title: "m", panels: [] }, logLabels: {} };
        expect(() => scrapeFlows([{ spec, declaredBy: "my:key" }], "dev-1", config.pis)).toThrow(/my:key: scrape job "mine" of component "mine": expected a "<Pi address>:<port>" endpoint on one of the stack's Pis .* got "db\.example:9187"/);
    });
});
