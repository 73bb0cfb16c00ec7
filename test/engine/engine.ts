/**
 * The real Pulumi engine for the engine lane: the CLI built from its Go module
 * (build-engine.sh), the command provider, a local file backend and a passphrase secrets
 * provider in a work directory of the lane's own, and picloud's programs run inline through the
 * Automation API (the SDK's own language server over gRPC: pulumi-language-nodejs, the binary
 * that would start a program from Pulumi.yaml, is not served by the Go module proxy).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as auto from "@pulumi/pulumi/automation";

const REPO = path.resolve(__dirname, "../..");

/**
 * The folder holding `pulumi-resource-command` at the version of @pulumi/command the project pins
 * (command-provider.sh), or an error saying in one line what is missing and how to provide it.
 */
export function commandProviderDir(): string {
    try {
        return execFileSync("bash", [path.join(__dirname, "command-provider.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    } catch (e) {
        throw new Error((e as { stderr?: string }).stderr?.trim() || String(e));
    }
}

/** Builds (or finds) the Pulumi CLI; resolves to its binary. Prints the build's time when it builds. */
export function pulumiCli(): string {
    return execFileSync("bash", [path.join(__dirname, "build-engine.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").at(-1)!;
}

/** One stack of the lane's own: state, plugins and secrets under `dir`, removed by {@link EngineStack.remove}. */
export interface EngineStack {
    readonly stack: auto.Stack;
    readonly dir: string;
    /** Output of every engine run so far, for a failing test to show. */
    readonly log: string[];
    remove(): void;
}

/**
 * A new stack in a fresh work directory. `PATH` gets the command provider and the policy pack's
 * analyzer launcher: without pulumi-language-nodejs, the engine runs a Node.js policy pack
 * through `pulumi-analyzer-policy-nodejs` on PATH, a launcher of @pulumi/pulumi's own
 * `cmd/run-policy-pack` (what the CLI's release archive ships for this).
 */
export async function engineStack(name: string, program: auto.PulumiFn): Promise<EngineStack> {
    const cli = pulumiCli();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-engine-"));
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(
        path.join(bin, "pulumi-analyzer-policy-nodejs"),
        '#!/bin/sh\n# Runs a Node.js policy pack with its own @pulumi/pulumi (the engine starts it in the pack\'s folder).\nexec node ./node_modules/@pulumi/pulumi/cmd/run-policy-pack "$@"\n',
        { mode: 0o755 },
    );
    fs.mkdirSync(path.join(dir, "state"));
    const pulumiCommand = await auto.PulumiCommand.get({ root: path.dirname(path.dirname(cli)), skipVersionCheck: true });
    const envVars = {
        PULUMI_HOME: path.join(dir, "home"),
        PULUMI_CONFIG_PASSPHRASE: "picloud engine lane",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
        PATH: [bin, commandProviderDir(), process.env.PATH].join(path.delimiter),
    };
    const stack = await auto.LocalWorkspace.createStack(
        { stackName: name, projectName: "picloud-engine", program },
        {
            pulumiCommand,
            workDir: dir,
            envVars,
            secretsProvider: "passphrase",
            projectSettings: { name: "picloud-engine", runtime: "nodejs", backend: { url: `file://${path.join(dir, "state")}` } },
        },
    );
    return { stack, dir, log: [], remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The policy pack's folder, its dependencies installed (npm --prefix policies install, as the README says). */
export function policyPack(): string {
    const dir = path.join(REPO, "policies");
    if (!fs.existsSync(path.join(dir, "node_modules", "@pulumi", "policy"))) {
        execFileSync("npm", ["--prefix", dir, "install", "--no-audit", "--no-fund"], { stdio: ["ignore", "ignore", "inherit"] });
    }
    return dir;
}
