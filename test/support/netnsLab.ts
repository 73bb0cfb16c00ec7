import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { must } from "./processes";

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * The network namespaces, processes and work directory one test file makes for itself, removed
 * when it is done: by {@link remove} in afterAll, and also at exit or on SIGINT/SIGTERM when the
 * file ends some other way. Only what it created is ever deleted (other suites use the same
 * `pct-` prefix). Needs root.
 */
export class NetnsLab {
    /** A temp directory for logs and files, removed with the rest. */
    readonly work: string;
    private readonly namespaces: string[] = [];
    private readonly children = new Set<ChildProcess>();

    constructor(workPrefix: string) {
        this.work = mkdtempSync(join(tmpdir(), `${workPrefix}-`));
        process.on("exit", this.remove);
        for (const signal of SIGNALS) process.on(signal, this.onSignal);
    }

    /** Creates namespace `ns` with its loopback up; it is deleted with the lab. */
    addNamespace(ns: string): void {
        must("ip", ["netns", "add", ns]);
        this.namespaces.push(ns);
        must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }

    /**
     * Names namespace `ns` resolves, as a Pi's /etc/hosts would: `ip netns exec` puts
     * /etc/netns/<ns>/hosts in place of /etc/hosts for what it runs. Removed with the namespace.
     */
    setHosts(ns: string, entries: Readonly<Record<string, string>>): void {
        if (!this.namespaces.includes(ns)) throw new Error(`setHosts: namespace ${ns} is not this lab's`);
        mkdirSync(join("/etc/netns", ns), { recursive: true });
        const lines = ["127.0.0.1 localhost", ...Object.entries(entries).map(([name, address]) => `${address} ${name}`)];
        writeFileSync(join("/etc/netns", ns, "hosts"), `${lines.join("\n")}\n`);
    }

    /** Creates namespace `ns` holding bridge `br0`, up: a switch hosts are plugged into with {@link addHost}. */
    addSwitch(ns: string): void {
        this.addNamespace(ns);
        must("ip", ["-n", ns, "link", "add", "br0", "type", "bridge"]);
        must("ip", ["-n", ns, "link", "set", "br0", "up"]);
    }

    /** Creates namespace `ns` as a host on `switchNs`'s bridge through `port`, with `cidr` on its eth0. */
    addHost(ns: string, switchNs: string, port: string, cidr: string): void {
        this.addNamespace(ns);
        must("ip", ["-n", switchNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        must("ip", ["-n", switchNs, "link", "set", port, "master", "br0", "up"]);
        must("ip", ["-n", ns, "addr", "add", cidr, "dev", "eth0"]);
        must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    }

    /**
     * A long-running process inside namespace `ns`, its output appended to `log`, in a process
     * group of its own so it goes with everything it forks. `ip netns exec` execs it, so the pid
     * is its own. `env` adds to this process's environment (secrets stay off command lines).
     */
    start(ns: string, log: string, args: string[], env: Record<string, string> = {}): ChildProcess {
        const fd = openSync(log, "a");
        const child = spawn("ip", ["netns", "exec", ns, ...args], { stdio: ["ignore", fd, fd], detached: true, env: { ...process.env, ...env } });
        closeSync(fd);
        return this.track(child);
    }

    /** Kills `child` (spawned detached) and its process group with the lab. */
    track<T extends ChildProcess>(child: T): T {
        this.children.add(child);
        child.on("exit", () => this.children.delete(child));
        return child;
    }

    /** Signals the child's process group and waits for the child to exit, SIGKILL after 3 s. */
    async stop(child: ChildProcess | undefined, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        killGroup(child, signal);
        await Promise.race([exited, sleep(3000).then(() => killGroup(child, "SIGKILL"))]);
        await exited;
    }

    /** Stops every process still running, as {@link stop} does. */
    async stopAll(): Promise<void> {
        await Promise.all([...this.children].map((c) => this.stop(c)));
    }

    /** Synchronous, so the exit hook can run it too; safe to call twice. Namespaces go in reverse order of creation. */
    readonly remove = (): void => {
        process.off("exit", this.remove);
        for (const signal of SIGNALS) process.off(signal, this.onSignal);
        for (const child of this.children) killGroup(child, "SIGKILL");
        this.children.clear();
        for (const ns of this.namespaces.splice(0).reverse()) {
            // Whatever a daemon left behind in the namespace (a forked-off helper outside its group).
            for (const pid of spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? []) {
                try {
                    process.kill(Number(pid), "SIGKILL");
                } catch {
                    // Already gone.
                }
            }
            spawnSync("ip", ["netns", "delete", ns]);
            rmSync(join("/etc/netns", ns), { recursive: true, force: true });
        }
        rmSync(this.work, { recursive: true, force: true });
    };

    private readonly onSignal = (signal: NodeJS.Signals): void => {
        this.remove();
        // With the handlers gone, the signal does what it would have done: end the process.
        process.kill(process.pid, signal);
    };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
        process.kill(-child.pid!, signal);
    } catch {
        // Already gone.
    }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every `intervalMs` until it returns true; it may return a string saying what it
 * saw instead. Resolves with the milliseconds it took; on timeout the error shows the last thing
 * seen and `context()` (logs, say).
 */
export async function waitFor(what: string, timeoutMs: number, check: () => boolean | string, options: { intervalMs?: number; context?: () => string } = {}): Promise<number> {
    const start = Date.now();
    let last: boolean | string = false;
    while (Date.now() - start < timeoutMs) {
        last = check();
        if (last === true) return Date.now() - start;
        await sleep(options.intervalMs ?? 200);
    }
    const seen = typeof last === "string" ? `; last saw: ${last}` : "";
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}${options.context ? `\n${options.context()}` : ""}`);
}
