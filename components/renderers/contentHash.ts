import { createHash } from "node:crypto";

/** SHA-256 of a rendered file, hex: a trigger that re-ships the file only when it changes. */
export function contentHash(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}
