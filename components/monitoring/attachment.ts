import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ATTACHMENT_TYPE, MonitoringSpec, monitoringGaps } from "./contract";
import { shipFile } from "../host/remoteFiles";
import { contentHash } from "../renderers/contentHash";
import { renderFileSd, renderGrafanaDashboard, renderRuleFile } from "./renderers";

/**
 * Where attachments deliver their files: the monitoring Pi's folders that Prometheus (file_sd,
 * rules) and Grafana (dashboards) watch, and how to reach them. A Monitoring tier in this stack
 * yields one; another stack builds one from that stack's `monitoring` output with
 * {@link monitoringEndpointFromOutput}.
 */
export interface MonitoringEndpoint {
    /** SSH connection to the monitoring Pi. */
    readonly connection: command.types.input.remote.ConnectionArgs;
    readonly fileSdDir: string;
    readonly rulesDir: string;
    readonly dashboardsDir: string;
    /** Shell command on the monitoring Pi that makes Prometheus re-read its rule files. */
    readonly reloadCommand: string;
    /** Resources that must exist before files are delivered (the tier's folders). */
    readonly ready?: readonly pulumi.Resource[];
}

/** What a Monitoring tier publishes as its stack output, for other stacks to attach to it. */
export interface MonitoringEndpointOutput {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly hostKey: string;
    readonly fileSdDir: string;
    readonly rulesDir: string;
    readonly dashboardsDir: string;
    readonly reloadCommand: string;
}

/**
 * A {@link MonitoringEndpoint} from another stack's `monitoring` output
 * (`new pulumi.StackReference("org/picloud/prod").requireOutput("monitoring")`) plus the SSH key.
 */
export function monitoringEndpointFromOutput(output: MonitoringEndpointOutput, privateKey: pulumi.Input<string>): MonitoringEndpoint {
    return {
        connection: { host: output.host, port: output.port, user: output.user, hostKey: output.hostKey, privateKey: pulumi.secret(privateKey) },
        fileSdDir: output.fileSdDir,
        rulesDir: output.rulesDir,
        dashboardsDir: output.dashboardsDir,
        reloadCommand: output.reloadCommand,
    };
}

/** Arguments of an {@link Attachment}. */
export interface AttachmentArgs {
    /** What the component declares about how it is monitored. */
    readonly spec: MonitoringSpec;
    /** Where to deliver it; without one the declaration is recorded but not delivered. */
    readonly endpoint?: MonitoringEndpoint;
}

/** A one-line-per-component summary of a spec, for the plan's coverage table and the stack's state. */
export interface MonitoringCoverage {
    readonly component: string;
    readonly jobs: readonly string[];
    readonly targets: number;
    readonly alerts: readonly string[];
    readonly dashboard: string;
    readonly logLabels: Readonly<Record<string, string>>;
}

/** Summarises a spec: jobs, target count, alert names, dashboard title, log labels. */
export function monitoringCoverage(spec: MonitoringSpec): MonitoringCoverage {
    return {
        component: spec.component,
        jobs: spec.scrapeTargets.map((t) => t.job),
        targets: spec.scrapeTargets.reduce((n, t) => n + t.targets.length, 0),
        alerts: spec.alertRules.map((r) => r.alert),
        dashboard: spec.dashboard.title,
        logLabels: spec.logLabels,
    };
}

/** Remote file names of a component's monitoring files. */
export function attachmentFiles(spec: MonitoringSpec, endpoint: Pick<MonitoringEndpoint, "fileSdDir" | "rulesDir" | "dashboardsDir">) {
    return {
        fileSd: `${endpoint.fileSdDir}/${spec.component}.json`,
        rules: `${endpoint.rulesDir}/${spec.component}.yml`,
        dashboard: `${endpoint.dashboardsDir}/${spec.component}.json`,
    };
}

/**
 * The monitoring of one component, as its child (`picloud:monitoring:Attachment`): scrape targets,
 * alert rules, a dashboard and log labels. It delivers them to the Monitoring tier as a file_sd
 * target file, a rule file and a dashboard, then reloads Prometheus; removing the component
 * removes its files again. An incomplete spec (no target-down alert, no golden signal …) is an
 * error naming the component.
 */
export class Attachment extends pulumi.ComponentResource {
    /** The declaration, for the offline plan's coverage table and for review. */
    readonly spec: MonitoringSpec;

    constructor(name: string, args: AttachmentArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ATTACHMENT_TYPE, name, {}, opts);
        const gaps = monitoringGaps(args.spec);
        if (gaps.length) throw new Error(`monitoring of ${name} is incomplete:\n  - ${gaps.join("\n  - ")}`);
        this.spec = args.spec;

        const endpoint = args.endpoint;
        if (endpoint) {
            const files = attachmentFiles(args.spec, endpoint);
            const contents: [string, string, string][] = [
                ["file-sd", files.fileSd, renderFileSd(args.spec)],
                ["rules", files.rules, renderRuleFile(args.spec)],
                ["dashboard", files.dashboard, renderGrafanaDashboard(args.spec.dashboard)],
            ];
            const copies = contents.map(([kind, remotePath, text]) =>
                shipFile(`${name}-${kind}`, { connection: endpoint.connection, text, remotePath }, { parent: this, dependsOn: [...(endpoint.ready ?? [])] }),
            );
            new command.remote.Command(
                `${name}-reload`,
                {
                    connection: endpoint.connection,
                    create: endpoint.reloadCommand,
                    delete: `rm -f ${[files.fileSd, files.rules, files.dashboard].join(" ")} && { ${endpoint.reloadCommand} || true; }`,
                    triggers: contents.map(([, , text]) => contentHash(text)),
                },
                { parent: this, dependsOn: copies },
            );
        }
        this.registerOutputs({ coverage: monitoringCoverage(args.spec), delivered: endpoint !== undefined });
    }
}
