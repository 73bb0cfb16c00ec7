/**
 * Polls `probe` every `intervalMs` (default 500) until it gives a value other than undefined and
 * returns that value; after `timeoutMs` it fails, saying what it waited for and the probe's last
 * error, if it threw. For conditions on a busy machine: a wait for a state, not a sleep.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, opts: { timeoutMs: number; intervalMs?: number }): Promise<T> {
    const deadline = Date.now() + opts.timeoutMs;
    let last: unknown;
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined) return value;
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) throw new Error(`waited ${opts.timeoutMs} ms for ${what}${last === undefined ? "" : `; last error: ${last instanceof Error ? last.message : String(last)}`}`);
        await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
    }
}
