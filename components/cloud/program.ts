import type * as pulumi from "@pulumi/pulumi";
import type { MonitoringEndpointOutput } from "../monitoring/attachment";
import { Functions } from "../tiers/functions/functionsTier";
import { FAASD_DEFAULT_ADMIN_USER } from "../tiers/functions/renderers";
import { LoadBalancer } from "../tiers/loadBalancer/loadBalancer";
import { PiCloud } from "./piCloud";
import { loadStackConfig, secretValues } from "./stackConfig";

/** The outputs of a picloud stack (`pulumi stack output`). */
export interface PicloudStackOutputs {
    /** Pi name → address. */
    readonly pis: Record<string, string>;
    /** Pi name → the workload replicas placed on it, with memory and CPU used against the budget. */
    readonly placement: Record<string, { memoryUsedMb: number; memoryBudgetMb: number; cpusUsed: number; cpuBudget: number; replicas: string[] }>;
    /** Pi name → tiers that would lose every replica if that Pi died. */
    readonly singlePiLoss: Record<string, string[]>;
    /** Where another stack's components attach their monitoring (see `monitoringEndpointFromOutput`). */
    readonly monitoring: MonitoringEndpointOutput;
    /** Grafana's URL and admin password (a secret: `pulumi stack output --show-secrets`). */
    readonly grafana: { url: string; adminPassword: pulumi.Output<string> };
    /** Where clients connect (the virtual IP, else the load-balancer Pi), when the stack has a load balancer. */
    readonly loadBalancer?: { address: string };
    /** The faasd gateway and its admin login (the password a secret), when the stack has functions. */
    readonly functions?: { gatewayUrl: string; adminUser: string; adminPassword: pulumi.Output<string> };
}

/**
 * The picloud program: reads and validates the stack's config (nothing is registered when it is
 * invalid), plans placement and capacity, then builds the {@link PiCloud}. `stacks/index.ts` runs
 * it under the Pulumi engine; the offline plan runs it under the SDK's mock runtime.
 */
export function picloudProgram(): PicloudStackOutputs {
    const config = loadStackConfig();
    // Placement and capacity are checked in the constructor, before anything is registered.
    const cloud = new PiCloud("picloud", { config, secrets: secretValues(config) });
    const { placement, singlePiLoss } = cloud.plan;
    const loadBalancer = cloud.components.find((c): c is LoadBalancer => c instanceof LoadBalancer);
    const functions = cloud.components.find((c): c is Functions => c instanceof Functions);
    return {
        pis: Object.fromEntries(config.pis.map((pi) => [pi.name, pi.address])),
        placement: Object.fromEntries(
            placement.pis.map((u) => [
                u.pi,
                {
                    memoryUsedMb: u.memoryUsedMb,
                    memoryBudgetMb: u.memoryBudgetMb,
                    cpusUsed: u.cpusUsed,
                    cpuBudget: u.cpuBudget,
                    replicas: u.replicas.map((r) => `${r.workload}-${r.replica}`),
                },
            ]),
        ),
        singlePiLoss: Object.fromEntries(singlePiLoss.map((i) => [i.pi, [...i.lostComponents]])),
        monitoring: cloud.monitoring.endpointOutput,
        grafana: { url: cloud.monitoring.grafanaUrl, adminPassword: cloud.monitoring.grafanaAdminPassword },
        ...(loadBalancer ? { loadBalancer: { address: loadBalancer.address } } : {}),
        ...(functions ? { functions: { gatewayUrl: functions.gatewayUrl, adminUser: FAASD_DEFAULT_ADMIN_USER, adminPassword: functions.adminPassword } } : {}),
    };
}
