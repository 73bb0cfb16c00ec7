import type * as pulumi from "@pulumi/pulumi";
import type { AppConfig } from "../../config/tiers";
import type { Workload } from "../../runtime/workload";
import { TierArgs, TierComponent } from "../tierComponent";

/** Arguments of {@link AppServers}. */
export interface AppServersArgs extends TierArgs {
    /** The app's options, as under `picloud:tiers.apps.<name>`. */
    readonly app: AppConfig;
    /** Values of the secrets the app's secretEnv names, by config key. */
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * The workload of one app: its image with N replicas spread over distinct Pis, env and secret env,
 * healthcheck, limits and metrics endpoint.
 */
export function appWorkload(name: string, app: AppConfig, secrets: Readonly<Record<string, pulumi.Input<string>>>): Workload {
    const secretEnv: Record<string, pulumi.Input<string>> = {};
    for (const [variable, key] of Object.entries(app.secretEnv)) {
        const value = secrets[key];
        if (value === undefined) throw new Error(`picloud:tiers.apps.${name}.secretEnv.${variable}: secret picloud:${key} was not provided`);
        secretEnv[variable] = value;
    }
    return {
        name: `app-${name}`,
        component: "apps",
        configKey: `picloud:tiers.apps.${name}`,
        image: app.image,
        replicas: app.replicas,
        spread: app.spread,
        memoryMb: app.memoryMb,
        cpus: app.cpus,
        ports: [{ container: app.port, host: app.hostPort }],
        env: app.env,
        secretEnv,
        healthcheck: app.healthcheck,
        placement: app.placement,
        metrics: app.metrics,
        logLabels: { tier: "apps", app: name },
    };
}

/** Application servers: one user app, its replicas spread over the Pis. */
export class AppServers extends TierComponent {
    /** The workload this component runs. */
    readonly workload: Workload;

    constructor(name: string, args: AppServersArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:apps:AppServers", name, opts);
        this.workload = appWorkload(name, args.app, args.secrets);
        this.runWorkloads([this.workload], args);
        this.registerOutputs({});
    }
}
