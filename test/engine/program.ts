/**
 * The program the engine lane deploys: picloud's own components that need only the command
 * provider, on the test bed's hosts. A PiHost per Pi (bootstrap, hardening, firewall and its
 * confirmation), the Monitoring tier's config, folders, secrets and reloads on each monitoring Pi,
 * each host's monitoring attachment, and a component of the operator's own with its attachment.
 *
 * The Monitoring tier's containers are what this lane cannot run: there is no Docker engine and no
 * docker provider here (DESIGN.md §5), so its runtime registers none; the containers stay on the
 * mock runtime's tests. On each monitoring host a real Prometheus stands in for its container.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { planCloud } from "../../components/cloud/piCloud";
import type { PiConfig, StackConfig } from "../../components/config/schema";
import { parseStackConfig } from "../../components/config/schema";
import { PiHost } from "../../components/host/piHost";
import { scoped } from "../../components/host/renames";
import type { NetworkPlan } from "../../components/network/flows";
import { renderNftables } from "../../components/network/nftables";
import type { WorkloadRuntime } from "../../components/runtime/dockerRuntime";
import { Monitoring, attachHostMonitoring } from "../../components/tiers/monitoring/monitoring";
import { targetDownRule } from "../../components/monitoring/contract";
import { MonitoringEndpoint, attachMonitoring } from "../../components/monitoring/attachment";
import { MONITORING_PORTS, logShipping } from "../../components/tiers/monitoring/specs";

/** What one `pulumi up` of the lane deploys. */
export interface EngineSpec {
    readonly pis: readonly PiConfig[];
    /** The SSH key PiHost connects with (a secret in the program). */
    readonly privateKey: string;
    /** The Pis of the monitoring replicas (`picloud:tiers.monitoring.pis`). */
    readonly monitoringPis: readonly string[];
    readonly bootstrap: StackConfig["bootstrap"];
    /** Flows into each Pi; its firewall ruleset is rendered from them. */
    readonly network: NetworkPlan;
    /** The name of the operator's component's own alert: changing it changes that monitoring spec. */
    readonly probeAlert: string;
    /** The version of what the operator's component runs: a new one replaces it, its monitoring files unchanged. */
    readonly probeVersion?: string;
    /** A Pi whose host attachment is left out, for the policy pack to refuse. */
    readonly unmonitored?: string;
    readonly firewallRollbackSeconds: number;
    /** Grafana's admin password: given, not generated (@pulumi/random is a bridged provider this machine cannot build). */
    readonly grafanaAdminPassword: string;
    /**
     * Children named as PiCloud names them now (`picloud-<pi>`, `picloud-monitoring`), through the
     * same `scoped`; without it, as releases before that named them (`<pi>`, `monitoring`).
     */
    readonly scopedNames?: boolean;
    /**
     * Done means monitored, for the hosts' attachments and the probe's: each waits this long for
     * Prometheus to report its targets up. The Monitoring tier's own attachment never waits here
     * (its Alertmanager, Grafana and cAdvisor are containers this lane cannot run).
     */
    readonly confirmSeconds?: number;
    /** The Pi VictoriaLogs is on: every Pi's bootstrap then ships its journal there, as PiCloud's do. */
    readonly logsPi?: string;
    /**
     * VictoriaMetrics on this Pi, backed up on `onCalendar` into blob storage with the given key
     * (`picloud:tiers.monitoring.victoriaMetrics.backup`): its store's backup resources, as the blob
     * tier wires them. No container and no blob storage run: the hosts' docker stand-in takes the
     * backup's `docker run`.
     */
    readonly metricsBackup?: { readonly pi: string; readonly onCalendar: string; readonly keyId: string; readonly keySecret: string };
}

/** Registers no container: Docker resources are the mock runtime's business (see above). */
const noContainers: WorkloadRuntime = { deploy: () => [] };

