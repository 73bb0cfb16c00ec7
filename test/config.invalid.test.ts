import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { picloudProgram } from "../components/cloud/program";
import { PicloudConfigError } from "../components/config/errors";
import { installMockRuntime } from "../components/plan/mockRuntime";
import { readStackDocument, toPulumiConfig } from "../components/plan/plan";

/**
 * Every file in test/fixtures/invalid is a stack config with exactly one mistake. Its first line,
 * `# expect: <config key>`, names the key the error must point at. The real program path (stack
 * file → Pulumi config → mock runtime → picloudProgram) must refuse it with one problem at that
 * key, and register nothing.
 */
const dir = path.join(__dirname, "fixtures", "invalid");
const fixtures = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();

function expectedKey(file: string): string {
    const first = fs.readFileSync(path.join(dir, file), "utf8").split("\n", 1)[0];
    const m = /^# expect: (picloud:\S+)\s*$/.exec(first);
    if (!m) throw new Error(`${file}: first line must be '# expect: picloud:<key>', got ${JSON.stringify(first)}`);
    return m[1];
}

describe("invalid stack configs", () => {
    it("has a fixture per mistake (at least 20)", () => {
        expect(fixtures.length).toBeGreaterThanOrEqual(20);
        for (const f of fixtures) expect(fs.readFileSync(path.join(dir, f), "utf8").split("\n")[1]).toMatch(/^# \S/);
    });

    it.each(fixtures)("%s", async (file) => {
        const key = expectedKey(file);
        const document = readStackDocument(path.join(dir, file));
        const { config, secretKeys } = toPulumiConfig(document.config ?? {});
        const run = await installMockRuntime({ project: "picloud", stack: "fixture", config, secretKeys });
        let error: unknown;
        try {
            picloudProgram({});
        } catch (e) {
            error = e;
        }
        await run.settle();

        expect(error, `${file} was accepted`).toBeInstanceOf(PicloudConfigError);
        const err = error as PicloudConfigError;
        expect(err.problems.map((p) => p.key), err.message).toEqual([key]);
        expect(err.message).toContain(key);
        // Says what was wrong: what was given and/or what is expected.
        expect(err.problems[0].message).toMatch(/expected|duplicate|unknown|plain text/);
        expect(run.resources).toHaveLength(0);
    });
});
