import * as path from "node:path";
import { configurePlanProcess, runPlan } from "./plan";
import { formatPlan } from "./report";

const USAGE = "usage: npm run plan -- [--stack <name>] [--out <dir>]   (default stack: lab, default out: out)";

/**
 * `npm run plan -- --stack <name>`: the offline plan of `stacks/Pulumi.<name>.yaml`. Exit codes:
 * 0 planned, 1 the stack is invalid, does not fit, or a mandatory policy refuses it, 2 bad usage.
 */
async function main(argv: string[]): Promise<number> {
    let stack = "lab";
    let out = "out";
    for (let i = 0; i < argv.length; i++) {
        const [flag, value] = [argv[i], argv[i + 1]];
        if ((flag === "--stack" || flag === "--out") && value && !value.startsWith("--")) {
            if (flag === "--stack") stack = value;
            else out = value;
            i++;
        } else if (flag === "--help" || flag === "-h") {
            console.log(USAGE);
            return 0;
        } else {
            console.error(`unknown or incomplete argument "${flag}"\n${USAGE}`);
            return 2;
        }
    }
    const root = path.resolve(__dirname, "..", "..");
    const outDir = path.resolve(out, stack);
    const result = await runPlan({ stack, source: { file: path.join(root, "stacks", `Pulumi.${stack}.yaml`) }, outDir });
    if (!result.ok) {
        console.error(`picloud plan of stack "${stack}" failed:\n${result.error}`);
        return 1;
    }
    process.stdout.write(formatPlan(result, path.relative(process.cwd(), outDir) || "."));
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
