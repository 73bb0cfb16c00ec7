// Deploy parallelism: with a fixed simulated delay per resource operation in the mock runtime,
// the wall time of a 30-Pi deploy over that of a 3-Pi one (target ≤ 1.25: Pis are provisioned
// side by side, never one after another). Run: npx tsx bench/deploy-parallelism.ts
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { configurePlanProcess, runPlan } from "../components/plan/plan";
import { childArgs, median, syntheticStack } from "./syntheticStack";

// A second per operation is on the short side of real ones (an SSH dial, a script run, an image
// pull take seconds); the program's own CPU time per resource is what a shorter delay would measure.
const DELAY_MS = 1000;
const RUNS = 3;

async function child(pis: number): Promise<void> {
    configurePlanProcess(); // as the plan CLI does
    const start = performance.now();
    const plan = await runPlan({ stack: `par-${pis}`, source: { document: syntheticStack(pis) }, delayMs: DELAY_MS });
    const ms = performance.now() - start;
    if (!plan.ok) throw new Error(plan.error);
    process.stdout.write(JSON.stringify({ ms, resources: plan.resources.length }));
}

function wall(pis: number): { ms: number; resources: number } {
    const runs = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, childArgs(__filename, [String(pis)]), { encoding: "utf8" })));
    return { ms: median(runs.map((r) => r.ms)), resources: runs[0].resources };
}

function main(): void {
    const small = wall(3);
    const large = wall(30);
    console.log(`deploy parallelism, ${DELAY_MS} ms simulated per resource operation (median of ${RUNS})`);
    console.log(`   3 Pis: ${small.resources} resources, ${small.ms.toFixed(0)} ms (${(small.ms / DELAY_MS).toFixed(1)} operation times)`);
    console.log(`  30 Pis: ${large.resources} resources, ${large.ms.toFixed(0)} ms (${(large.ms / DELAY_MS).toFixed(1)} operation times)`);
    console.log(`  ratio 30/3: ${(large.ms / small.ms).toFixed(2)} (target <= 1.25)`);
}

if (process.argv[2] === "--child") child(Number(process.argv[3])).catch((e) => { console.error(e); process.exit(1); });
else main();
