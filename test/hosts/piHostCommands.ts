/**
 * What PiHost runs on a Pi, for the test hosts. A PiHost is built per host under the mock runtime
 * (as the offline plan builds them) and its commands are read off what it registered, so the host
 * suite runs exactly the bootstrap script, bootstrap command and host check PiHost would, hardening
 * and firewall included, only over the test bed's SSH instead of @pulumi/command's.
 */
import * as pulumi from "@pulumi/pulumi";
import { configKey } from "../../components/config/errors";
import type { PiConfig, StackConfig } from "../../components/config/schema";
import { PiHost } from "../../components/host/piHost";
import type { NetworkPlan } from "../../components/network/flows";
import { renderNftables } from "../../components/network/nftables";
import type { LogShipping } from "../../components/renderers/hostScripts";
import { installMockRuntime } from "../../components/plan/mockRuntime";
import type { SshResult, Testbed, TestHost } from "./testbed";

/** A test host as a Pi of a stack config: its address, its real ed25519 host key, the test bed's login user. */
export function testPi(bed: Testbed, host: TestHost, pi: Pick<PiConfig, "name" | "model" | "storage">): PiConfig {
    return { ...pi, address: host.address, sshUser: bed.user, sshPort: 22, hostKey: host.hostKey, memoryMb: 4096, cpus: 4, labels: {} };
}

/**
 * The network plan of Pis that declare nothing but SSH from the management network, as
 * `planNetwork` declares it for every Pi. The management network is the bridge's subnet: the
 * controller (the operator) and the probe are on it.
 */
export function sshOnlyNetwork(bed: Testbed, pis: readonly PiConfig[]): NetworkPlan {
    return {
        pis,
        mgmtNetwork: bed.subnet,
        flows: pis.map((pi, i) => ({ from: { zone: "mgmt" }, to: pi.name, protocol: "tcp", port: pi.sshPort, purpose: "ssh", declaredBy: configKey(["pis", i, "sshPort"]) })),
        publishedPorts: new Map(),
    };
}

/** A command PiHost registers, as the engine would run it over SSH: the command and its stdin. */
export interface RegisteredCommand {
    readonly command: string;
    readonly stdin?: string;
}

/** What PiHost runs on one Pi, in its order. */
export interface PiHostCommands {
    /** Ships the bootstrap script to its path under picloud's scripts folder. */
    readonly shipScript: RegisteredCommand;
    /** The bootstrap script it ships: hardening included. */
    readonly script: string;
    /** Its bootstrap command, with `PICLOUD_SKIP_DOCKER=1`: Docker Engine cannot run on a test host (DESIGN.md §5). */
    readonly bootstrap: string;
    /** The host check it runs after the bootstrap, over a new SSH connection. */
    readonly hostCheck: string;
    /** The firewall: its script shipped, then run, then confirmed over a new SSH connection. */
    readonly firewall: { readonly shipScript: RegisteredCommand; readonly run: string; readonly confirm: string; readonly remove: string };
}

/** One Pi to build a PiHost for, and the stack's bootstrap options it gets. */
export interface TestPiHost {
    readonly pi: PiConfig;
    readonly bootstrap: StackConfig["bootstrap"];
    /** Where its journal goes, as PiCloud tells it when the stack has VictoriaLogs. */
    readonly logShipping?: LogShipping;
}

/**
 * Builds a PiHost for each Pi under the mock runtime, its firewall rendered from `network` as
 * PiCloud renders it, and returns what each would run, by Pi name. Call it once per test file:
 * it installs the mock runtime in this process.
 */
export async function piHostCommands(pis: readonly TestPiHost[], network: NetworkPlan, opts: { firewallRollbackSeconds?: number } = {}): Promise<Map<string, PiHostCommands>> {
    const run = await installMockRuntime({ project: "picloud", stack: "hosts", config: {}, secretKeys: [] });
    for (const { pi, bootstrap, logShipping } of pis) {
        // The key is for @pulumi/command, which the host suite stands in for.
        new PiHost(pi.name, { pi, bootstrap, privateKey: pulumi.secret("unused"), firewall: renderNftables(pi.name, network), firewallRollbackSeconds: opts.firewallRollbackSeconds, logShipping });
    }
    await run.settle();
    const inputs = (name: string) => {
        const resource = run.resources.find((r) => r.name === name);
        if (!resource) throw new Error(`PiHost registered no ${name}; it registered ${run.resources.map((r) => r.name).join(", ")}`);
        return resource.inputs;
    };
    const registered = (name: string): RegisteredCommand => ({ command: inputs(name).create as string, stdin: inputs(name).stdin as string | undefined });
    const commands = new Map<string, PiHostCommands>();
    for (const { pi } of pis) {
        const create = inputs(`${pi.name}-bootstrap`).create as string;
        // sudo resets the environment, so the variable goes on its command line.
        const bootstrap = create.replace(/\nsudo -n bash /, "\nsudo -n PICLOUD_SKIP_DOCKER=1 bash ");
        if (bootstrap === create) throw new Error(`PiHost's bootstrap command no longer ends in "sudo -n bash <script>": ${create}; update how the host suite skips Docker`);
        commands.set(pi.name, {
            shipScript: registered(`${pi.name}-bootstrap-script`),
            script: inputs(`${pi.name}-bootstrap-script`).stdin as string,
            bootstrap,
            hostCheck: inputs(`${pi.name}-ready`).create as string,
            firewall: {
                shipScript: registered(`${pi.name}-firewall-script`),
                run: inputs(`${pi.name}-firewall`).create as string,
                confirm: inputs(`${pi.name}-firewall-confirmed`).create as string,
                remove: inputs(`${pi.name}-firewall`).delete as string,
            },
        });
    }
    return commands;
}

/** Runs a registered command on the host, with its stdin, as the command provider would. */
export function runRegistered(host: TestHost, registered: RegisteredCommand): Promise<SshResult> {
    return host.ssh(registered.command, { input: registered.stdin });
}

/** Ships the bootstrap script with PiHost's own ship command; throws if that fails. */
export async function shipBootstrap(host: TestHost, commands: PiHostCommands): Promise<void> {
    const copy = await runRegistered(host, commands.shipScript);
    if (copy.code !== 0) throw new Error(`could not ship the bootstrap to ${host.name}: ${copy.stderr}`);
}

/** Runs PiHost's bootstrap command on the host (the script must have been shipped). */
export function runBootstrap(host: TestHost, commands: PiHostCommands): Promise<SshResult> {
    return host.ssh(commands.bootstrap);
}

/** Ships and runs PiHost's firewall script on the host; throws if the ship fails. */
export async function runFirewall(host: TestHost, commands: PiHostCommands): Promise<SshResult> {
    const copy = await runRegistered(host, commands.firewall.shipScript);
    if (copy.code !== 0) throw new Error(`could not ship the firewall script to ${host.name}: ${copy.stderr}`);
    return host.ssh(commands.firewall.run);
}
