import { beforeEach } from "vitest";

/**
 * Reports a test that keeps its worker's event loop blocked for long (synchronous work: a long
 * run of spawnSync calls, say). Vitest's worker gives up on its own calls to the main process
 * after a fixed 60 s and fails the whole run with `Timeout calling "onTaskUpdate"`, naming no
 * test; this names the tests that ran in the blocked stretch, on stderr, from 20 s of blocking on.
 */
let current = "(collecting)";
/** The test running at the last tick, and every test started since. */
let since: string[] = [current];
beforeEach((context) => {
    current = `${context.task.file?.name ?? ""} > ${context.task.name}`;
    since.push(current);
});
let last = performance.now();
setInterval(() => {
    const now = performance.now();
    const blocked = now - last - 1000;
    if (blocked > 20_000) process.stderr.write(`eventLoopWatch: the event loop was blocked ${Math.round(blocked / 1000)} s during ${[...new Set(since)].join(" or ")} (vitest's worker calls time out after 60 s)\n`);
    last = now;
    since = [current];
}, 1000).unref();
