import type { PlacementChange, PreviousPlacement } from "./place";

/**
 * A stack's placement lock: where each replica runs, committed beside the stack's config (as
 * `package-lock.json` is beside `package.json`), written by the offline plan and read by the
 * program, so placement remembers across runs, machines and fresh clones. Per-Pi agents are left
 * out: they run on every Pi by definition.
 */
export interface PlacementLock {
    /** Workload name → its Pi per replica index. */
    readonly replicas: Readonly<Record<string, readonly string[]>>;
}

/** The lock of a placement: every workload in `workloads`, by name. */
export function lockOf(assignments: ReadonlyMap<string, readonly string[]>, workloads: readonly string[]): PlacementLock {
    return { replicas: Object.fromEntries([...workloads].sort().map((w) => [w, [...(assignments.get(w) ?? [])]])) };
}

/** The lock as what placement reads. */
export function previousPlacement(lock: PlacementLock): PreviousPlacement {
    return new Map(Object.entries(lock.replicas));
}

/** Whether two locks place every replica alike. */
export function sameLock(a: PlacementLock, b: PlacementLock): boolean {
    return renderPlacementLock(a, "") === renderPlacementLock(b, "");
}

/** The lock file's text: sorted, one workload per line, with a note on what it is. */
export function renderPlacementLock(lock: PlacementLock, stack: string): string {
    const about = `picloud placement lock of stack ${stack}: the Pi of each replica. Written by \`npm run plan -- --stack ${stack}\`; commit it. pulumi up refuses to run while it is out of date.`;
    const rows = Object.keys(lock.replicas)
        .sort()
        .map((w) => `    ${JSON.stringify(w)}: ${JSON.stringify(lock.replicas[w])}`);
    return `{\n  "about": ${JSON.stringify(about)},\n  "replicas": {\n${rows.join(",\n")}\n  }\n}\n`;
}

/** Reads a lock file's text; throws naming the file and what is wrong. */
export function parsePlacementLock(text: string, file: string): PlacementLock {
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch (e) {
        throw new Error(`${file}: expected a placement lock in JSON, got text that does not parse (${(e as Error).message}); delete it and run the plan to write it again`);
    }
    const replicas = (parsed as { replicas?: unknown } | null)?.replicas;
    if (replicas === null || typeof replicas !== "object" || Array.isArray(replicas)) {
        throw new Error(`${file}: expected an object with "replicas" (workload → Pi per replica), got ${JSON.stringify(parsed)?.slice(0, 80)}`);
    }
    for (const [workload, pis] of Object.entries(replicas)) {
        if (!Array.isArray(pis) || !pis.every((p) => typeof p === "string" && p !== "")) {
            throw new Error(`${file}: replicas.${workload}: expected a list of Pi names, got ${JSON.stringify(pis)}`);
        }
    }
    return { replicas: replicas as Record<string, string[]> };
}

/** One line per change, e.g. `app-hello#1: pi-b → pi-c (pi-b is no longer in picloud:pis)`. */
export function describeChanges(changes: readonly PlacementChange[]): string[] {
    return changes.map((c) => `${c.workload}#${c.replica}: ${c.from ?? "(new)"} → ${c.to ?? "(gone)"} (${c.reason})`);
}
