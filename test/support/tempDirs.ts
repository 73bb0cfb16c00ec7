import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll } from "vitest";

/** A maker of temp folders named `<prefix>…`, each removed once the test file is done. */
export function tempDirs(prefix: string): () => string {
    const made: string[] = [];
    afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
    return () => {
        const dir = mkdtempSync(path.join(tmpdir(), prefix));
        made.push(dir);
        return dir;
    };
}
