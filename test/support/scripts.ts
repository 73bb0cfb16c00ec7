import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/**
 * shellcheck on a rendered script, at its strictest (`-S style`). Throws when shellcheck is not
 * installed (`apt-get install shellcheck`), so a missing tool fails loudly instead of passing.
 */
export function shellcheck(script: string, shell: "bash" | "sh" = "bash"): { status: number | null; output: string } {
    const r = spawnSync("shellcheck", ["-s", shell, "-S", "style", "-"], { input: script, encoding: "utf8" });
    if (r.error) throw new Error(`shellcheck could not run (apt-get install shellcheck): ${r.error.message}`);
    return { status: r.status, output: r.stdout + r.stderr };
}

/** A temp-directory factory for one test file; every directory is removed after each test. */
export function tempDirs(prefix: string): () => string {
    const made: string[] = [];
    afterEach(() => {
        for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
    });
    return () => {
        const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
        made.push(dir);
        return dir;
    };
}
