/**
 * `pulumi policy publish` bundles the `policies/` folder alone, so the pack may import nothing
 * outside it: every module `index.ts` reaches must be in this folder (not its test helpers), and
 * every package it names must be one of the pack's own dependencies.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const PACK = __dirname;

function reachable(entry: string): { files: string[]; packages: string[] } {
    const files: string[] = [];
    const packages = new Set<string>();
    const visit = (file: string) => {
        if (files.includes(file)) return;
        files.push(file);
        const text = fs.readFileSync(file, "utf8");
        for (const [, spec] of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms)) {
            if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec) + ".ts");
            else if (!spec.startsWith("node:")) packages.add(spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/"));
        }
    };
    visit(entry);
    return { files, packages: [...packages].sort() };
}

describe("the policy pack bundles on its own", () => {
    const { files, packages } = reachable(path.join(PACK, "index.ts"));

    it("reaches only its own modules, none of its test helpers", () => {
        expect(files.length).toBeGreaterThan(4);
        const outside = files.map((f) => path.relative(PACK, f)).filter((f) => f.startsWith("..") || f.startsWith("testing") || !fs.existsSync(path.join(PACK, f)));
        expect(outside).toEqual([]);
    });

    it("names only packages it depends on itself", () => {
        const own = Object.keys((JSON.parse(fs.readFileSync(path.join(PACK, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
        expect(packages.filter((p) => !own.includes(p))).toEqual([]);
        expect(packages).toContain("@pulumi/policy");
    });
});
