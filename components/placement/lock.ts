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
    /**
     * Quorum group → the Pis its cluster was formed on, per member, recorded once a member runs
     * anywhere else: a member away from its founding Pi joins the running cluster instead of
     * forming one. Absent while every member is where the cluster was formed.
     */
    readonly founders?: Readonly<Record<string, readonly string[]>>;
}

/** The lock of a placement: every workload in `workloads`, by name, and the founders given. */
export function lockOf(assignments: ReadonlyMap<string, readonly string[]>, workloads: readonly string[], founders: ReadonlyMap<string, readonly string[]> = new Map()): PlacementLock {
    const replicas = Object.fromEntries([...workloads].sort().map((w) => [w, [...(assignments.get(w) ?? [])]]));
    const kept = [...founders.keys()].filter((w) => w in replicas).sort();
    return kept.length === 0 ? { replicas } : { replicas, founders: Object.fromEntries(kept.map((w) => [w, [...founders.get(w)!]])) };
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
    const rows = (map: Readonly<Record<string, readonly string[]>>) =>
        Object.keys(map)
            .sort()
            .map((w) => `    ${JSON.stringify(w)}: ${JSON.stringify(map[w])}`)
            .join(",\n");
    const founders = lock.founders && Object.keys(lock.founders).length > 0 ? `,\n  "founders": {\n${rows(lock.founders)}\n  }` : "";
    return `{\n  "about": ${JSON.stringify(about)},\n  "replicas": {\n${rows(lock.replicas)}\n  }${founders}\n}\n`;
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
    const founders = (parsed as { founders?: unknown }).founders;
    if (founders !== undefined && (founders === null || typeof founders !== "object" || Array.isArray(founders))) {
        throw new Error(`${file}: founders: expected an object (quorum group → founding Pi per member), got ${JSON.stringify(founders)?.slice(0, 80)}`);
    }
    for (const [section, map] of [["replicas", replicas], ["founders", founders ?? {}]] as const) {
        for (const [workload, pis] of Object.entries(map as object)) {
            if (!Array.isArray(pis) || !pis.every((p) => typeof p === "string" && p !== "")) {
                throw new Error(`${file}: ${section}.${workload}: expected a list of Pi names, got ${JSON.stringify(pis)}`);
            }
        }
    }
    return founders === undefined ? { replicas: replicas as Record<string, string[]> } : { replicas: replicas as Record<string, string[]>, founders: founders as Record<string, string[]> };
}

/** One line per change, e.g. `app-hello#1: pi-b → pi-c (pi-b is no longer in picloud:pis)`. */
export function describeChanges(changes: readonly PlacementChange[]): string[] {
    return changes.map((c) => `${c.workload}#${c.replica}: ${c.from ?? "(new)"} → ${c.to ?? "(gone)"} (${c.reason})`);
}
