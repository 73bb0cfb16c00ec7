// Offline plan time for 3, 10, 30 and 100 Pis (target: 100 Pis in a few seconds, linear growth).
// Each run is a fresh process; the figure is the plan itself (config → program → every resource
// registered), without Node's start-up. Run: npx tsx bench/plan-time.ts
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { configurePlanProcess, runPlan } from "../components/plan/plan";
import { childArgs, median, syntheticStack } from "./syntheticStack";

const SIZES = [3, 10, 30, 100];
const RUNS = 3;

async function child(pis: number): Promise<void> {
    configurePlanProcess(); // as the plan CLI does
    const start = performance.now();
    const plan = await runPlan({ stack: `bench-${pis}`, source: { document: syntheticStack(pis) } });
    const ms = performance.now() - start;
    if (!plan.ok) throw new Error(plan.error);
    process.stdout.write(JSON.stringify({ ms, resources: plan.resources.length, rssMb: process.memoryUsage().rss / 2 ** 20 }));
}

function main(): void {
    console.log("offline plan time (median of 3 fresh processes)");
    console.log("  Pis  resources  plan ms  ms per Pi  peak RSS MB");
    for (const pis of SIZES) {
        const runs = Array.from({ length: RUNS }, () => JSON.parse(execFileSync(process.execPath, childArgs(__filename, [String(pis)]), { encoding: "utf8" })));
        const ms = median(runs.map((r) => r.ms));
        const rss = Math.max(...runs.map((r) => r.rssMb));
        console.log(`  ${String(pis).padStart(3)}  ${String(runs[0].resources).padStart(9)}  ${ms.toFixed(0).padStart(7)}  ${(ms / pis).toFixed(1).padStart(9)}  ${rss.toFixed(0).padStart(11)}`);
    }
}

if (process.argv[2] === "--child") child(Number(process.argv[3])).catch((e) => { console.error(e); process.exit(1); });
else main();
