import * as pulumi from "@pulumi/pulumi";
import { PicloudConfigError, SECRET_PLACEHOLDER } from "../../config/errors";
import type { LoadBalancerConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { remoteCommand, runRootScript, shipFile, shipSecret } from "../../host/remoteFiles";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../monitoring/specs";
import { TierArgs, TierComponent, hostOf } from "../tierComponent";
import {
    KEEPALIVED_SCRIPT_NAME,
    keepalivedRemoveCommand,
    renderHaproxyCheckScript,
    renderKeepalivedSetupScript,
    renderVrrpNotifyScript,
} from "./keepalived";
import { HaproxyTcpService, renderHaproxyConfig, renderKeepalivedConfig } from "./renderers";
import {
    CERTIFICATE_FILE,
    EdgeBackend,
    HAPROXY_WORKLOAD,
    LOAD_BALANCER_DIRS,
    haproxyInput,
    keepalivedInputs,
    loadBalancerPis,
    loadBalancerSpec,
    loadBalancerWorkload,
} from "./specs";
import { certificateBundleProblems } from "./tls";

/** Arguments of {@link LoadBalancer}. */
export interface LoadBalancerArgs extends TierArgs {
    /** Options under `picloud:tiers.loadBalancer`. */
    readonly options: LoadBalancerConfig;
    /** The backends and routes of the tiers behind it (apps' and functions' `edge`). */
    readonly backends: readonly EdgeBackend[];
    /** The TCP services of the tiers behind it (the database's primary and standbys); default none. */
    readonly tcpServices?: readonly HaproxyTcpService[];
    /** The hosts by Pi name: config files and keepalived go to the load-balancer Pis over SSH. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** `picloud:network.subnet`, which the virtual IP's prefix length comes from. */
    readonly subnet?: string;
    /** Secret config values by key (the TLS bundle, when `options.tls` names one). */
    readonly secrets: Readonly<Record<string, pulumi.Input<string>>>;
}

/**
 * The load balancer: HAProxy on one or two Pis (host networking, so it sees clients' addresses
 * and can serve the virtual IP), routing by host and path to the apps and the functions gateway
 * with active health checks, a per-client rate limit and TLS from a user-supplied bundle. With a
 * virtual IP, keepalived (a host package, configured over SSH) moves it by VRRP to whichever Pi's
 * HAProxy is healthy, and reports who holds it to Prometheus. Config changes reload HAProxy in
 * place (checked first, so a bad file never replaces a good one).
 */
export class LoadBalancer extends TierComponent {
    /** The rendered haproxy.cfg, identical on every load-balancer Pi. */
    readonly haproxyConfig: string;
    /** Where clients connect: the virtual IP, else the (only or first) load-balancer Pi. */
    readonly address: string;

    constructor(name: string, args: LoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:loadbalancer:LoadBalancer", name, opts);
        const { options } = args;
        const lbPis = loadBalancerPis(args.placement, args.pis);
        this.haproxyConfig = renderHaproxyConfig(haproxyInput(options, args.backends, args.tcpServices));
        this.address = options.virtualIp ?? lbPis[0].address;
        const keepalived = keepalivedInputs(options, lbPis, args.subnet);
        const certificate = options.tls && validatedBundle(options.tls.certificateSecret, args.secrets);

        const piHost = (pi: string) => hostOf(args.hosts, pi, "picloud:tiers.loadBalancer");
        const configFile = `${LOAD_BALANCER_DIRS.config}/haproxy.cfg`;
        const certificateFile = `${LOAD_BALANCER_DIRS.certs}/${CERTIFICATE_FILE}`;
        const delivered = new Map<string, pulumi.Resource[]>();
        for (const pi of lbPis) {
            const { connection, ready } = piHost(pi.name);
            const folders = remoteCommand(
                `${name}-${pi.name}-folders`,
                {
                    connection,
                    // The config folder belongs to the SSH user, who ships haproxy.cfg without sudo;
                    // certificates are root's alone (HAProxy reads them before dropping to uid 99).
                    create: `sudo -n install -d -o "$(id -u)" -g "$(id -g)" -m 0755 ${LOAD_BALANCER_DIRS.config} && sudo -n install -d -o root -g root -m 0700 ${LOAD_BALANCER_DIRS.certs}`,
                },
                { parent: this, dependsOn: [ready] },
            );
            const files: pulumi.Resource[] = [
                shipFile(`${name}-${pi.name}-haproxy-config`, { connection, text: this.haproxyConfig, remotePath: configFile }, { parent: this, dependsOn: [folders] }),
            ];
            if (certificate) {
                files.push(
                    shipSecret(
                        `${name}-${pi.name}-certificate`,
                        // Root's alone: HAProxy reads it as root, before dropping to uid 99.
                        { connection, secret: certificate, remotePath: certificateFile, owner: "root" },
                        { parent: this, dependsOn: [folders] },
                    ),
                );
            }
            delivered.set(pi.name, files);
        }

        this.runWorkloads([loadBalancerWorkload(options, args.pis)], args, [...delivered.values()].flat());

        for (const replica of this.replicas[HAPROXY_WORKLOAD]) {
            const { connection } = piHost(replica.pi);
            const container = `${HAPROXY_WORKLOAD}-${replica.replica}`;
            // A changed file reaches the running HAProxy by a seamless reload (master-worker mode:
            // USR2), only after the new file passes HAProxy's own check inside the container.
            remoteCommand(
                `${name}-${replica.pi}-reload`,
                {
                    connection,
                    create: `docker exec ${container} haproxy -c -q -f ${LOAD_BALANCER_DIRS.inContainer}/haproxy.cfg && docker kill --signal USR2 ${container} >/dev/null`,
                    rerunWhen: [this.haproxyConfig, ...(certificate ? [certificate] : [])],
                },
                { parent: this, dependsOn: [replica.resource, ...(delivered.get(replica.pi) ?? [])] },
            );
            const vrrp = keepalived.get(replica.pi);
            if (vrrp) {
                runRootScript(
                    `${name}-${replica.pi}-keepalived`,
                    {
                        connection,
                        scriptName: KEEPALIVED_SCRIPT_NAME,
                        script: renderKeepalivedSetupScript({
                            config: renderKeepalivedConfig(vrrp),
                            checkScript: renderHaproxyCheckScript(options.statsPort),
                            notifyScript: renderVrrpNotifyScript(NODE_EXPORTER_TEXTFILE_DIR),
                        }),
                        remove: keepalivedRemoveCommand(NODE_EXPORTER_TEXTFILE_DIR),
                    },
                    // After HAProxy, so the check passes as soon as keepalived starts.
                    { parent: this, dependsOn: [replica.resource] },
                );
            }
        }
        this.attach(loadBalancerSpec(options, lbPis), args.monitoring);
        this.registerOutputs({ address: this.address, virtualIp: options.virtualIp });
    }
}

/** The TLS bundle secret, checked before it goes anywhere: a bad one fails `pulumi preview` naming its key. */
function validatedBundle(secretKey: string, secrets: Readonly<Record<string, pulumi.Input<string>>>): pulumi.Output<string> {
    const value = secrets[secretKey];
    if (value === undefined) throw new Error(`picloud:${secretKey}: the TLS certificate secret named by picloud:tiers.loadBalancer.tls.certificateSecret was not provided`);
    return pulumi.secret(
        pulumi.output(value).apply((pem) => {
            if (pem === SECRET_PLACEHOLDER) return pem;
            const problems = certificateBundleProblems(pem);
            if (problems.length > 0) throw new PicloudConfigError(problems.map((message) => ({ key: `picloud:${secretKey}`, message })));
            return pem;
        }),
    );
}
