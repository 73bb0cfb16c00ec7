/**
 * Every flow a picloud stack needs, derived from its config and placement: what the tiers run,
 * where, and how they are watched. Scrape flows come from the same monitoring specs the tiers
 * attach, and load-balancer flows from the same backends HAProxy is configured with, so the
 * firewall opens exactly what Prometheus and HAProxy will use.
 */
import { configKey } from "../config/errors";
import type { StackConfig } from "../config/schema";
import type { PlacementPlan } from "../placement/place";
import type { Workload } from "../runtime/workload";
import { appBackend, appMonitoringSpec } from "../tiers/apps/appServers";
import { faasdPi, functionsBackend, functionsSpec } from "../tiers/functions/specs";
import { loadBalancerPis, loadBalancerSpec } from "../tiers/loadBalancer/specs";
import { MONITORING_PORTS, hostSpec, monitoringHome, monitoringTierSpec } from "../tiers/monitoring/specs";
import { DeclaredBackend, DeclaredSpec, Flow, NetworkPlan, PublishedPort, backendFlows, checkNetworkPlan, scrapeFlows } from "./flows";

/** What {@link planNetwork} reads of a cloud plan (a `CloudPlan` from `planCloud` is one). */
export interface PlacedWorkloads {
    readonly workloads: readonly Workload[];
    readonly placement: PlacementPlan;
}

/** Options of {@link planNetwork}. */
export interface NetworkOptions {
    /**
     * The operator's network, which SSH and the admin UIs accept: a CIDR, or "any". Default:
     * `picloud:network.subnet` (the operator sits on the Pis' LAN), else "any" (a lab without a
     * subnet: nothing to narrow to).
     */
    readonly mgmtNetwork?: string;
    /** Flows of the user's own components, checked and rendered like picloud's. */
    readonly extraFlows?: readonly Flow[];
}

/** The Pi placement put a workload's first replica on; throws naming the config key when it has none. */
function placedOn(placement: PlacementPlan, workload: string, key: string): readonly string[] {
    const pis = placement.assignments.get(workload);
    if (!pis || pis.length === 0) throw new Error(`${key}: workload "${workload}" has no placement; plan the cloud with planCloud before its network`);
    return pis;
}

/** Every monitoring spec the stack attaches, with the config key behind it. */
function stackSpecs(config: StackConfig, placement: PlacementPlan): DeclaredSpec[] {
    const { pis, tiers } = config;
    const placed = { placement, pis };
    const loadBalanced = tiers.loadBalancer !== undefined;
    return [
        ...pis.map((pi, i) => ({ spec: hostSpec(pi), declaredBy: configKey(["pis", i]) })),
        { spec: monitoringTierSpec(pis, tiers.monitoring, monitoringHome(placement, pis)), declaredBy: "picloud:tiers.monitoring" },
        ...Object.entries(tiers.apps ?? {}).map(([name, app]) => ({ spec: appMonitoringSpec(name, app, placed, loadBalanced), declaredBy: `picloud:tiers.apps.${name}.metrics` })),
        ...(tiers.loadBalancer ? [{ spec: loadBalancerSpec(tiers.loadBalancer, loadBalancerPis(placement, pis)), declaredBy: "picloud:tiers.loadBalancer.statsPort" }] : []),
        ...(tiers.functions ? [{ spec: functionsSpec(tiers.functions, faasdPi(placement, pis), loadBalanced), declaredBy: "picloud:tiers.functions.metricsPort" }] : []),
    ];
}

/** Every backend the load balancer fronts, with the config key behind it. */
function stackBackends(config: StackConfig, placement: PlacementPlan): DeclaredBackend[] {
    const { pis, tiers } = config;
    return [
        ...Object.entries(tiers.apps ?? {}).flatMap(([name, app]) =>
            app.hostPort === undefined ? [] : [{ backend: appBackend(name, app, { placement, pis }), declaredBy: `picloud:tiers.apps.${name}.hostPort` }],
        ),
        ...(tiers.functions ? [{ backend: functionsBackend(tiers.functions, faasdPi(placement, pis)), declaredBy: "picloud:tiers.functions.gatewayPort" }] : []),
    ];
}

/**
 * Every flow the stack needs:
 * - SSH from mgmt to every Pi (the operator, Pulumi, Docker over ssh://);
 * - Prometheus to every scrape target, from the monitoring specs (node_exporter and cAdvisor on
 *   every Pi, apps' metrics on their replicas' Pis, HAProxy's stats, the functions gateway's metrics);
 * - the admin UIs from mgmt: Grafana, Prometheus and Alertmanager on the monitoring Pi, which the
 *   Monitoring tier publishes for the operator, and the functions gateway (`faas-cli -g`);
 * - clients (anyone) to HTTP, and HTTPS with TLS, on the load-balancer Pis;
 * - the load-balancer Pis to every backend server (apps' host ports, the functions gateway);
 * - VRRP between the two load-balancer Pis when they share a virtual IP (unicast adverts);
 * - faasd's gateway, in its containers, to faasd-provider on the same Pi.
 */
