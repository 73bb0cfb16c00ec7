import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import type { PiCloud, PlacementInput } from "../cloud/piCloud";
import { picloudProgram, PicloudStackOutputs, readPlacementLock } from "../cloud/program";
import type { PlacementLock } from "../placement/lock";
import type { PlacementChange } from "../placement/place";
import { readStackConfig } from "../cloud/stackConfig";
import { PicloudConfigError, SECRET_PLACEHOLDER } from "../config/errors";
import { NFTABLES_FILES } from "../renderers/firewallFiles";
import { parseStackConfig } from "../config/schema";
import { renderKnownHosts } from "../renderers/knownHosts";
import { shippedPath } from "../renderers/remoteCommands";
import { installMockRuntime, RecordedResource } from "./mockRuntime";
import { mandatoryViolations, PolicyVerdict, policyVerdicts } from "./policyVerdicts";

/** Where the offline plan reads a stack's config from. */
export type StackSource =
    /** A `Pulumi.<stack>.yaml` file. */
    | { readonly file: string }
    /** The parsed contents of such a file (benchmarks and tests generate these). */
    | { readonly document: { readonly config?: Record<string, unknown> } };

/** Options of {@link runPlan}. */
export interface PlanOptions {
    readonly stack: string;
    readonly source: StackSource;
    /** Folder rendered files are written to; default: none written. */
    readonly outDir?: string;
    /** Simulated time per resource operation, ms (benchmarks). */
    readonly delayMs?: number;
    /** Where placement starts from: the stack's placement lock (none: placed afresh) and any rebalance; default, for a stack file, the lock beside it. */
    readonly placement?: PlacementInput;
}

/** A file the program would put on a Pi (or use locally), as rendered. */
export interface RenderedFile {
    /** Path relative to the plan's output folder. */
    readonly path: string;
    readonly text: string;
}

/** The result of an offline plan. */
export type PlanResult =
    | {
          readonly ok: true;
          readonly stack: string;
          readonly resources: readonly RecordedResource[];
          readonly outputs: PicloudStackOutputs;
          readonly files: readonly RenderedFile[];
          /** Secret keys the plan stood in a placeholder for (it never has secrets). */
          readonly placeholders: readonly string[];
          /** The policy pack's verdicts, one per policy. */
          readonly verdicts: readonly PolicyVerdict[];
          /** False when a mandatory policy refuses the stack. */
          readonly policiesPass: boolean;
          /** The placement as a lock, for the next run. */
          readonly lock: PlacementLock;
          /** New, moved and removed replicas against the lock the plan started from, with reasons. */
          readonly placementChanges: readonly PlacementChange[];
      }
    | { readonly ok: false; readonly stack: string; readonly error: string };

/**
 * Tunes a process that exists to run plans (the CLI, the benchmarks): the SDK records a stack
 * trace for every promise it makes, for leak diagnostics, and with source maps those traces cost
 * more than the plan itself. Plan failures are reported by their messages, so one frame is enough.
 */
export function configurePlanProcess(): void {
    Error.stackTraceLimit = 1;
}

/** What the plan feeds the program in place of a secret it cannot have. */
export { SECRET_PLACEHOLDER };
const PROJECT = "picloud";

/**
 * Runs the real picloud program on the SDK's mock runtime with a stack's config: no Pulumi CLI, no
 * network, no credentials. Secrets are never read: encrypted values and missing secrets become
 * placeholders. Invalid config and over-capacity come back as `ok: false` with the program's own
 * message.
 */