/** A component of the operator's own, monitored through picloud's contract. */
class Probe extends pulumi.ComponentResource {
    constructor(name: string, alert: string, endpoint: MonitoringEndpoint, target: string, version: string) {
        super("picloud-engine:test:Probe", name);
        // What it runs, as a container would be: a new version replaces it (the engine's triggers).
        const service = new command.remote.Command(`${name}-service`, { connection: endpoint.replicas[0].connection, create: "true", triggers: [version] }, { parent: this });
        const job = { job: "engine-probe", targets: [target] };
        attachMonitoring(
            this,
            name,
            {
                component: "engine-probe",
                scrapeTargets: [job],
                alertRules: [
                    targetDownRule(job),
                    { alert, expr: 'rate(http_requests_total{job="engine-probe",code=~"5.."}[5m]) > 1', for: "5m", severity: "warning", summary: "The probe fails", description: "The engine lane's probe answers 5xx." },
                ],
                dashboard: { uid: "engine-probe", title: "engine / probe", panels: [{ title: "requests", expr: 'rate(http_requests_total{job="engine-probe"}[5m])' }] },
                logLabels: { tier: "engine" },
            },
            endpoint,
            [`${name}-service`],
            undefined,
            [service],
        );
        this.registerOutputs({});
    }
}

/** The inline program for `spec`: what `stacks/index.ts` would be, for these components. */
export function engineProgram(spec: EngineSpec): () => Promise<Record<string, unknown>> {
    return async () => {
        const config = parseStackConfig({
            values: {
                pis: spec.pis,
                bootstrap: spec.bootstrap,
                tiers: {
                    monitoring: {
                        pis: [...spec.monitoringPis],
                        confirmTimeoutSeconds: 0,
                        ...(spec.logsPi && { victoriaLogs: { pi: spec.logsPi, allowSdCard: true } }),
                        ...(spec.metricsBackup && { victoriaMetrics: { pi: spec.metricsBackup.pi, allowSdCard: true, memoryMb: 256 } }),
                    },
                },
            },
            secretKeys: ["sshPrivateKey"],
        });
        const privateKey = pulumi.secret(spec.privateKey);
        const plan = planCloud(config, { sshPrivateKey: privateKey });
        const logs = logShipping(plan.placement, config.pis, config.tiers.monitoring);
        // What PiCloud is to its hosts and tiers (the real one's Docker runtime cannot run here).
        const cloud = new pulumi.ComponentResource("picloud:cloud:PiCloud", "picloud");
        const child = (name: string) => (spec.scopedNames ? scoped("picloud", name, { parent: cloud }) : { name, opts: { parent: cloud } });
        const hosts = new Map(
            config.pis.map((pi) => {
                const { name, opts } = child(pi.name);
                const host = new PiHost(
                    name,
                    { pi, privateKey, bootstrap: config.bootstrap, firewall: renderNftables(pi.name, spec.network), firewallRollbackSeconds: spec.firewallRollbackSeconds, logShipping: logs },
                    opts,
                );
                return [pi.name, host];
            }),
        );
        const tier = child("monitoring");
        // The backup's own options: the config check that blob storage declares its bucket and key is the unit tests'.
        const backup = spec.metricsBackup && { bucket: "backups", key: "backups", onCalendar: spec.metricsBackup.onCalendar, maxAgeHours: 26 };
        const vm = config.tiers.monitoring.victoriaMetrics;
        const monitoring = new Monitoring(tier.name, {
            runtime: noContainers,
            placement: plan.placement,
            pis: config.pis,
            options: backup && vm ? { ...config.tiers.monitoring, victoriaMetrics: { ...vm, backup } } : config.tiers.monitoring,
            hosts,
            secrets: {},
            cloudName: "engine",
            grafanaAdminPassword: pulumi.secret(spec.grafanaAdminPassword),
        }, tier.opts);
        if (spec.metricsBackup) {
            const key = { env: { AWS_ENDPOINT_URL_S3: "http://s3.blob.engine.internal:3900", AWS_REGION: "garage" }, secretEnv: { AWS_ACCESS_KEY_ID: pulumi.secret(spec.metricsBackup.keyId), AWS_SECRET_ACCESS_KEY: pulumi.secret(spec.metricsBackup.keySecret) } };
            monitoring.backUpMetrics(key, [], true);
        }
        // The endpoint the tier hands out, confirming as a stack with confirmTimeoutSeconds set would.
        const endpoint = spec.confirmSeconds ? { ...monitoring.endpoint, confirm: { prometheusPort: MONITORING_PORTS.prometheus, timeoutSeconds: spec.confirmSeconds } } : monitoring.endpoint;
        for (const host of hosts.values()) {
            if (host.pi.name !== spec.unmonitored) attachHostMonitoring(host, endpoint, config.tiers.monitoring.victoriaLogs);
        }
        new Probe("probe", spec.probeAlert, endpoint, `${config.pis[0].address}:9797`, spec.probeVersion ?? "1");
        return { pis: Object.fromEntries(config.pis.map((pi) => [pi.name, pi.address])) };
    };
}
