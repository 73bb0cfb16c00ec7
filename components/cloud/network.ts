/**
 * Every flow a picloud stack needs, collected from the tiers' declarations ({@link TIERS}): what
 * they run, where, and how they are watched. Scrape flows come from the same monitoring specs the
 * tiers attach, and load-balancer flows from the same backends HAProxy is configured with, so the
 * firewall opens exactly what Prometheus and HAProxy will use.
 */
import { configKey } from "../config/errors";
import type { StackConfig } from "../config/schema";
import { Flow, NetworkPlan, checkNetworkPlan, publishedPorts } from "../network/flows";
import type { PlacementPlan } from "../placement/place";
import type { Workload } from "../runtime/workload";
import { PlacedStack, StackDeclarations, TIERS } from "../tiers/registry";

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

/** Every monitoring spec, load-balancer backend and registry name the stack's tiers declare. */
export function stackDeclarations(stack: PlacedStack): StackDeclarations {
    return {
        specs: TIERS.flatMap((tier) => tier.monitoringSpecs?.(stack) ?? []),
        backends: TIERS.flatMap((tier) => tier.backends?.(stack) ?? []),
        names: TIERS.flatMap((tier) => tier.dnsNames?.(stack) ?? []),
    };
}

/** Every flow the stack needs: SSH from mgmt to every Pi (the operator, Pulumi, Docker over ssh://), then each tier's. */
export function cloudFlows(config: StackConfig, plan: PlacedWorkloads): Flow[] {
    const stack = { config, placement: plan.placement };
    const declared = stackDeclarations(stack);
    const ssh: Flow[] = config.pis.map((pi, i) => ({ from: { zone: "mgmt" }, to: pi.name, protocol: "tcp", port: pi.sshPort, purpose: "ssh", declaredBy: configKey(["pis", i, "sshPort"]) }));
    return [...ssh, ...TIERS.flatMap((tier) => tier.flows?.(stack, declared) ?? [])];
}

/**
 * The stack's network plan: its flows (plus the user's own), the operator's network, the ports
 * Docker publishes on each Pi and the container bridges tiers add. Checked: throws naming the flow
 * or key that is wrong.
 */
export function planNetwork(config: StackConfig, plan: PlacedWorkloads, options: NetworkOptions = {}): NetworkPlan {
    const network: NetworkPlan = {
        pis: config.pis,
        mgmtNetwork: options.mgmtNetwork ?? config.network?.subnet ?? "any",
        flows: [...cloudFlows(config, plan), ...(options.extraFlows ?? [])],
        publishedPorts: publishedPorts(plan.workloads, plan.placement.assignments),
        containerBridges: TIERS.flatMap((tier) => tier.containerBridges?.(config) ?? []),
    };
    checkNetworkPlan(network);
    return network;
}
