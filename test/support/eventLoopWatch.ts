import { afterEach, beforeEach } from "vitest";

/**
 * Vitest's worker gives up on its own calls to the main process after a fixed 60 s and fails the
 * whole run with `Timeout calling "onTaskUpdate"`, naming no test, when its event loop does not
 * get to read the answer: synchronous work (a long run of spawnSync calls), or tests that await
 * only promises (a mock runtime's), which run one after another as microtasks and never let the
 * loop read its input. So each test ends by yielding to the event loop, and a stretch of 20 s or
 * more without it is reported on stderr, naming the tests that ran in it.
 */
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

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
