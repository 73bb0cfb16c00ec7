import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { MonitoringConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { remoteCommand, shipFile, shipSecret } from "../../host/remoteFiles";
import { Attachment, MonitoringEndpoint, MonitoringEndpointOutput, attachMonitoring, prometheusReloadCommand, replicaResourceName, serviceReloadCommand } from "../../monitoring/attachment";
import type { PiConfig } from "../../config/schema";
import { renderAlertmanagerConfig, renderGrafanaDashboardProvider, renderGrafanaDatasources, renderPrometheusConfig } from "../../monitoring/renderers";
import { TierArgs, TierComponent, hostOf } from "../tierComponent";
import type { VictoriaLogsConfig } from "./config";
import {
    GRAFANA_ADMIN_PASSWORD_FILE,
    LOG_STORE,
    MONITORING_DIRS,
    MONITORING_PORTS,
    MONITORING_STORES,
    MONITORING_UIDS,
    METRICS_STORE,
    alertmanagerConfigInput,
    hostSpec,
    longTermStore,
    monitoringHomes,
    monitoringTierSpec,
    monitoringWorkloads,
    prometheusConfigInput,
    storeAddress,
} from "./specs";
import { TierStore } from "./tierStore";
import { backUpVictoriaMetrics, victoriaMetricsBackupCovers } from "./storeBackup";
import { VICTORIA_METRICS, VICTORIA_METRICS_WORKLOAD } from "./victoriaMetrics";
import type { BlobEnvironment } from "../blob/garage";

/** Arguments of {@link Monitoring}. */
export interface MonitoringArgs extends Omit<TierArgs, "monitoring"> {
    /** Options under `picloud:tiers.monitoring`. */
    readonly options: MonitoringConfig;
    /** The hosts by Pi name; the monitoring Pi's connection delivers the config files. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** Secret config values by key (the SMTP password, when email alerting has one). */
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
    /** The stack name, as Prometheus's `cloud` external label. */
    readonly cloudName: string;
    /** Grafana's admin password, a secret; default one generated with `@pulumi/random`. */
    readonly grafanaAdminPassword?: pulumi.Input<string>;
}

/**
 * Attaches a Pi's own monitoring (node_exporter: {@link hostSpec}; with a log store, its uploads)
 * to its {@link PiHost}, covering every command the host runs; a renamed Pi's files on the
 * monitoring Pi replace its old ones.
 */
export function attachHostMonitoring(host: PiHost, endpoint: MonitoringEndpoint | undefined, logs?: VictoriaLogsConfig): Attachment {
    const was = host.pi.renamedFrom === undefined ? undefined : hostSpec({ ...host.pi, name: host.pi.renamedFrom }).component;
    // Its confirmation waits for the Pi to be ready: until its firewall lets Prometheus in, node_exporter cannot be scraped.
    return attachMonitoring(host, host.resourceName, hostSpec(host.pi, logs), endpoint, host.runs, was, [host.ready]);
}

/** Prometheus's reload on the monitoring Pi, tolerant of a Prometheus not started yet (it reads its files when it starts). */
export const PROMETHEUS_RELOAD = prometheusReloadCommand(MONITORING_PORTS.prometheus);

/** Alertmanager's reload, equally tolerant. */
const ALERTMANAGER_RELOAD = serviceReloadCommand("Alertmanager", MONITORING_PORTS.alertmanager);

/** Grafana (replica `replica`) reads its provisioning only when it starts; a restart of a container that is not there yet is nothing to do. */
const grafanaRestart = (replica: number) => `if docker container inspect grafana-${replica} >/dev/null 2>&1; then docker restart grafana-${replica} >/dev/null; fi`;

/**
 * The Monitoring tier: Prometheus, Alertmanager (a cluster) and Grafana on each monitoring Pi,
 * node_exporter and cAdvisor on every Pi. Components attach to it through file_sd target files and rule files
 * in folders it owns ({@link endpoint}); it monitors itself, with a dead man's switch.
 */
export class Monitoring extends TierComponent {
    /** Where attachments deliver their files. */
    readonly endpoint: MonitoringEndpoint;
    /** The same, as a stack output other stacks can attach through. */
    readonly endpointOutput: MonitoringEndpointOutput;
    /** Grafana's admin password (a secret). */
    readonly grafanaAdminPassword: pulumi.Output<string>;
    /** Grafana's URL. */
    readonly grafanaUrl: string;
    /** The stores the config asks for (VictoriaMetrics, VictoriaLogs), by workload name. */
    readonly stores: Readonly<Record<string, TierStore>>;
    private readonly metricsBackup?: (key: BlobEnvironment, after: readonly pulumi.Resource[], viaRegistry: boolean) => void;

    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:monitoring:Monitoring", name, opts);
        const homes = monitoringHomes(args.placement, args.pis);
        const email = args.options.alerting.email;
        const store = longTermStore(args.placement, args.pis, args.options);
        const logStore = storeAddress(args.placement, args.pis, LOG_STORE, args.options);
        const adminPassword = pulumi.secret(
            args.grafanaAdminPassword ?? new random.RandomPassword(`${name}-grafana-admin`, { length: 24, special: false }, { parent: this }).result,
        );
        const smtpPassword = email?.passwordSecret === undefined ? undefined : args.secrets[email.passwordSecret];
        if (email?.passwordSecret && smtpPassword === undefined) throw new Error(`picloud:${email.passwordSecret}: the SMTP password secret was not provided`);
        this.grafanaAdminPassword = adminPassword;
        this.grafanaUrl = `http://${homes[0].address}:${MONITORING_PORTS.grafana}`;

        // Each store is a component of its own, with its own monitoring; the rest run here, a replica of each on each monitoring Pi.
        const storeNames = new Set(MONITORING_STORES.map((s) => s.kind.workload));
        const workloads = monitoringWorkloads(args.pis, args.options, homes.map((h) => h.name));
        // Every monitoring Pi's folders and config files, before the containers that mount them.
        const shared: SharedConfig = {
            prometheusConfig: renderPrometheusConfig(prometheusConfigInput(args.options, args.cloudName, homes, store)),
            adminPassword,
            smtpPassword,
            victoriaMetricsUrl: store && `http://${store}`,
            victoriaLogsUrl: logStore && `http://${logStore}`,
        };
        const onPis = homes.map((home, i) => this.configure(name, args, home, i === 0, shared));
        this.runWorkloads(workloads.filter((w) => !storeNames.has(w.name)), args, onPis.flatMap((p) => p.configs));

        // Where attachments deliver (every monitoring Pi), and how long each waits for Prometheus to confirm it.
        const confirmSeconds = args.options.confirmTimeoutSeconds;
        const runningOn = (pi: string, workload: string) => (this.replicas[workload] ?? []).filter((r) => r.pi === pi).map((r) => r.resource);
        this.endpoint = {
            replicas: onPis.map((p) => ({ pi: p.home.name, renamedFrom: p.home.renamedFrom, connection: p.host.connection, ready: [p.folders], running: runningOn(p.home.name, "prometheus") })),
            fileSdDir: MONITORING_DIRS.fileSd,
            rulesDir: MONITORING_DIRS.rules,
            dashboardsDir: MONITORING_DIRS.dashboards,
            reloadCommand: PROMETHEUS_RELOAD,
            ...(confirmSeconds > 0 && { confirm: { prometheusPort: MONITORING_PORTS.prometheus, timeoutSeconds: confirmSeconds } }),
        };
        const ssh = (home: PiConfig) => ({ pi: home.name, host: home.address, port: home.sshPort, user: home.sshUser, hostKey: home.hostKey });
        this.endpointOutput = {
            ...ssh(homes[0]),
            replicas: homes.map(ssh),
            fileSdDir: MONITORING_DIRS.fileSd,
            rulesDir: MONITORING_DIRS.rules,
            dashboardsDir: MONITORING_DIRS.dashboards,
            prometheusPort: MONITORING_PORTS.prometheus,
            confirmTimeoutSeconds: confirmSeconds,
        };

        const stores: Record<string, TierStore> = {};
        for (const s of MONITORING_STORES) {
            const workload = s.workload(args.options);
            if (!workload) continue;
            const spec = (address: string) => s.spec(args.options, address)!;
            const later = s === METRICS_STORE && args.options.victoriaMetrics?.backup ? victoriaMetricsBackupCovers : undefined;
            stores[s.kind.workload] = new TierStore(s.kind.type, `${name}-${s.kind.workload}`, { ...args, workload, port: s.port(args.options)!, spec, monitoring: this.endpoint, later }, { parent: this });
        }
        this.stores = stores;
        const metrics = stores[VICTORIA_METRICS_WORKLOAD];
        const backup = args.options.victoriaMetrics?.backup;
        if (metrics && backup) {
            const host = hostOf(args.hosts, metrics.self.pi, `${VICTORIA_METRICS.key}.backup`);
            const httpPort = args.options.victoriaMetrics!.httpPort;
            this.metricsBackup = (key, after, viaRegistry) => backUpVictoriaMetrics(metrics, { host, backup, key, cloudName: args.cloudName, httpPort, viaRegistry, after });
        }

        // The tier's own config reaches the running services on each Pi: changed files, then a
        // reload (or Grafana's restart), as an Update of these commands; on the first up they find nothing to do.
        onPis.forEach((p, i) => {
            const running = ["prometheus", "alertmanager", "grafana"].flatMap((w) => runningOn(p.home.name, w));
            const [reloadName, reloadOpts] = onPi(this, `${name}-reload`, p.home, i === 0);
            remoteCommand(
                reloadName,
                { connection: p.host.connection, create: `${PROMETHEUS_RELOAD} && ${ALERTMANAGER_RELOAD}`, rerunWhen: p.reloads },
                { ...reloadOpts, dependsOn: [...p.configs, ...running] },
            );
            const grafana = this.replicas.grafana?.find((r) => r.pi === p.home.name)?.replica ?? 0;
            const [restartName, restartOpts] = onPi(this, `${name}-grafana-restart`, p.home, i === 0);
            remoteCommand(
                restartName,
                { connection: p.host.connection, create: grafanaRestart(grafana), rerunWhen: p.grafanaFiles },
                { ...restartOpts, dependsOn: [...p.configs, ...running] },
            );
        });
        this.attach(monitoringTierSpec(args.pis, args.options, homes), this.endpoint);
        this.registerOutputs({ grafanaUrl: this.grafanaUrl });
    }

    /**
     * Backs up VictoriaMetrics into blob storage with `key`, as `picloud:tiers.monitoring.victoriaMetrics.backup`
     * asks, once blob storage (`after`) exists: it is composed after this tier. `viaRegistry`: the
     * key's endpoint is a name in the service registry's zone, which the tools resolve through the
     * Pi's own CoreDNS. Nothing when the config asks for no backup.
     */
    backUpMetrics(key: BlobEnvironment, after: readonly pulumi.Resource[], viaRegistry: boolean): void {
        this.metricsBackup?.(key, after, viaRegistry);
    }

    /**
     * One monitoring Pi's folders, config files and secrets (`first`: the first replica's, whose
     * resources keep the names they had with one monitoring Pi as aliases). What a changed file
     * must reach: Prometheus and Alertmanager reload (`reloads`), Grafana restarts (`grafanaFiles`).
     */
    private configure(name: string, args: MonitoringArgs, home: PiConfig, first: boolean, shared: SharedConfig) {
        const host = hostOf(args.hosts, home.name, "picloud:tiers.monitoring.pis");
        const connection = host.connection;
        const named = (base: string) => onPi(this, base, home, first);
        const owned = [MONITORING_DIRS.prometheusConfig, MONITORING_DIRS.fileSd, MONITORING_DIRS.rules, MONITORING_DIRS.alertmanagerConfig, `${MONITORING_DIRS.grafanaProvisioning}/datasources`, `${MONITORING_DIRS.grafanaProvisioning}/dashboards`, MONITORING_DIRS.dashboards];
        const { nobody, grafana } = MONITORING_UIDS;
        const [foldersName, foldersOpts] = named(`${name}-folders`);
        const folders = remoteCommand(
            foldersName,
            {
                connection,
                // Config folders belong to the SSH user (attachments write there without sudo); data
                // folders and secrets to the uid each image runs as.
                create: [
                    `sudo -n install -d -o "$(id -u)" -g "$(id -g)" -m 0755 ${owned.join(" ")}`,
                    `sudo -n install -d -o ${nobody} -g ${nobody} -m 0750 ${MONITORING_DIRS.prometheusData} ${MONITORING_DIRS.alertmanagerData}`,
                    `sudo -n install -d -o ${grafana} -g 0 -m 0750 ${MONITORING_DIRS.grafanaData}`,
                    `sudo -n install -d -o root -g root -m 0755 ${MONITORING_DIRS.secrets}`,
                ].join(" && "),
            },
            { ...foldersOpts, dependsOn: [host.ready] },
        );
        // Its Grafana reads the Prometheus beside it: with either Pi gone, the other's Grafana still has its own.
        const prometheus = args.placement.assignments.get("prometheus")?.indexOf(home.name) ?? 0;
        const files: [string, string, string][] = [
            ["prometheus-config", `${MONITORING_DIRS.prometheusConfig}/prometheus.yml`, shared.prometheusConfig],
            ["alertmanager-config", `${MONITORING_DIRS.alertmanagerConfig}/alertmanager.yml`, renderAlertmanagerConfig(alertmanagerConfigInput(args.options))],
            [
                "grafana-datasources",
                `${MONITORING_DIRS.grafanaProvisioning}/datasources/picloud.yml`,
                renderGrafanaDatasources({ prometheusUrl: `http://prometheus-${prometheus}:${MONITORING_PORTS.prometheus}`, victoriaMetricsUrl: shared.victoriaMetricsUrl, victoriaLogsUrl: shared.victoriaLogsUrl }),
            ],
            ["grafana-dashboards", `${MONITORING_DIRS.grafanaProvisioning}/dashboards/picloud.yml`, renderGrafanaDashboardProvider({ dashboardsDir: "/var/lib/grafana-dashboards" })],
        ];
        const configs: pulumi.Resource[] = files.map(([kind, remotePath, text]) => {
            const [fileName, fileOpts] = named(`${name}-${kind}`);
            return shipFile(fileName, { connection, text, remotePath }, { ...fileOpts, dependsOn: [folders] });
        });
        const reloads: pulumi.Input<string>[] = files.filter(([kind]) => !kind.startsWith("grafana")).map(([, , text]) => text);
        if (shared.smtpPassword !== undefined) {
            // Alertmanager runs as nobody and reads the file itself; nobody else can.
            const [smtpName, smtpOpts] = named(`${name}-smtp-password`);
            configs.push(
                shipSecret(
                    smtpName,
                    { connection, secret: shared.smtpPassword, remotePath: `${MONITORING_DIRS.alertmanagerConfig}/smtp_password`, owner: { uid: nobody, gid: nobody }, mode: "0400" },
                    { ...smtpOpts, dependsOn: [folders] },
                ),
            );
            reloads.push(shared.smtpPassword);
        }
        // Grafana takes its admin password from a file (GF_SECURITY_ADMIN_PASSWORD__FILE), not its environment.
        const [adminName, adminOpts] = named(`${name}-grafana-admin-password`);
        configs.push(
            shipSecret(adminName, { connection, secret: shared.adminPassword, remotePath: GRAFANA_ADMIN_PASSWORD_FILE.onPi, owner: { uid: grafana, gid: 0 }, mode: "0400" }, { ...adminOpts, dependsOn: [folders] }),
        );
        return { home, host, folders, configs, reloads, grafanaFiles: files.filter(([kind]) => kind.startsWith("grafana")).map(([, , text]) => text) };
    }
}

/** The name and options of the tier's resource `base` on monitoring Pi `home` ({@link replicaResourceName}). */
const onPi = (parent: pulumi.Resource, base: string, home: PiConfig, first: boolean) => replicaResourceName(base, { pi: home.name, renamedFrom: home.renamedFrom }, first, parent);

/** What every monitoring Pi gets alike: prometheus.yml, the secrets, the stores' URLs for Grafana. */
interface SharedConfig {
    readonly prometheusConfig: string;
    readonly adminPassword: pulumi.Input<string>;
    readonly smtpPassword?: pulumi.Input<string>;
    readonly victoriaMetricsUrl?: string;
    readonly victoriaLogsUrl?: string;
}
