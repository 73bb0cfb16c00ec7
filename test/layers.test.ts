/**
 * The architecture, kept visible: the folders of `components/` are layers, and a module imports
 * only from its own layer or those below it. The pure layers (and the pure files of the others:
 * the monitoring contract and every tier's specs and renderers) import nothing of Pulumi, so the
 * offline plan, tests and other programs can use them without an engine. Tests are exempt: they
 * may build realistic input from the layers above the one they test.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const COMPONENTS = path.resolve(__dirname, "..", "components");

/** Bottom to top. */
const LAYERS = ["config", "placement", "renderers", "network", "host", "runtime", "monitoring", "tiers", "cloud", "plan"] as const;
const PURE_LAYERS = new Set(["config", "placement", "renderers", "network"]);
const PURE_FILES = /^(monitoring\/(contract|renderers)\.ts|tiers\/[^/]+\/(specs|renderers|metrics|versions|images|keepalived|tls|dns)\.ts)$/;

function sources(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) return sources(full);
        return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [full] : [];
    });
}

/** Every module specifier a file imports or re-exports, type-only ones included. */
function importsOf(file: string): string[] {
    const text = fs.readFileSync(file, "utf8");
    return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms), ...text.matchAll(/^\s*import\s+"([^"]+)"/gm)].map((m) => m[1]);
}

/**
 * A file's layer: its folder's, except a tier's part of the config schema (`tiers/<tier>/config.ts`),
 * which sits in its tier's folder but belongs to the config layer that assembles the stack's schema.
 */
const TIER_CONFIG = /^tiers\/[^/]+\/config(\.ts)?$/;
const layerOf = (file: string): string | undefined => {
    const rel = path.relative(COMPONENTS, file).split(path.sep).join("/");
    return TIER_CONFIG.test(rel) ? "config" : rel.split("/")[0];
};

/** Every import of `components/` that runs upward, or out of `components/`, as "from → to". */
export function layerViolations(files: readonly string[]): string[] {
    const problems: string[] = [];
    for (const file of files) {
        const from = layerOf(file)!;
        const rank = LAYERS.indexOf(from as (typeof LAYERS)[number]);
        for (const spec of importsOf(file)) {
            if (!spec.startsWith(".")) continue;
            const target = path.resolve(path.dirname(file), spec);
            const rel = path.relative(COMPONENTS, target);
            const where = `${path.relative(COMPONENTS, file)} → ${spec}`;
            if (rel.startsWith("..")) {
                // The plan shows the policy pack's verdicts; nothing else reaches outside.
                if (!(from === "plan" && rel.startsWith(path.join("..", "policies")))) problems.push(`${where} (outside components/)`);
                continue;
            }
            const to = layerOf(target)!;
            const toRank = LAYERS.indexOf(to as (typeof LAYERS)[number]);
            if (toRank > rank) problems.push(`${where} (${from} imports ${to}, a layer above it)`);
        }
    }
    return problems;
}

describe("the layers of components/", () => {
    const files = sources(COMPONENTS).filter((f) => path.dirname(f) !== COMPONENTS);

    it("are the folders, and every source file sits in one", () => {
        const folders = fs.readdirSync(COMPONENTS, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
        expect([...folders].sort()).toEqual([...LAYERS].sort());
        expect(files.length).toBeGreaterThan(40);
    });

    it("import only downward", () => {
        expect(layerViolations(files)).toEqual([]);
    });

    it("catch an import that runs upward (the check can fail)", () => {
        const probe = path.join(COMPONENTS, "network", "layers-probe.ts");
        fs.writeFileSync(probe, 'import type { TierDefinition } from "../tiers/registry";\nexport type T = TierDefinition;\n');
        try {
            expect(layerViolations([probe])).toEqual(["network/layers-probe.ts → ../tiers/registry (network imports tiers, a layer above it)"]);
        } finally {
            fs.rmSync(probe);
        }
        // A tier's part of the schema is config: it may not reach its own tier's components.
        const tierProbe = path.join(COMPONENTS, "tiers", "apps", "config.ts");
        expect(layerViolations([tierProbe])).toEqual([]);
        const dir = fs.mkdtempSync(path.join(COMPONENTS, "tiers", "probe-"));
        const configProbe = path.join(dir, "config.ts");
        fs.writeFileSync(configProbe, 'import type { TierDefinition } from "../registry";\nexport type T = TierDefinition;\n');
        try {
            expect(layerViolations([configProbe])).toEqual([`${path.relative(COMPONENTS, configProbe)} → ../registry (config imports tiers, a layer above it)`]);
        } finally {
            fs.rmSync(dir, { recursive: true });
        }
    });

    it("keep the pure layers and files free of Pulumi", () => {
        const pure = files.filter((f) => PURE_LAYERS.has(layerOf(f)!) || PURE_FILES.test(path.relative(COMPONENTS, f).split(path.sep).join("/")));
        expect(pure.length).toBeGreaterThan(25);
        const pulumi = pure.flatMap((f) => importsOf(f).filter((spec) => spec.startsWith("@pulumi/")).map((spec) => `${path.relative(COMPONENTS, f)} → ${spec}`));
        expect(pulumi).toEqual([]);
    });
});
