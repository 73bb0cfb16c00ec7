import { spawn, spawnSync } from "node:child_process";

/** What a finished program left behind. */
export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs a program to its end (at most 30 s), with `input` on its stdin; throws only when it cannot start. */
export function run(file: string, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Run {
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 30_000, input, env: { ...process.env, ...env } });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a program that must succeed, with `input` on its stdin; its stdout, or an error naming it with its stderr. */
export function must(file: string, args: string[], input?: string): string {
    const r = run(file, args, input);
    if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
}

/**
 * Runs a program to its end without blocking, with `input` on its stdin and `env` added to the
 * environment: for programs that take longer than the test runner may go without a word (a
 * cluster's init step waiting a minute), or that run beside others (clients writing while a
 * primary dies).
 */
export function runAsync(file: string, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (status) => resolve({ status, stdout, stderr }));
        child.stdin.end(input ?? "");
    });
}
