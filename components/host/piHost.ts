import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { PiConfig, StackConfig } from "../config/schema";
import { contentHash } from "../renderers/contentHash";
import { runRootScript } from "./remoteFiles";
import { renderFail2banJail, renderSshAuditPolicy, renderSshdHardening, renderSysctlHardening } from "../renderers/hardening";
import { DOCKER_READY_LINE, HostHardening, renderBootstrapScript, renderHostCheckScript, renderReadinessScript } from "../renderers/hostScripts";

/** Arguments of a {@link PiHost}. */
export interface PiHostArgs {
    /** The Pi as validated by the stack config (plain data: scripts are rendered from it). */
    readonly pi: PiConfig;
    /** The SSH private key, a Pulumi secret. */
    readonly privateKey: pulumi.Input<string>;
    /** Bootstrap options (timezone, NTP, journal size); defaults as in the stack config. */
    readonly bootstrap: StackConfig["bootstrap"];
    /** A known_hosts file holding this Pi's host key, for Docker's ssh:// transport. */
    readonly knownHostsFile: string;
    /** Private key file for Docker's ssh:// transport; default: the operator's ssh-agent. */
    readonly identityFile?: string;
    /** This Pi's nftables ruleset, from the stack's network plan; without one the firewall step is skipped. */
    readonly firewall?: string;
}

/** The hardening the bootstrap applies to a Pi: sshd, the ssh-audit policy, sysctls, fail2ban, its firewall. */
export function hostHardening(pi: PiConfig, bootstrap: StackConfig["bootstrap"], firewall?: string): HostHardening {
    return {
        sshd: renderSshdHardening({ sshUser: pi.sshUser, port: pi.sshPort, pinnedHostKey: pi.hostKey }),
        sshAuditPolicy: renderSshAuditPolicy(),
        sysctl: renderSysctlHardening(),
        fail2banJail: renderFail2banJail({ ignoreIps: bootstrap.fail2banIgnore, sshPort: pi.sshPort }),
        firewall,
    };
}

/** The remote path the bootstrap script is copied to before it runs. */
export const BOOTSTRAP_REMOTE_PATH = "/tmp/picloud-bootstrap.sh";

/**
 * One Raspberry Pi reached over SSH with a pinned host key: waits until it has booted, ships and
 * runs the idempotent bootstrap (again whenever the script changes), waits out any reboot the
 * bootstrap asked for, checks the result, and yields a Docker provider over ssh:// for the
 * workloads placed on it.
 */
export class PiHost extends pulumi.ComponentResource {
    /** The Pi's validated config. */
    readonly pi: PiConfig;
    /** SSH connection used by every command on this Pi. */
    readonly connection: command.types.input.remote.ConnectionArgs;
    /** The host check, run after the bootstrap; other commands on this Pi depend on it. */
    readonly ready: command.remote.Command;
    /** Docker Engine on this Pi, over ssh://. Its host is only known once the Pi is bootstrapped. */
    readonly dockerProvider: docker.Provider;
    /** The bootstrap script as shipped, for the offline plan and for review. */
    readonly bootstrapScript: string;
    /** SHA-256 of the bootstrap script; a change re-runs the bootstrap. */
    readonly bootstrapHash: string;

    constructor(name: string, args: PiHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:host:PiHost", name, {}, opts);
        const { pi } = args;
        this.pi = pi;
        this.connection = {
            host: pi.address,
            port: pi.sshPort,
            user: pi.sshUser,
            privateKey: pulumi.secret(args.privateKey),
            hostKey: pi.hostKey,
            // A Pi that is still booting refuses connections for a while; keep dialling ~5 minutes.
            dialErrorLimit: 30,
            perDialTimeout: 10,
        };

        const booted = new command.remote.Command(
            `${name}-booted`,
            { connection: this.connection, create: renderReadinessScript() },
            { parent: this },
        );

        this.bootstrapScript = renderBootstrapScript({
            hostname: pi.name,
            model: pi.model,
            storage: pi.storage,
            sshUser: pi.sshUser,
            timezone: args.bootstrap.timezone,
            ntpServers: args.bootstrap.ntpServers,
            journalRuntimeMaxMb: args.bootstrap.journalRuntimeMaxMb,
            hardening: hostHardening(pi, args.bootstrap, args.firewall),
        });
        this.bootstrapHash = contentHash(this.bootstrapScript);

        const { run: bootstrap } = runRootScript(
            `${name}-bootstrap`,
            { connection: this.connection, script: this.bootstrapScript, remotePath: BOOTSTRAP_REMOTE_PATH },
            { parent: this, dependsOn: [booted] },
        );

        // The bootstrap may have rebooted the Pi (memory cgroup, Pi 5 page size) and stopped sshd
        // until then, so this check only connects once the Pi is back; it re-runs with the bootstrap.
        this.ready = new command.remote.Command(
            `${name}-ready`,
            {
                connection: { ...this.connection, dialErrorLimit: 60 },
                create: renderHostCheckScript(),
                triggers: [bootstrap.stdout],
            },
            { parent: this, dependsOn: [bootstrap] },
        );

        this.dockerProvider = new docker.Provider(
            `${name}-docker`,
            {
                host: this.ready.stdout.apply((out) => dockerHostFromCheck(out, pi)),
                sshOpts: dockerSshOptions(args.knownHostsFile, args.identityFile),
            },
            { parent: this },
        );

        // The firewall is shipped inside the bootstrap; as an output it can be reviewed on its own.
        this.registerOutputs({ bootstrapHash: this.bootstrapHash, firewall: args.firewall });
    }
}

/**
 * The Docker host URL, given only once the host check has said Docker is ready, so that a Pi not
 * yet bootstrapped leaves the provider unconfigured in a preview instead of failing it.
 */
export function dockerHostFromCheck(checkOutput: string | undefined, pi: PiConfig): string | undefined {
    const lines = (checkOutput ?? "").trim().split("\n");
    if (lines[lines.length - 1] !== DOCKER_READY_LINE) return undefined;
    return `ssh://${pi.sshUser}@${pi.address}:${pi.sshPort}`;
}

/** ssh options for Docker's ssh:// transport: the pinned host key, never a prompt. */
export function dockerSshOptions(knownHostsFile: string, identityFile?: string): string[] {
    const opts = ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHostsFile}`, "-o", "BatchMode=yes"];
    return identityFile ? [...opts, "-o", "IdentitiesOnly=yes", "-i", identityFile] : opts;
}
