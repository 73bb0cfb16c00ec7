import type * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import type { MonitoringEndpointOutput } from "../monitoring/attachment";
import { PlacementLock, describeChanges, parsePlacementLock, sameLock } from "../placement/lock";
import { Functions } from "../tiers/functions/functionsTier";
import { FAASD_DEFAULT_ADMIN_USER } from "../tiers/functions/renderers";
import { LoadBalancer } from "../tiers/loadBalancer/loadBalancer";
import { PiCloud, PlacementInput } from "./piCloud";
import { loadStackConfig, secretValues } from "./stackConfig";

/** The outputs of a picloud stack (`pulumi stack output`). */
export interface PicloudStackOutputs {
    /** Pi name → address. */
    readonly pis: Record<string, string>;
    /** Pi name → the workload replicas placed on it, with memory and CPU used against the budget. */
    readonly placement: Record<string, { memoryUsedMb: number; memoryBudgetMb: number; cpusUsed: number; cpuBudget: number; replicas: string[] }>;
    /** Pi name → tiers that would lose every replica if that Pi died, and quorum groups that would stop taking writes (`quorum <name>`). */
    readonly singlePiLoss: Record<string, string[]>;
    /** Each data tier's workload → its members (`<workload>-<n> <pi> (<storage>)`), the members its writes need (a quorum), and how many it may lose. */
    readonly dataTiers: Record<string, { component: string; members: string[]; quorum?: number; mayLose: number }>;
    /** Where another stack's components attach their monitoring (see `monitoringEndpointFromOutput`). */
    readonly monitoring: MonitoringEndpointOutput;
    /** Grafana's URL and admin password (a secret: `pulumi stack output --show-secrets`). */
    readonly grafana: { url: string; adminPassword: pulumi.Output<string> };
    /** Where clients connect (the virtual IP, else the load-balancer Pi), when the stack has a load balancer. */
    readonly loadBalancer?: { address: string };
    /** The faasd gateway and its admin login (the password a secret), when the stack has functions. */
    readonly functions?: { gatewayUrl: string; adminUser: string; adminPassword: pulumi.Output<string> };
}

/** How {@link picloudProgram} finds where the stack's replicas run. */
export type ProgramPlacement =
    /** Under the engine: the committed lock file; `pulumi up` refuses to run without it or while it is out of date. */
    | { readonly lockFile: string; readonly planCommand: string }
    /** Under the offline plan: the lock as read (or none yet) and any rebalance; the plan writes the result. */
    | PlacementInput;

/** The stack's placement lock at `file`, or undefined when there is none yet. */
export function readPlacementLock(file: string): PlacementLock | undefined {
    if (!fs.existsSync(file)) return undefined;
    return parsePlacementLock(fs.readFileSync(file, "utf8"), file);
}

/**
 * The picloud program: reads and validates the stack's config (nothing is registered when it is
 * invalid), places the workloads from the stack's placement lock and checks capacity, then builds
 * the {@link PiCloud}. `stacks/index.ts` runs it under the Pulumi engine with the lock file, and
 * refuses a lock that is missing or that this config would change: the offline plan lists every
 * move first and writes the lock. The plan runs the same program on the SDK's mock runtime.
 */
export function picloudProgram(placement: ProgramPlacement): { outputs: PicloudStackOutputs; cloud: PiCloud } {
    const config = loadStackConfig();
    const locked = "lockFile" in placement;
    const lock = locked ? readPlacementLock(placement.lockFile) : placement.lock;
    if (locked && lock === undefined) {
        throw new Error(`${placement.lockFile}: expected the stack's placement lock, got no file; run \`${placement.planCommand}\`, review the placement it prints and commit the lock it writes`);
    }
    // Placement and capacity are checked in the constructor, before anything is registered.
    const cloud = new PiCloud("picloud", { config, secrets: secretValues(config), placement: locked ? { lock } : placement });
    if (locked && !sameLock(cloud.plan.lock, lock!)) {
        throw new Error(
            `${placement.lockFile}: the placement lock is out of date; this config would change it:\n  ${describeChanges(cloud.plan.changes).join("\n  ")}\n` +
                `run \`${placement.planCommand}\`, review these changes and commit the lock it writes (pulumi up never moves a replica the plan has not listed)`,
        );
    }
    return { outputs: stackOutputs(cloud), cloud };
}

function stackOutputs(cloud: PiCloud): PicloudStackOutputs {
    const config = cloud.config;
    const { placement, singlePiLoss, dataTiers } = cloud.plan;
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
        singlePiLoss: Object.fromEntries(singlePiLoss.map((i) => [i.pi, [...i.lostComponents, ...i.lostQuorums.map((q) => `quorum ${q}`)]])),
        dataTiers: Object.fromEntries(
            dataTiers.map((t) => [
                t.workload,
                { component: t.component, members: t.members.map((m, i) => `${t.workload}-${i} ${m.pi} (${m.storage})`), ...(t.quorum === undefined ? {} : { quorum: t.quorum }), mayLose: t.mayLose },
            ]),
        ),
        monitoring: cloud.monitoring.endpointOutput,
        grafana: { url: cloud.monitoring.grafanaUrl, adminPassword: cloud.monitoring.grafanaAdminPassword },
        ...(loadBalancer ? { loadBalancer: { address: loadBalancer.address } } : {}),
        ...(functions ? { functions: { gatewayUrl: functions.gatewayUrl, adminUser: FAASD_DEFAULT_ADMIN_USER, adminPassword: functions.adminPassword } } : {}),
    };
}
