/**
 * Fuzzes the example stacks' config in-process: each case mutates one value of a stack (a wrong
 * type, an edge number, a port another one uses, a subnet's own addresses, a deleted key …) and
 * runs the whole program on the mock runtime, as `pulumi preview` would. Every case must either
 * plan or fail with a PicloudConfigError whose every problem names a `picloud:` key and reads
 * like the rest ("got …", never "undefined"). Anything else is a renderer or a component throwing
 * at a user. The seed is fixed, so a failure names the case that reproduces it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { picloudProgram } from "../components/cloud/program";
import { PicloudConfigError } from "../components/config/errors";
import { installMockRuntime } from "../components/plan/mockRuntime";
import { toPulumiConfig } from "../components/plan/plan";

const CASES_PER_STACK = Number(process.env.PICLOUD_FUZZ_CASES ?? 40);
const SEED = 20261202;

/** mulberry32: small, seedable, good enough to pick mutations. */
function random(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

/** Every path to a value in the tree, leaves and containers alike. */
function paths(value: Json, at: Path = []): Path[] {
    const here = at.length ? [at] : [];
    if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => paths(v, [...at, i]))];
    if (value && typeof value === "object") return [...here, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...at, k]))];
    return here;
}

function get(value: Json, at: Path): Json {
    return at.reduce<Json>((v, k) => (v as Record<string | number, Json>)[k], value);
}

function set(value: Json, at: Path, next: Json | undefined): void {
    const parent = get(value, at.slice(0, -1)) as Record<string | number, Json> | Json[];
    const key = at[at.length - 1];
    if (next === undefined) {
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete (parent as Record<string, Json>)[key as string];
    } else (parent as Record<string | number, Json>)[key] = next;
}

/** What a mutation may put in place of a value: other types, edges, and values the stack itself uses elsewhere. */
function replacements(config: Json, original: Json): (Json | undefined)[] {
    const numbers = paths(config).map((p) => get(config, p)).filter((v): v is number => typeof v === "number");
    const strings = paths(config).map((p) => get(config, p)).filter((v): v is string => typeof v === "string");
    const address = typeof original === "string" && /^\d+\.\d+\.\d+\.\d+$/.test(original) ? original.split(".").slice(0, 3).join(".") : "192.168.10";
    return [
        undefined,
        null,
        true,
        0,
        -1,
        1.5,
        22,
        65535,
        65536,
        1e9,
        "",
        " ",
        "x",
        "../etc",
        "a b",
        `${address}.0`,
        `${address}.255`,
        "10.0.0.300",
        "0.0.0.0/0",
        "/",
        "/api",
        "/function",
        [],
        {},
        ...numbers.slice(0, 20),
        ...strings.slice(0, 20),
        Array.isArray(original) && original.length ? [...original, original[0]] : [original],
    ];
}

function mutate(config: Json, rand: () => number): { config: Json; what: string } {
    const copy = JSON.parse(JSON.stringify(config)) as Json;
    const all = paths(copy);
    const at = all[Math.floor(rand() * all.length)];
    const options = replacements(copy, get(copy, at));
    const next = options[Math.floor(rand() * options.length)];
    set(copy, at, next);
    return { config: copy, what: `${at.join(".")} := ${next === undefined ? "(deleted)" : JSON.stringify(next)}` };
}

/** Runs the program on the mock runtime with `fileConfig`; returns the error it threw, if any. */
async function program(stack: string, fileConfig: Record<string, unknown>): Promise<unknown> {
    const { config, secretKeys } = toPulumiConfig(fileConfig);
    const run = await installMockRuntime({ project: "picloud", stack, config, secretKeys });
    try {
        picloudProgram({});
        await run.settle();
        return undefined;
    } catch (e) {
        await run.settle().catch(() => undefined);
        return e;
    }
}

describe.each(["lab", "dev", "prod"])("fuzzing the %s stack's config", (stack) => {
    const document = YAML.parse(fs.readFileSync(path.resolve(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, Json> };
    const secrets = Object.fromEntries(Object.entries(document.config).filter(([, v]) => v !== null && typeof v === "object" && "secure" in (v as object)));
    const plain = Object.fromEntries(Object.entries(document.config).filter(([k]) => !(k in secrets))) as { [k: string]: Json };
    // Every secret the unmutated stack needs, as `pulumi config set --secret` would have set it.
    const needed: Record<string, unknown> = { ...secrets };
    beforeAll(async () => {
        const error = await program(stack, { ...plain, ...secrets });
        if (error !== undefined && !(error instanceof PicloudConfigError)) throw error;
        for (const p of (error as PicloudConfigError | undefined)?.problems ?? []) {
            if (p.kind !== "missing-secret") throw new Error(`the ${stack} stack itself is refused: ${p.key}: ${p.message}`);
            needed[p.key] = { secure: "v1:AAAA" };
        }
        expect(await program(stack, { ...plain, ...needed })).toBeUndefined();
    });

    it(`plans every mutation or refuses it with a config error naming its key (${CASES_PER_STACK} cases)`, async () => {
        const rand = random(SEED + stack.length);
        const failures: string[] = [];
        let refused = 0;
        let planned = 0;
        const reasons = new Map<string, number>();
        for (let i = 0; i < CASES_PER_STACK; i++) {
            const { config, what } = mutate(plain, rand);
            const error = await program(stack, { ...(config as Record<string, unknown>), ...needed });
            // The mock runtime's promises never leave the microtask queue: let the worker read its input between cases.
            await new Promise((resolve) => setImmediate(resolve));
            if (error === undefined) {
                planned++;
                continue;
            }
            if (!(error instanceof PicloudConfigError)) {
                failures.push(`case ${i} (${what}): threw ${(error as Error).name}: ${(error as Error).message?.split("\n")[0]}`);
                continue;
            }
            refused++;
            for (const p of error.problems) reasons.set(p.key, (reasons.get(p.key) ?? 0) + 1);
            for (const p of error.problems) {
                if (!p.key.startsWith("picloud:") || /\bundefined\b|\bNaN\b|\[object Object\]|received/i.test(p.message)) failures.push(`case ${i} (${what}): ${p.key}: ${p.message}`);
            }
        }
        expect(failures).toEqual([]);
        // The fuzzer reaches both sides: some mutations plan, many are refused, for many keys.
        expect(planned, `refused: ${[...reasons].map(([k, n]) => `${k} ×${n}`).join(", ")}`).toBeGreaterThan(0);
        expect(refused).toBeGreaterThan(CASES_PER_STACK / 4);
        expect(reasons.size).toBeGreaterThan(3);
    }, 300_000);
});
