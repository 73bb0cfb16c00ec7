import * as fs from "node:fs";
import * as path from "node:path";
import { readPlacementLock } from "../cloud/program";
import { renderPlacementLock, sameLock } from "../placement/lock";
import { configurePlanProcess, runPlan } from "./plan";
import { formatPlan } from "./report";

const USAGE = `usage: npm run plan -- [--stack <name>] [--stacks-dir <dir>] [--out <dir>] [--rebalance [<workload>,...]] [--frozen-lock]
  --stack        the stack of stacks/Pulumi.<name>.yaml (default: lab)
  --stacks-dir   the folder of the stack files and placement locks (default: picloud's stacks/)
  --out          where rendered files go (default: out)
  --rebalance    place these workloads (default: every one) afresh instead of where the lock keeps them
  --frozen-lock  write no lock; fail when the config would change stacks/placement.<name>.json (CI)`;

/**
 * `npm run plan -- --stack <name>`: the offline plan of `stacks/Pulumi.<name>.yaml`. Exit codes:
 * 0 planned, 1 the stack is invalid, does not fit, or a mandatory policy refuses it, 2 bad usage.
 */
async function main(argv: string[]): Promise<number> {
    let stack = "lab";
    let out = "out";
    let stacksDir = path.resolve(__dirname, "..", "..", "stacks");
    let rebalance: string[] | "all" | undefined;
    let frozen = false;
    for (let i = 0; i < argv.length; i++) {
        const [flag, value] = [argv[i], argv[i + 1]];
        if ((flag === "--stack" || flag === "--out" || flag === "--stacks-dir") && value && !value.startsWith("--")) {
            if (flag === "--stack") stack = value;
            else if (flag === "--stacks-dir") stacksDir = path.resolve(value);
            else out = value;
            i++;
        } else if (flag === "--rebalance") {
            if (value && !value.startsWith("--")) {
                rebalance = value.split(",").filter((w) => w !== "");
                i++;
            } else rebalance = "all";
        } else if (flag === "--frozen-lock") {
            frozen = true;
        } else if (flag === "--help" || flag === "-h") {
            console.log(USAGE);
            return 0;
        } else {
            console.error(`unknown or incomplete argument "${flag}"\n${USAGE}`);
            return 2;
        }
    }
    const outDir = path.resolve(out, stack);
    const lockFile = path.join(stacksDir, `placement.${stack}.json`);
    const shownLock = path.relative(process.cwd(), lockFile);
    let lock;
    try {
        lock = readPlacementLock(lockFile);
    } catch (e) {
        console.error(`picloud plan of stack "${stack}" failed:\n${(e as Error).message}`);
        return 1;
    }
    const result = await runPlan({ stack, source: { file: path.join(stacksDir, `Pulumi.${stack}.yaml`) }, outDir, placement: { lock, rebalance } });
    if (!result.ok) {
        console.error(`picloud plan of stack "${stack}" failed:\n${result.error}`);
        return 1;
    }
    const unknown = Array.isArray(rebalance) ? rebalance.filter((w) => !(w in result.lock.replicas)) : [];
    if (unknown.length) {
        console.error(`--rebalance: expected workloads of stack "${stack}" (${Object.keys(result.lock.replicas).join(", ")}), got ${unknown.map((w) => `"${w}"`).join(", ")}`);
        return 2;
    }
    process.stdout.write(formatPlan(result, path.relative(process.cwd(), outDir) || "."));
    const changed = lock === undefined || !sameLock(lock, result.lock);
    if (changed && frozen) {
        console.error(`picloud plan of stack "${stack}": ${shownLock} is ${lock ? "out of date (see Placement changes above)" : "missing"}; run the plan without --frozen-lock and commit the lock`);
        return 1;
    }
    if (changed) {
        fs.writeFileSync(lockFile, renderPlacementLock(result.lock, stack));
        console.log(`\nWrote the placement lock ${shownLock}: commit it; pulumi up places replicas by it.`);
    } else {
        console.log(`\nThe placement lock ${shownLock} is up to date.`);
    }
    if (!result.policiesPass) {
        console.error(`picloud plan of stack "${stack}": a mandatory policy refuses this stack (see Policies above)`);
        return 1;
    }
    return 0;
}

configurePlanProcess();
main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
        console.error(e);
        process.exit(1);
    },
);
