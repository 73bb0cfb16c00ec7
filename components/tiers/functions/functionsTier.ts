import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { FunctionsConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { runRootScript } from "../../host/remoteFiles";
import type { EdgeBackend } from "../loadBalancer/specs";
import { TierArgs, TierComponent, hostOf } from "../tierComponent";
import { functionDeleteCommand, functionDeployCommand } from "./functions";
import { FAASD_DEFAULT_ADMIN_USER, FAASD_PATHS, renderFaasdInstallScript } from "./renderers";
import { faasdInput, faasdPi, functionSpecs, functionsBackend, functionsSpec } from "./specs";

/** Arguments of {@link Functions}. */
export interface FunctionsArgs extends TierArgs {
    /** Options under `picloud:tiers.functions`. */
    readonly options: FunctionsConfig;
    /** The hosts by Pi name: faasd is installed on its Pi over SSH. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** True when a LoadBalancer fronts the gateway (its golden signals then come from HAProxy too). */
    readonly loadBalanced?: boolean;
}

/** Stops faasd where it ran; its files stay, so a later install finds them. */
const FAASD_STOP = "{ sudo -n systemctl disable --now faasd faasd-provider 2>/dev/null || true; }";

/** The heredoc that feeds a rendered script to `sudo -n bash` in a single remote command. */
function asRootCommand(script: string): string {
    if (script.includes("\nPICLOUD_SCRIPT\n")) throw new Error("a rendered script must not contain the heredoc terminator line PICLOUD_SCRIPT");
    return `sudo -n bash -s <<'PICLOUD_SCRIPT'\n${script}\nPICLOUD_SCRIPT`;
}

/**
 * The functions (lambda) tier: faasd (OpenFaaS CE on containerd, beside Docker's) installed over
 * SSH at pinned versions on the Pi placement chose, its gateway's admin password generated and
 * fed on stdin, each function declared in config deployed through the gateway's API (created,
 * replaced when its spec changes, deleted with it), the gateway reached through the load balancer
 * and its metrics scraped.
 */
export class Functions extends TierComponent {
    /** The gateway's backend and routes for a LoadBalancer. */
    readonly edge: EdgeBackend;
    /** The gateway's URL on its Pi (`faas-cli login -g <url> -u admin`). */
    readonly gatewayUrl: string;
    /** The gateway's admin password (a secret). */
    readonly adminPassword: pulumi.Output<string>;

    constructor(name: string, args: FunctionsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:functions:Functions", name, opts);
        const { options } = args;
        const pi = faasdPi(args.placement, args.pis);
        const host = hostOf(args.hosts, pi.name, "picloud:tiers.functions");
        this.edge = functionsBackend(options, pi);
        this.gatewayUrl = `http://${pi.address}:${options.gatewayPort}`;

        const password = new random.RandomPassword(`${name}-gateway-admin`, { length: 24, special: false }, { parent: this });
        this.adminPassword = password.result;

        const install = runRootScript(
            `${name}-faasd`,
            {
                connection: host.connection,
                script: renderFaasdInstallScript(faasdInput(options)),
                scriptName: FAASD_PATHS.installScriptName,
                stdin: pulumi.secret(password.result),
                remove: FAASD_STOP,
                // A new password is written and faasd restarted; only its hash is in the command.
                rerunWhen: [password.result],
            },
            { parent: this, dependsOn: [host.ready] },
        );

        for (const fn of functionSpecs(options)) {
            runRootScript(
                `${name}-${fn.name}`,
                {
                    connection: host.connection,
                    script: functionDeployCommand(fn, options.gatewayPort),
                    scriptName: `function-${fn.name}.sh`,
                    remove: asRootCommand(functionDeleteCommand(fn, options.gatewayPort)),
                },
                { parent: this, dependsOn: [install.run] },
            );
        }
        this.attach(functionsSpec(options, pi, args.loadBalanced ?? false), args.monitoring);
        this.registerOutputs({ gatewayUrl: this.gatewayUrl, adminUser: FAASD_DEFAULT_ADMIN_USER });
    }
}
