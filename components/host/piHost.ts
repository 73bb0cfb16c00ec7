import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { PiConfig, StackConfig } from "../config/schema";
import { contentHash } from "../renderers/contentHash";
import { Connection, remoteCommand, runRootScript } from "./remoteFiles";
import { ChildRecord } from "./childRecord";
import { componentRenames, renamedOptions } from "./renames";
import { renderFail2banJail, renderSshAuditPolicy, renderSshdHardening, renderSysctlHardening } from "../renderers/hardening";
import {
    FIREWALL_REMOVE_COMMAND,
    HostHardening,
    LogShipping,
    renderBootstrapScript,
    renderFirewallConfirmScript,
    renderFirewallScript,
    renderHostCheckScript,
    renderReadinessScript,
} from "../renderers/hostScripts";

/** Arguments of a {@link PiHost}. */
export interface PiHostArgs {
    /** The Pi as validated by the stack config (plain data: scripts are rendered from it). */
    readonly pi: PiConfig;
    /** The SSH private key, a Pulumi secret. */
    readonly privateKey: pulumi.Input<string>;
    /** Bootstrap options (timezone, NTP, journal size); defaults as in the stack config. */
    readonly bootstrap: StackConfig["bootstrap"];
    /** This Pi's nftables ruleset, from the stack's network plan; without one the Pi gets no firewall. */
    readonly firewall?: string;
    /**
     * Seconds a changed firewall stays loaded without its confirmation before it is rolled back;
     * default 300. Shorter only in tests, which wait the window out.
     */
    readonly firewallRollbackSeconds?: number;
    /** Where the Pi's journal goes (VictoriaLogs); without it, it stays on the Pi. */
    readonly logShipping?: LogShipping;
}

/** The hardening the bootstrap applies to a Pi: sshd, the ssh-audit policy, sysctls, fail2ban. */
export function hostHardening(pi: PiConfig, bootstrap: StackConfig["bootstrap"]): HostHardening {
    return {
        sshd: renderSshdHardening({ sshUser: pi.sshUser, port: pi.sshPort, pinnedHostKey: pi.hostKey }),
        sshAuditPolicy: renderSshAuditPolicy(),
        sysctl: renderSysctlHardening(),
        fail2banJail: renderFail2banJail({ ignoreIps: bootstrap.fail2banIgnore, sshPort: pi.sshPort }),
    };
}

/** The bootstrap a Pi gets: its hostname and hardware, the stack's bootstrap options, its hardening, where its journal goes. */
export function renderPiBootstrap(pi: PiConfig, bootstrap: StackConfig["bootstrap"], logShipping?: LogShipping): string {
    return renderBootstrapScript({
        hostname: pi.name,
        model: pi.model,
        storage: pi.storage,
        sshUser: pi.sshUser,
        timezone: bootstrap.timezone,
        ntpServers: bootstrap.ntpServers,
        journalRuntimeMaxMb: bootstrap.journalRuntimeMaxMb,
        hardening: hostHardening(pi, bootstrap),
        logShipping,
    });
}

/** The SSH connection picloud's commands use for a Pi: its pinned host key, and patience with a Pi still booting. */
export function piConnection(pi: PiConfig, privateKey: pulumi.Input<string>): Connection {
    return {
        host: pi.address,
        port: pi.sshPort,
        user: pi.sshUser,
        privateKey: pulumi.secret(privateKey),
        hostKey: pi.hostKey,
        // A Pi that is still booting refuses connections for a while; keep dialling ~5 minutes.
        dialErrorLimit: 30,
        perDialTimeout: 10,
    };
}

/**
 * One Raspberry Pi reached over SSH with a pinned host key: waits until it has booted, ships and
 * runs the idempotent bootstrap (again whenever the script changes), waits out any reboot the
 * bootstrap asked for and checks the result, then loads the Pi's firewall and confirms it over a
 * new SSH connection. Everything after {@link ready} may use the Pi.
 */
export class PiHost extends pulumi.ComponentResource {
    /** The Pi's validated config. */
    readonly pi: PiConfig;
    /** SSH connection used by every command on this Pi. */
    readonly connection: Connection;
    /** The last step: the firewall's confirmation, or the host check on a Pi without a firewall. */
    readonly ready: command.remote.Command;
    /** The bootstrap script as shipped, for the offline plan and for review. */
    readonly bootstrapScript: string;
    /** SHA-256 of the bootstrap script; a change re-runs the bootstrap. */
    readonly bootstrapHash: string;
    /** The firewall script as shipped, when the Pi has a firewall. */
    readonly firewallScript?: string;
    /** Names of the commands it runs on the Pi (services among them: Docker, fail2ban, the firewall), for its monitoring to cover. */
    readonly runs: readonly string[];

    /** Its resource name: what its children's names start with (the Pi's name, scoped by its parent's). */
    readonly resourceName: string;

    constructor(name: string, args: PiHostArgs, opts?: pulumi.ComponentResourceOptions) {
        // Renamed (`renamedFrom`): everything it made under its old name carries over.
        const children = new ChildRecord();
        super("picloud:host:PiHost", name, {}, children.options(renamedOptions(componentRenames(name, args.pi.name, args.pi.renamedFrom), opts)));
        children.ownedBy(this);
        const { pi } = args;
        this.pi = pi;
        this.resourceName = name;
        this.connection = piConnection(pi, args.privateKey);

        const booted = remoteCommand(`${name}-booted`, { connection: this.connection, create: renderReadinessScript() }, { parent: this });

        this.bootstrapScript = renderPiBootstrap(pi, args.bootstrap, args.logShipping);
        this.bootstrapHash = contentHash(this.bootstrapScript);

        const { run: bootstrap } = runRootScript(
            `${name}-bootstrap`,
            { connection: this.connection, script: this.bootstrapScript, scriptName: "bootstrap.sh" },
            { parent: this, dependsOn: [booted] },
        );

        // The bootstrap may have rebooted the Pi (memory cgroup, Pi 5 page size) and stopped sshd
        // until then, so this check only connects once the Pi is back; it runs with every bootstrap.
        const checked = remoteCommand(
            `${name}-ready`,
            { connection: { ...this.connection, dialErrorLimit: 60 }, create: renderHostCheckScript(), rerunWhen: [this.bootstrapHash] },
            { parent: this, dependsOn: [bootstrap] },
        );
        this.ready = checked;

        if (args.firewall !== undefined) {
            this.firewallScript = renderFirewallScript({ ruleset: args.firewall, rollbackSeconds: args.firewallRollbackSeconds });
            const { run: firewall } = runRootScript(
                `${name}-firewall`,
                { connection: this.connection, script: this.firewallScript, scriptName: "firewall.sh", remove: FIREWALL_REMOVE_COMMAND },
                { parent: this, dependsOn: [checked] },
            );
            // A command of its own, over a connection of its own, after every change of the
            // ruleset: that it gets in proves the new ruleset lets the operator in.
            this.ready = remoteCommand(
                `${name}-firewall-confirmed`,
                { connection: this.connection, create: renderFirewallConfirmScript(), rerunWhen: [this.firewallScript] },
                { parent: this, dependsOn: [firewall] },
            );
        }

        // What it runs itself, not what the runtime adds under it later (Docker's provider, images).
        this.runs = children.names;
        // The firewall is a script of its own; as an output it can be reviewed on its own.
        this.registerOutputs({ pi: pi.name, bootstrapHash: this.bootstrapHash, firewall: args.firewall });
    }
}
