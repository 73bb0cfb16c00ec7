import * as pulumi from "@pulumi/pulumi";
import { ATTACHMENT_TYPE, MonitoringSpec, monitoringGaps } from "./contract";
import { dnsLabel } from "../config/fields";
import { ChildRecord } from "../host/childRecord";
import { Connection, remoteCommand, shipFile } from "../host/remoteFiles";
import { shellQuote } from "../renderers/shellSteps";
import { ConfirmSettings, renderConfirmScript } from "./confirm";
import { renderFileSd, renderGrafanaDashboard, renderRuleFile } from "./renderers";

/**
 * One Prometheus replica's Pi, as attachments reach it: each gets every attachment's files, reloads
 * and confirms on its own.
 */
export interface MonitoringReplica {
    /** The Pi's name: an attachment's resources for this replica are named after it ({@link replicaResourceName}). */
    readonly pi: string;
    /** The Pi's name before a rename (`renamedFrom`): resources named after it carry over. */
    readonly renamedFrom?: string;
    /** SSH connection to the Pi. */
    readonly connection: Connection;
    /** Resources that must exist before files are delivered (the tier's folders there). */
    readonly ready?: readonly pulumi.Resource[];
    /** The monitoring services a confirmation asks (its Prometheus's container): it waits for them, and runs again when one is replaced. */
    readonly running?: readonly pulumi.Resource[];
}

/**
 * Where attachments deliver their files: on every monitoring Pi ({@link replicas}), the folders
 * that Prometheus (file_sd, rules) and Grafana (dashboards) watch. A Monitoring tier in this stack
 * yields one; another stack builds one from that stack's `monitoring` output with
 * {@link monitoringEndpointFromOutput}.
 */
export interface MonitoringEndpoint {
    /** Every Prometheus replica's Pi, in replica order. */
    readonly replicas: readonly MonitoringReplica[];
    readonly fileSdDir: string;
    readonly rulesDir: string;
    readonly dashboardsDir: string;
    /** Shell command on a monitoring Pi that makes its Prometheus re-read its rule files ({@link prometheusReloadCommand}). */
    readonly reloadCommand: string;
    /**
     * Done means monitored: each Attachment then waits, after its reload, until every Prometheus
     * replica reports its targets up and its rules loaded ({@link renderConfirmScript}); absent, it does not wait.
     */
    readonly confirm?: ConfirmSettings;
}

/** How another stack reaches one monitoring Pi over SSH. */
export interface MonitoringReplicaOutput {
    /** The Pi's name, in the attaching stack's resource names (absent in outputs of releases with one monitoring Pi). */
    readonly pi?: string;
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly hostKey: string;
}

/**
 * What a Monitoring tier publishes as its stack output, for other stacks to attach to it. Data
 * only: the stack that attaches builds every command it runs from its own code. `host`, `port`,
 * `user` and `hostKey` are the first replica's, as releases with one monitoring Pi published them.
 */
export interface MonitoringEndpointOutput extends MonitoringReplicaOutput {
    /** Every monitoring Pi, in replica order; absent: only the one above. */
    readonly replicas?: readonly MonitoringReplicaOutput[];
    readonly fileSdDir: string;
    readonly rulesDir: string;
    readonly dashboardsDir: string;
    /** Prometheus's port on the monitoring Pis, for its reload. */
    readonly prometheusPort: number;
    /** How long an attachment waits for Prometheus to confirm it (`picloud:tiers.monitoring.confirmTimeoutSeconds`); 0 or absent: no wait. */
    readonly confirmTimeoutSeconds?: number;
}

/**
 * The command that makes a service on this Pi with a `/-/reload` endpoint (Prometheus,
 * Alertmanager) re-read its files, tolerant of one not started yet: it reads them when it starts.
 */
export function serviceReloadCommand(service: string, port: number): string {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${service}'s port must be a whole number from 1 to 65535, got ${JSON.stringify(port)}`);
    return `curl -fsS -X POST http://127.0.0.1:${port}/-/reload || { rc=$?; [ "$rc" -eq 7 ] && echo "${service} is not running yet; it loads its files when it starts"; [ "$rc" -eq 7 ]; }`;
}

