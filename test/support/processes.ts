import { spawnSync } from "node:child_process";

/** What a finished program left behind. */
export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs a program to its end (at most 30 s), with `input` on its stdin; throws only when it cannot start. */
export function run(file: string, args: string[], input?: string): Run {
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 30_000, input });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a program that must succeed, with `input` on its stdin; its stdout, or an error naming it with its stderr. */
export function must(file: string, args: string[], input?: string): string {
    const r = run(file, args, input);
    if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
}