export function cloudFlows(config: StackConfig, plan: PlacedWorkloads): Flow[] {
    const { pis, tiers } = config;
    const { placement } = plan;
    const mgmt = { zone: "mgmt" } as const;
    const prometheus = placedOn(placement, "prometheus", "picloud:tiers.monitoring")[0];
    const flows: Flow[] = pis.map((pi, i) => ({ from: mgmt, to: pi.name, protocol: "tcp", port: pi.sshPort, purpose: "ssh", declaredBy: configKey(["pis", i, "sshPort"]) }));

    flows.push(...scrapeFlows(stackSpecs(config, placement), prometheus, pis));
    const ui = (service: keyof typeof MONITORING_PORTS, what: string): Flow => ({
        from: mgmt,
        to: placedOn(placement, service, "picloud:tiers.monitoring")[0],
        protocol: "tcp",
        port: MONITORING_PORTS[service],
        purpose: `operator to ${what}`,
        declaredBy: "picloud:tiers.monitoring",
    });
    flows.push(ui("grafana", "Grafana"), ui("prometheus", "Prometheus UI"), ui("alertmanager", "Alertmanager UI"));

    const lb = tiers.loadBalancer;
    if (lb) {
        const lbPis = loadBalancerPis(placement, pis).map((p) => p.name);
        for (const to of lbPis) {
            flows.push({ from: "any", to, protocol: "tcp", port: 80, purpose: "clients (http)", declaredBy: "picloud:tiers.loadBalancer" });
            if (lb.tls) flows.push({ from: "any", to, protocol: "tcp", port: 443, purpose: "clients (https)", declaredBy: "picloud:tiers.loadBalancer.tls" });
        }
        flows.push(...backendFlows(stackBackends(config, placement), lbPis, pis));
        if (lb.virtualIp !== undefined && lbPis.length === 2) {
            const [a, b] = lbPis;
            for (const [from, to] of [[a, b], [b, a]]) {
                flows.push({ from: { pi: from }, to, protocol: "vrrp", purpose: `vrrp from ${from}`, declaredBy: "picloud:tiers.loadBalancer.virtualIp" });
            }
        }
    }

    const functions = tiers.functions;
    if (functions) {
        const faasd = faasdPi(placement, pis).name;
        flows.push(
            { from: mgmt, to: faasd, protocol: "tcp", port: functions.gatewayPort, purpose: "operator to the functions gateway", declaredBy: "picloud:tiers.functions.gatewayPort" },
            // The gateway container reaches faasd-provider at the openfaas0 bridge's address.
            { from: { pi: faasd }, to: faasd, protocol: "tcp", port: functions.providerPort, purpose: "faasd gateway to faasd-provider", declaredBy: "picloud:tiers.functions.providerPort" },
        );
    }
    return flows;
}

/**
 * The host ports Docker publishes on each Pi (host-network workloads have none: their ports are
 * the Pi's own). Connections to these are DNAT'd to a container in PREROUTING, so the firewall
 * filters them in `forward`.
 */
export function publishedPorts(plan: PlacedWorkloads): Map<string, PublishedPort[]> {
    const byPi = new Map<string, PublishedPort[]>();
    for (const w of plan.workloads) {
        if (w.hostNetwork) continue;
        const ports = (w.ports ?? []).flatMap((p) => (p.host === undefined ? [] : [{ protocol: p.protocol ?? "tcp", port: p.host }]));
        for (const pi of plan.placement.assignments.get(w.name) ?? []) {
            const list = byPi.get(pi) ?? [];
            for (const p of ports) if (!list.some((q) => q.protocol === p.protocol && q.port === p.port)) list.push(p);
            byPi.set(pi, list);
        }
    }
    for (const list of byPi.values()) list.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
    return byPi;
}

/**
 * The stack's network plan: its flows (plus the user's own), the operator's network and the
 * ports Docker publishes on each Pi. Checked: throws naming the flow or key that is wrong.
 */
export function planNetwork(config: StackConfig, plan: PlacedWorkloads, options: NetworkOptions = {}): NetworkPlan {
    const network: NetworkPlan = {
        pis: config.pis,
        mgmtNetwork: options.mgmtNetwork ?? config.network?.subnet ?? "any",
        flows: [...cloudFlows(config, plan), ...(options.extraFlows ?? [])],
        publishedPorts: publishedPorts(plan),
    };
    checkNetworkPlan(network);
    return network;
}