/** {@link serviceReloadCommand} for Prometheus, which attachments reload after delivering their files. */
export function prometheusReloadCommand(port: number): string {
    return serviceReloadCommand("Prometheus", port);
}

const SAFE_DIR = /^\/[A-Za-z0-9._/-]+$/;
/** What a monitoring Pi is called in resource names when an output of a release with one monitoring Pi does not name it. */
const LEGACY_MONITORING_PI = "monitoring-pi";

/**
 * The name of a resource that acts on one monitoring replica's Pi: `${base}-${pi}`, so it never
 * moves to another Pi (whose copy a replacement's late delete would remove). Its aliases carry over
 * the name under the Pi's earlier name, and for the first replica (`first`) the bare `base` it had
 * when there was one monitoring Pi. Returns its name and options (under `parent`).
 */
export function replicaResourceName(base: string, replica: Pick<MonitoringReplica, "pi" | "renamedFrom">, first: boolean, parent: pulumi.Resource): [string, pulumi.CustomResourceOptions] {
    const aliases: pulumi.Alias[] = [];
    if (replica.renamedFrom !== undefined) aliases.push({ name: `${base}-${replica.renamedFrom}` });
    if (first) aliases.push({ name: base });
    return [`${base}-${replica.pi}`, { parent, aliases }];
}

/**
 * A {@link MonitoringEndpoint} from another stack's `monitoring` output
 * (`new pulumi.StackReference("org/picloud/prod").requireOutput("monitoring")`) plus the SSH key.
 * The output is checked field by field (folders must be plain absolute paths, the port a port), so
 * a changed or corrupted output cannot smuggle a command onto the monitoring Pi.
 */
export function monitoringEndpointFromOutput(output: MonitoringEndpointOutput, privateKey: pulumi.Input<string>): MonitoringEndpoint {
    for (const key of ["fileSdDir", "rulesDir", "dashboardsDir"] as const) {
        const dir = output[key];
        if (typeof dir !== "string" || !SAFE_DIR.test(dir) || dir.split("/").includes("..")) {
            throw new Error(`monitoring output ${key}: expected an absolute path of letters, digits, '.', '_', '-' and '/', got ${JSON.stringify(dir)}`);
        }
    }
    const wait = output.confirmTimeoutSeconds ?? 0;
    if (!Number.isInteger(wait) || wait < 0) throw new Error(`monitoring output confirmTimeoutSeconds: expected a whole number of seconds, got ${JSON.stringify(wait)}`);
    const replicas = output.replicas ?? [output];
    if (!Array.isArray(replicas) || replicas.length === 0) throw new Error(`monitoring output replicas: expected a list of monitoring Pis, got ${JSON.stringify(output.replicas)}`);
    const secretKey = pulumi.secret(privateKey);
    return {
        replicas: replicas.map((r, i) => {
            // A name becomes part of resource names: a Pi name, or none (the only replica of an older release).
            if (r.pi !== undefined && !dnsLabel("a Pi name").safeParse(r.pi).success) throw new Error(`monitoring output replicas[${i}].pi: expected a Pi name, got ${JSON.stringify(r.pi)}`);
            return { pi: r.pi ?? LEGACY_MONITORING_PI, connection: { host: r.host, port: r.port, user: r.user, hostKey: r.hostKey, privateKey: secretKey } };
        }),
        fileSdDir: output.fileSdDir,
        rulesDir: output.rulesDir,
        dashboardsDir: output.dashboardsDir,
        reloadCommand: prometheusReloadCommand(output.prometheusPort),
        ...(wait > 0 && { confirm: { prometheusPort: output.prometheusPort, timeoutSeconds: wait } }),
    };
}

/**
 * The {@link MonitoringEndpoint} of another picloud stack (`org/picloud/prod`), read from its
 * `monitoring` output as plain values (they become file paths and commands here, so they must be
 * known while the program runs), plus the SSH key. Await it in an async program.
 */
export async function monitoringEndpointFromStack(stack: string, privateKey: pulumi.Input<string>, opts?: pulumi.CustomResourceOptions): Promise<MonitoringEndpoint> {
    const details = await new pulumi.StackReference(stack, undefined, opts).getOutputDetails("monitoring");
    const output = (details.value ?? details.secretValue) as MonitoringEndpointOutput | undefined;
    if (output === undefined) throw new Error(`stack ${stack} has no "monitoring" output: is it a picloud stack, and has it been deployed (pulumi up)?`);
    return monitoringEndpointFromOutput(output, privateKey);
}

