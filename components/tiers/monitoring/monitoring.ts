import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { MonitoringConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { remoteCommand, shipFile, shipSecret } from "../../host/remoteFiles";
import { Attachment, MonitoringEndpoint, MonitoringEndpointOutput, attachMonitoring, prometheusReloadCommand, serviceReloadCommand } from "../../monitoring/attachment";
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
    alertmanagerConfigInput,
    hostSpec,
    longTermStore,
    monitoringHome,
    monitoringTierSpec,
    monitoringWorkloads,
    prometheusConfigInput,
    storeAddress,
} from "./specs";
import { TierStore } from "./tierStore";

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

/** Grafana reads its provisioning only when it starts; a restart of a container that is not there yet is nothing to do. */
const GRAFANA_RESTART = `if docker container inspect grafana-0 >/dev/null 2>&1; then docker restart grafana-0 >/dev/null; fi`;

/**
 * The Monitoring tier: Prometheus, Alertmanager and Grafana on the monitoring Pi, node_exporter
 * and cAdvisor on every Pi. Components attach to it through file_sd target files and rule files
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

    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:monitoring:Monitoring", name, opts);
        const home = monitoringHome(args.placement, args.pis);
        const host = hostOf(args.hosts, home.name, "picloud:tiers.monitoring.pi");
        const connection = host.connection;

        const owned = [MONITORING_DIRS.prometheusConfig, MONITORING_DIRS.fileSd, MONITORING_DIRS.rules, MONITORING_DIRS.alertmanagerConfig, `${MONITORING_DIRS.grafanaProvisioning}/datasources`, `${MONITORING_DIRS.grafanaProvisioning}/dashboards`, MONITORING_DIRS.dashboards];
        const { nobody, grafana } = MONITORING_UIDS;
        const folders = remoteCommand(
            `${name}-folders`,
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
            { parent: this, dependsOn: [host.ready] },
        );

        const email = args.options.alerting.email;
        const store = longTermStore(args.placement, args.pis, args.options);
        const logStore = storeAddress(args.placement, args.pis, LOG_STORE, args.options);
        const smtpPasswordFile = `${MONITORING_DIRS.alertmanagerConfig}/smtp_password`;
        const adminPassword = pulumi.secret(
            args.grafanaAdminPassword ?? new random.RandomPassword(`${name}-grafana-admin`, { length: 24, special: false }, { parent: this }).result,
        );
        const files: [string, string, string][] = [
            [
                "prometheus-config",
                `${MONITORING_DIRS.prometheusConfig}/prometheus.yml`,
                renderPrometheusConfig(prometheusConfigInput(args.options, args.cloudName, store)),
            ],
            ["alertmanager-config", `${MONITORING_DIRS.alertmanagerConfig}/alertmanager.yml`, renderAlertmanagerConfig(alertmanagerConfigInput(args.options))],
            [
                "grafana-datasources",
                `${MONITORING_DIRS.grafanaProvisioning}/datasources/picloud.yml`,
                renderGrafanaDatasources({
                    prometheusUrl: `http://prometheus-0:${MONITORING_PORTS.prometheus}`,
                    victoriaMetricsUrl: store && `http://${store}`,
                    victoriaLogsUrl: logStore && `http://${logStore}`,
                }),
            ],
            ["grafana-dashboards", `${MONITORING_DIRS.grafanaProvisioning}/dashboards/picloud.yml`, renderGrafanaDashboardProvider({ dashboardsDir: "/var/lib/grafana-dashboards" })],
        ];
        const configs: pulumi.Resource[] = files.map(([kind, remotePath, text]) => shipFile(`${name}-${kind}`, { connection, text, remotePath }, { parent: this, dependsOn: [folders] }));
        // What a changed file must reach: Prometheus and Alertmanager reload, Grafana restarts.
        const reloads: pulumi.Input<string>[] = files.filter(([kind]) => !kind.startsWith("grafana")).map(([, , text]) => text);
        if (email?.passwordSecret) {
            const password = args.secrets[email.passwordSecret];
            if (password === undefined) throw new Error(`picloud:${email.passwordSecret}: the SMTP password secret was not provided`);
            // Alertmanager runs as nobody and reads the file itself; nobody else can.
            configs.push(
                shipSecret(`${name}-smtp-password`, { connection, secret: password, remotePath: smtpPasswordFile, owner: { uid: nobody, gid: nobody }, mode: "0400" }, { parent: this, dependsOn: [folders] }),
            );
            reloads.push(password);
        }
        // Grafana takes its admin password from a file (GF_SECURITY_ADMIN_PASSWORD__FILE), not its environment.
        configs.push(
            shipSecret(`${name}-grafana-admin-password`, { connection, secret: adminPassword, remotePath: GRAFANA_ADMIN_PASSWORD_FILE.onPi, owner: { uid: grafana, gid: 0 }, mode: "0400" }, { parent: this, dependsOn: [folders] }),
        );
        this.grafanaAdminPassword = adminPassword;
        this.grafanaUrl = `http://${home.address}:${MONITORING_PORTS.grafana}`;

        // Each store is a component of its own, with its own monitoring; the rest run here.
        const storeNames = new Set(MONITORING_STORES.map((s) => s.kind.workload));
        const workloads = monitoringWorkloads(args.pis, args.options, home.name);
        this.runWorkloads(workloads.filter((w) => !storeNames.has(w.name)), args, configs);

        // Where attachments deliver, and how long each waits for Prometheus to confirm it.
        const confirmSeconds = args.options.confirmTimeoutSeconds;
        this.endpoint = {
            connection,
            fileSdDir: MONITORING_DIRS.fileSd,
            rulesDir: MONITORING_DIRS.rules,
            dashboardsDir: MONITORING_DIRS.dashboards,
            reloadCommand: PROMETHEUS_RELOAD,
            ready: [folders],
            ...(confirmSeconds > 0 && { confirm: { prometheusPort: MONITORING_PORTS.prometheus, timeoutSeconds: confirmSeconds } }),
            running: this.replicas.prometheus?.map((r) => r.resource) ?? [],
        };
        this.endpointOutput = {
            host: home.address,
            port: home.sshPort,
            user: home.sshUser,
            hostKey: home.hostKey,
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
            stores[s.kind.workload] = new TierStore(s.kind.type, `${name}-${s.kind.workload}`, { ...args, workload, port: s.port(args.options)!, spec, monitoring: this.endpoint }, { parent: this });
        }
        this.stores = stores;

        // The tier's own config reaches the running services: changed files, then a reload (or
        // Grafana's restart), as an Update of these commands; on the first up they find nothing to do.
        const running = ["prometheus", "alertmanager", "grafana"].flatMap((w) => (this.replicas[w] ?? []).map((r) => r.resource));
        remoteCommand(
            `${name}-reload`,
            { connection, create: `${PROMETHEUS_RELOAD} && ${ALERTMANAGER_RELOAD}`, rerunWhen: reloads },
            { parent: this, dependsOn: [...configs, ...running] },
        );
        remoteCommand(
            `${name}-grafana-restart`,
            { connection, create: GRAFANA_RESTART, rerunWhen: files.filter(([kind]) => kind.startsWith("grafana")).map(([, , text]) => text) },
            { parent: this, dependsOn: [...configs, ...running] },
        );
        this.attach(monitoringTierSpec(args.pis, args.options, home), this.endpoint);
        this.registerOutputs({ grafanaUrl: this.grafanaUrl });
    }
}