export async function runPlan(options: PlanOptions): Promise<PlanResult> {
    const { stack } = options;
    let document: { config?: Record<string, unknown> };
    try {
        document = "file" in options.source ? readStackDocument(options.source.file) : options.source.document;
    } catch (e) {
        return { ok: false, stack, error: (e as Error).message };
    }
    const { config, secretKeys } = toPulumiConfig(document.config ?? {});

    // Secrets the config needs but the file cannot give offline get a placeholder too, found by
    // asking the program's own validation which secrets are missing.
    pulumi.runtime.setAllConfig(config, secretKeys);
    try {
        parseStackConfig(readStackConfig());
    } catch (e) {
        if (!(e instanceof PicloudConfigError)) throw e;
        for (const p of e.problems) {
            if (p.kind !== "missing-secret") continue;
            config[p.key] = SECRET_PLACEHOLDER;
            secretKeys.push(p.key);
        }
    }

    const run = await installMockRuntime({ project: PROJECT, stack, config, secretKeys, delayMs: options.delayMs });
    let outputs: PicloudStackOutputs;
    let cloud: PiCloud;
    try {
        ({ outputs, cloud } = picloudProgram(options.placement ?? lockBeside(options)));
        await run.settle();
    } catch (e) {
        await run.settle().catch(() => undefined);
        return { ok: false, stack, error: (e as Error).message };
    }

    const files = renderedFiles(run.resources, outputs.pis);
    if (options.outDir) {
        // For the operator's own ssh client; picloud pins each Pi's key in its own connections.
        files.push({ path: "known_hosts", text: renderKnownHosts(parseStackConfig(readStackConfig()).pis) });
        for (const f of files) {
            fs.mkdirSync(path.dirname(path.join(options.outDir, f.path)), { recursive: true });
            fs.writeFileSync(path.join(options.outDir, f.path), f.text);
        }
    }
    const verdicts = await policyVerdicts(run.resources);
    return {
        ok: true,
        stack,
        resources: run.resources,
        outputs,
        files,
        placeholders: [...secretKeys].sort(),
        verdicts,
        policiesPass: mandatoryViolations(verdicts).length === 0,
        lock: cloud.plan.lock,
        placementChanges: cloud.plan.changes,
    };
}

/** The placement lock beside a stack file (`placement.<stack>.json`), as `pulumi up` would read it; none for a generated document. */
function lockBeside(options: PlanOptions): PlacementInput {
    if (!("file" in options.source)) return {};
    return { lock: readPlacementLock(path.join(path.dirname(options.source.file), `placement.${options.stack}.json`)) };
}

/** Reads `Pulumi.<stack>.yaml`, with an error that says which stacks exist when it is missing. */
export function readStackDocument(file: string): { config?: Record<string, unknown> } {
    if (!fs.existsSync(file)) {
        const dir = path.dirname(file);
        const stacks = fs.existsSync(dir)
            ? fs.readdirSync(dir).flatMap((f) => (/^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ? [/^Pulumi\.(.+)\.yaml$/.exec(f)![1]] : []))
            : [];
        throw new Error(`no stack config at ${file}; stacks here: ${stacks.join(", ") || "none"}`);
    }
    const parsed = YAML.parse(fs.readFileSync(file, "utf8")) ?? {};
    if (typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${file}: expected a YAML mapping with a 'config:' key`);
    return parsed;
}

/**
 * Turns a stack file's `config:` map into what Pulumi hands a program: strings as they are,
 * structured values as JSON, `secure:` values as secrets (placeholders: the plan cannot decrypt).
 */
export function toPulumiConfig(fileConfig: Record<string, unknown>): { config: Record<string, string>; secretKeys: string[] } {
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, value] of Object.entries(fileConfig)) {
        if (value !== null && typeof value === "object" && "secure" in value) {
            config[key] = SECRET_PLACEHOLDER;
            secretKeys.push(key);
        } else {
            config[key] = typeof value === "string" ? value : JSON.stringify(value);
        }
    }
    return { config, secretKeys };
}

/**
 * Every file the program ships, as `<pi>/<remote path>`: what lands where. Secrets are left out
 * (the plan only has placeholders for them anyway).
 */
function renderedFiles(resources: readonly RecordedResource[], pis: Readonly<Record<string, string>>): RenderedFile[] {
    const piAt = new Map(Object.entries(pis).map(([name, address]) => [address, name]));
    const files: RenderedFile[] = [];
    for (const r of resources) {
        const remotePath = shippedPath(r.inputs.create);
        const host = (r.inputs.connection as { host?: string } | undefined)?.host;
        if (remotePath === undefined || typeof r.inputs.stdin !== "string" || r.secretInputs.includes("stdin")) continue;
        const pi = (host && piAt.get(host)) ?? host ?? "unknown-host";
        files.push({ path: path.join(pi, remotePath.replace(/^\/+/, "")), text: r.inputs.stdin });
    }
    // Files shipped inside the bootstrap that a reviewer wants to see on their own: the firewall.
    for (const host of resources.filter((r) => r.type === "picloud:host:PiHost")) {
        const firewall = host.outputs?.firewall;
        if (typeof firewall === "string") files.push({ path: path.join(String(host.outputs?.pi), NFTABLES_FILES.ruleset.replace(/^\/+/, "")), text: firewall });
    }
    return files.sort((a, b) => a.path.localeCompare(b.path));
}