/** Arguments of an {@link Attachment}. */
export interface AttachmentArgs {
    /** What the component declares about how it is monitored. */
    readonly spec: MonitoringSpec;
    /** Where to deliver it; without one the declaration is recorded but not delivered (and the policy pack refuses the stack). */
    readonly endpoint?: MonitoringEndpoint;
    /**
     * Names of the resources the component runs that this monitoring covers: its containers, and
     * its commands that install a service on a Pi. The policy pack refuses a workload that the
     * nearest Attachment above it does not list.
     */
    readonly covers?: readonly string[];
    /** The spec's `component` before a rename: its files on the monitoring Pi are replaced by the new ones. */
    readonly renamedFrom?: string;
    /** What the component runs: a confirmation waits for it to exist before it asks Prometheus. */
    readonly after?: readonly pulumi.Resource[];
}

/** What an Attachment records as its own inputs, for the policy pack. */
export interface AttachmentDeclaration {
    /** Names of the resources it covers, sorted. */
    readonly covers: readonly string[];
    /** Whether it delivers its files to a monitoring endpoint. */
    readonly delivered: boolean;
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
export function attachmentFiles(spec: Pick<MonitoringSpec, "component">, endpoint: Pick<MonitoringEndpoint, "fileSdDir" | "rulesDir" | "dashboardsDir">) {
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
        // Plain values, known in preview: the policy pack reads what is covered and whether it is delivered.
        const declared: AttachmentDeclaration = { covers: [...(args.covers ?? [])].sort(), delivered: args.endpoint !== undefined };
        super(ATTACHMENT_TYPE, name, declared, opts);
        const gaps = monitoringGaps(args.spec);
        if (gaps.length) throw new Error(`monitoring of ${name} is incomplete:\n  - ${gaps.join("\n  - ")}`);
        this.spec = args.spec;

        const endpoint = args.endpoint;
        endpoint?.replicas.forEach((replica, i) => this.deliver(name, args, endpoint, replica, i === 0));
        // How long its update waits for Prometheus to confirm it (0: it does not), for the plan.
        const confirmWithinSeconds = args.endpoint?.confirm?.timeoutSeconds ?? 0;
        this.registerOutputs({ ...declared, coverage: monitoringCoverage(args.spec), confirmWithinSeconds });
    }

    /**
     * Delivers the files to one monitoring Pi, reloads its Prometheus and, with `confirm`, waits for
     * it. Each Pi's resources are named after it and never move to another Pi, so a replica that
     * moves, or a Pi that leaves, never has a delete undo what another Pi's copy just wrote. The
     * first replica's resources carry the names they had with one monitoring Pi, as aliases.
     */
    private deliver(name: string, args: AttachmentArgs, endpoint: MonitoringEndpoint, replica: MonitoringReplica, first: boolean): void {
        const named = (base: string) => replicaResourceName(base, replica, first, this);
        const files = attachmentFiles(args.spec, endpoint);
        const earlier = args.renamedFrom === undefined ? undefined : attachmentFiles({ component: args.renamedFrom }, endpoint);
        const contents: [keyof typeof files, string, string, string][] = [
            ["fileSd", "file-sd", files.fileSd, renderFileSd(args.spec)],
            ["rules", "rules", files.rules, renderRuleFile(args.spec)],
            ["dashboard", "dashboard", files.dashboard, renderGrafanaDashboard(args.spec.dashboard)],
        ];
        // A changed spec writes the files again in place and reloads; only removing the component
        // (or the Pi leaving the monitoring) removes them (its reload's delete runs first, then
        // reloads without them).
        const copies = contents.map(([file, kind, remotePath, text]) => {
            const [resourceName, opts] = named(`${name}-${kind}`);
            return shipFile(
                resourceName,
                { connection: replica.connection, text, remotePath, replaces: earlier ? [earlier[file]] : undefined },
                { ...opts, dependsOn: [...(replica.ready ?? [])] },
            );
        });
        const [reloadName, reloadOpts] = named(`${name}-reload`);
        const reload = remoteCommand(
            reloadName,
            {
                connection: replica.connection,
                create: endpoint.reloadCommand,
                delete: `rm -f ${[files.fileSd, files.rules, files.dashboard].map(shellQuote).join(" ")} && { ${endpoint.reloadCommand} || true; }`,
                rerunWhen: contents.map(([, , , text]) => text),
            },
            { ...reloadOpts, dependsOn: copies },
        );
        // Done means monitored: the update waits until this replica's Prometheus says so, again
        // whenever the files change, and whenever something it waits for is replaced (a new
        // container under unchanged files, a new Prometheus): a replaced resource has a new id.
        // Nothing to undo on removal: the reload's delete takes the files away.
        if (endpoint.confirm && endpoint.confirm.timeoutSeconds > 0) {
            const waitsFor = [...(replica.running ?? []), ...(args.after ?? [])];
            const ids = waitsFor.filter((r): r is pulumi.CustomResource => pulumi.CustomResource.isInstance(r)).map((r) => r.id);
            const [confirmName, confirmOpts] = named(`${name}-confirmed`);
            remoteCommand(
                confirmName,
                { connection: replica.connection, create: renderConfirmScript(args.spec, endpoint.confirm), rerunWhen: [...contents.map(([, , , text]) => text), ...ids] },
                { ...confirmOpts, dependsOn: [reload, ...waitsFor] },
            );
        }
    }
}

