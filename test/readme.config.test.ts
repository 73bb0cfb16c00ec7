/**
 * The README's config table and the tiers' one definition agree: every tier picloud can build has
 * a row under `picloud:tiers.<key>`, every such row names a tier there is, and every option of a
 * tier's schema is named in its row.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { tiersSchema } from "../components/config/tiers";
import { appSchema } from "../components/tiers/apps/config";
import { TIERS } from "../components/tiers/registry";

const readme = fs.readFileSync(path.resolve(__dirname, "..", "README.md"), "utf8");
const table = readme.slice(readme.indexOf("## Stack config"), readme.indexOf("\n\n", readme.indexOf("| key | what |") + 20));
const rows = new Map([...table.matchAll(/^\| `picloud:tiers\.([A-Za-z]+)(\.<name>)?` \| (.*) \|$/gm)].map((m) => [m[1], m[3]]));

describe("the README's config table", () => {
    it("has a row for every tier in TIERS and none for a tier there is not", () => {
        expect([...rows.keys()].sort()).toEqual(TIERS.map((t) => t.key).sort());
        expect(Object.keys(tiersSchema.shape).sort()).toEqual(TIERS.map((t) => t.key).sort());
    });

    it("names every option of each tier's schema in its row", () => {
        const shapes: Record<string, Record<string, unknown>> = {
            apps: appSchema.shape,
            ...Object.fromEntries(
                Object.entries(tiersSchema.shape)
                    .filter(([k]) => k !== "apps")
                    .map(([k, v]) => [k, (v as unknown as { unwrap(): { shape: Record<string, unknown> } }).unwrap().shape]),
            ),
        };
        const named = (tier: string, option: string) => (rows.get(tier) ?? "").includes(`\`${option}\``) || (rows.get(tier) ?? "").includes(`\`${option}.`);
        const missing = Object.entries(shapes).flatMap(([tier, shape]) => Object.keys(shape).filter((option) => !named(tier, option)).map((o) => `${tier}.${o}`));
        expect(missing).toEqual([]);
    });
});
