import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { MonitoringConfig } from "../../config/tiers";
import type { PiHost } from "../../host/piHost";
import { shipFile, shipSecret } from "../../host/remoteFiles";
import type { MonitoringEndpoint, MonitoringEndpointOutput } from "../../monitoring/attachment";
import { renderAlertmanagerConfig, renderGrafanaDashboardProvider, renderGrafanaDatasources, renderPrometheusConfig } from "../../monitoring/renderers";
import { TierArgs, TierComponent } from "../tierComponent";
import { MONITORING_DIRS, MONITORING_PORTS, monitoringPi, monitoringTierSpec, monitoringWorkloads } from "./specs";

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
}

/** Prometheus's rule reload, tolerant of a Prometheus not started yet (it reads the rules when it starts). */
export const PROMETHEUS_RELOAD = `curl -fsS -X POST http://127.0.0.1:${MONITORING_PORTS.prometheus}/-/reload || { rc=$?; [ "$rc" -eq 7 ] && echo "Prometheus is not running yet; it loads the rules when it starts"; [ "$rc" -eq 7 ]; }`;

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

    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:monitoring:Monitoring", name, opts);
        const home = monitoringPi(args.pis, args.options);
        const host = args.hosts.get(home.name);
        if (!host) throw new Error(`picloud:tiers.monitoring.pi: no host for Pi "${home.name}"`);
        const connection = host.connection;

        const owned = [MONITORING_DIRS.fileSd, MONITORING_DIRS.rules, MONITORING_DIRS.alertmanagerConfig, `${MONITORING_DIRS.grafanaProvisioning}/datasources`, `${MONITORING_DIRS.grafanaProvisioning}/dashboards`, MONITORING_DIRS.dashboards];
        const folders = new command.remote.Command(
            `${name}-folders`,
            {
                connection,
                // Config folders belong to the SSH user (attachments write there without sudo); data
                // folders to the uid each image runs as.
                create: [
                    `sudo -n install -d -o "$(id -u)" -g "$(id -g)" -m 0755 ${owned.join(" ")}`,
                    `sudo -n install -d -o 65534 -g 65534 -m 0750 ${MONITORING_DIRS.prometheusData} ${MONITORING_DIRS.alertmanagerData}`,
                    `sudo -n install -d -o 472 -g 0 -m 0750 ${MONITORING_DIRS.grafanaData}`,
                ].join(" && "),
            },
            { parent: this, dependsOn: [host.ready] },
        );

        const email = args.options.alerting.email;
        const smtpPasswordFile = `${MONITORING_DIRS.alertmanagerConfig}/smtp_password`;
        const files: [string, string, string][] = [
            [
                "prometheus-config",
                `${MONITORING_DIRS.prometheusConfig}/prometheus.yml`,
                renderPrometheusConfig({
                    scrapeIntervalSeconds: args.options.scrapeIntervalSeconds,
                    evaluationIntervalSeconds: args.options.scrapeIntervalSeconds,
                    alertmanagers: [`alertmanager-0:${MONITORING_PORTS.alertmanager}`],
                    fileSdDir: "/etc/prometheus/picloud/file_sd",
                    rulesDir: "/etc/prometheus/picloud/rules",
                    externalLabels: { cloud: args.cloudName },
                    selfTarget: `localhost:${MONITORING_PORTS.prometheus}`,
                }),
            ],
            [
                "alertmanager-config",
                `${MONITORING_DIRS.alertmanagerConfig}/alertmanager.yml`,
                renderAlertmanagerConfig({
                    webhookUrls: args.options.alerting.webhookUrls,
                    email: email && {
                        to: email.to,
                        from: email.from,
                        smarthost: email.smarthost,
                        authUsername: email.username,
                        authPasswordFile: email.passwordSecret ? "/etc/alertmanager/picloud/smtp_password" : undefined,
                    },
                    deadMansSwitchUrl: args.options.alerting.deadMansSwitchUrl,
                }),
            ],
            ["grafana-datasources", `${MONITORING_DIRS.grafanaProvisioning}/datasources/picloud.yml`, renderGrafanaDatasources({ prometheusUrl: `http://prometheus-0:${MONITORING_PORTS.prometheus}` })],
            ["grafana-dashboards", `${MONITORING_DIRS.grafanaProvisioning}/dashboards/picloud.yml`, renderGrafanaDashboardProvider({ dashboardsDir: "/var/lib/grafana-dashboards" })],
        ];
        const configs: pulumi.Resource[] = files.map(([kind, remotePath, text]) => shipFile(`${name}-${kind}`, { connection, text, remotePath }, { parent: this, dependsOn: [folders] }));
        if (email?.passwordSecret) {
            const password = args.secrets[email.passwordSecret];
            if (password === undefined) throw new Error(`picloud:${email.passwordSecret}: the SMTP password secret was not provided`);
            configs.push(shipSecret(`${name}-smtp-password`, { connection, secret: password, remotePath: smtpPasswordFile }, { parent: this, dependsOn: [folders] }));
        }

        const adminPassword = new random.RandomPassword(`${name}-grafana-admin`, { length: 24, special: false }, { parent: this });
        this.grafanaAdminPassword = adminPassword.result;
        this.grafanaUrl = `http://${home.address}:${MONITORING_PORTS.grafana}`;

        this.endpoint = {
            connection,
            fileSdDir: MONITORING_DIRS.fileSd,
            rulesDir: MONITORING_DIRS.rules,
            dashboardsDir: MONITORING_DIRS.dashboards,
            reloadCommand: PROMETHEUS_RELOAD,
            ready: [folders],
        };
        this.endpointOutput = {
            host: home.address,
            port: home.sshPort,
            user: home.sshUser,
            hostKey: home.hostKey,
            fileSdDir: MONITORING_DIRS.fileSd,
            rulesDir: MONITORING_DIRS.rules,
            dashboardsDir: MONITORING_DIRS.dashboards,
            reloadCommand: PROMETHEUS_RELOAD,
        };

        const workloads = monitoringWorkloads(args.pis, args.options).map((w) =>
            w.name === "grafana" ? { ...w, secretEnv: { GF_SECURITY_ADMIN_PASSWORD: adminPassword.result } } : w,
        );
        this.runWorkloads(workloads, monitoringTierSpec(args.pis, args.options), { ...args, monitoring: this.endpoint }, configs);
        this.registerOutputs({ grafanaUrl: this.grafanaUrl });
    }
}