/**
 * Attaches monitoring to any component, picloud's or a user's own: a `picloud:monitoring:Attachment`
 * child that declares scrape targets, alerts, a dashboard and log labels, delivers them to the
 * Monitoring tier, and lists the resources it covers (`covers`, by name). The policy pack refuses a
 * workload that the nearest Attachment above it does not list, and an Attachment delivered nowhere.
 * A {@link MonitoredComponent} lists what it runs by itself.
 */
export function attachMonitoring(
    component: pulumi.ComponentResource,
    name: string,
    spec: MonitoringSpec,
    endpoint?: MonitoringEndpoint,
    covers: readonly string[] = [],
    renamedFrom?: string,
    after?: readonly pulumi.Resource[],
): Attachment {
    return new Attachment(`${name}-monitoring`, { spec, endpoint, covers, renamedFrom, after }, { parent: component });
}

/**
 * A component that knows what it runs: every custom resource created with it as parent is
 * recorded, and {@link attach}, called once everything is created, lists them all as covered by its
 * monitoring. Extend it for a component of your own; picloud's tiers do.
 */
export abstract class MonitoredComponent extends pulumi.ComponentResource {
    /** This component's monitoring, once attached. */
    monitoring?: Attachment;
    private readonly children: ChildRecord;

    constructor(type: string, protected readonly componentName: string, opts?: pulumi.ComponentResourceOptions) {
        const children = new ChildRecord();
        super(type, componentName, {}, children.options(opts));
        children.ownedBy(this);
        this.children = children;
    }

    /**
     * Attaches this component's monitoring, covering every resource it has created; call it after
     * creating them. `renamedFrom` is the spec's `component` before a rename. `later` names the
     * resources it creates only once a later tier exists (its backup, once blob storage does): its
     * monitoring, the spec here, covers them too.
     */
    protected attach(spec: MonitoringSpec, endpoint: MonitoringEndpoint | undefined, renamedFrom?: string, later: readonly string[] = []): Attachment {
        if (this.monitoring) throw new Error(`${this.componentName}: its monitoring is attached already`);
        this.monitoring = attachMonitoring(this, this.componentName, spec, endpoint, [...this.children.names, ...later], renamedFrom, this.children.resources);
        return this.monitoring;
    }

    /**
     * Registers the component's outputs, last in its constructor; refuses a component that has not
     * attached its monitoring by then. (The SDK's own later call, without outputs, is let through.)
     */
    protected registerOutputs(outputs?: pulumi.Inputs | Promise<pulumi.Inputs> | pulumi.Output<pulumi.Inputs>): void {
        if (outputs !== undefined && !this.monitoring) throw new Error(`${this.componentName}: attach its monitoring (this.attach) before registering its outputs: nothing is done until it is monitored`);
        super.registerOutputs(outputs);
    }
}
