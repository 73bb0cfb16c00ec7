import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { ReplicaIdentity } from "../../components/runtime/workload";
import type { CacheConfig } from "../../components/tiers/cache/config";
import { CachePaths, MASTER_NAME, renderSentinelStart, renderValkeyConf, renderValkeyStart } from "../../components/tiers/cache/valkey";
import { NetnsLab, waitFor } from "./netnsLab";
import { run } from "./processes";

/** A namespaced Pi of the cache lab: a node and a Sentinel, as dev places one of each on each Pi. */
export interface CacheHost {
    readonly identity: ReplicaIdentity;
    readonly ns: string;
    readonly dir: string;
}

/**
 * The cache on namespaced Pis, as the host suite and the cache bench run it: Debian's Redis 7
 * standing in for Valkey, each node and Sentinel started by the start script picloud renders (the
 * Valkey-only settings left out), the password in their environment as the containers get it.
 */
export class ValkeyLab {
    readonly password = "lab-password-not-a-secret-0123456789";
    private readonly nodes = new Map<number, ChildProcess>();
    private readonly sentinels = new Map<number, ChildProcess>();

    constructor(
        readonly lab: NetnsLab,
        readonly options: CacheConfig,
        readonly hosts: readonly CacheHost[],
        readonly cloud = "dev",
    ) {}

    /** Paths for host `h`: its data and Sentinel file in its folder, Debian's programs. */
    paths(h: CacheHost): CachePaths {
        return { dataDir: path.join(h.dir, "data"), sentinelFile: path.join(h.dir, "sentinel.conf"), server: "redis-server", cli: "redis-cli" };
    }

    private get identities(): ReplicaIdentity[] {
        return this.hosts.map((h) => h.identity);
    }

    /** Writes host `h`'s files as picloud renders them, and returns the node's start script. */
    private files(h: CacheHost): { node: string; sentinel: string } {
        mkdirSync(path.join(h.dir, "data"), { recursive: true });
        const conf = path.join(h.dir, "valkey.conf");
        writeFileSync(conf, renderValkeyConf(h.identity, this.hosts.length, this.options, { server: "redis7", paths: this.paths(h) }));
        const node = path.join(h.dir, "valkey-start.sh");
        writeFileSync(node, renderValkeyStart({ self: h.identity, nodes: this.identities, sentinels: this.identities, options: this.options, configFile: conf, paths: this.paths(h) }));
        const sentinel = path.join(h.dir, "sentinel-start.sh");
        writeFileSync(sentinel, renderSentinelStart({ self: h.identity, nodes: this.identities, sentinels: this.identities, options: this.options, cloud: this.cloud, paths: this.paths(h) }));
        return { node, sentinel };
    }

    startNode(h: CacheHost): void {
        const { node } = this.files(h);
        this.nodes.set(h.identity.index, this.lab.start(h.ns, path.join(h.dir, "valkey.log"), ["sh", node], { VALKEY_PASSWORD: this.password }));
    }

    startSentinel(h: CacheHost): void {
        const { sentinel } = this.files(h);
        this.sentinels.set(h.identity.index, this.lab.start(h.ns, path.join(h.dir, "sentinel.log"), ["sh", sentinel], { VALKEY_PASSWORD: this.password }));
    }

    /** SIGKILLs host `h`'s node, as a Pi losing power does to it. */
    async killNode(h: CacheHost): Promise<void> {
        await this.lab.stop(this.nodes.get(h.identity.index), "SIGKILL");
    }

    /** redis-cli in `from`'s namespace against `to`'s node (or Sentinel), authenticated as a client is. */
    cli(from: CacheHost, to: Pick<ReplicaIdentity, "address">, port: number, args: string[], timeoutSeconds = 3, password: string | null = this.password): { status: number | null; out: string } {
        const r = run("ip", ["netns", "exec", from.ns, "timeout", String(timeoutSeconds), "redis-cli", "--no-auth-warning", "-h", to.address, "-p", String(port), "--raw", ...args], undefined, password === null ? {} : { REDISCLI_AUTH: password });
        return { status: r.status, out: r.stdout.trim() || r.stderr.trim() };
    }

    node(from: CacheHost, to: CacheHost, args: string[]): string {
        return this.cli(from, to.identity, this.options.port, args).out;
    }

    /** The primary the first Sentinel that answers names, as a client asks, or undefined. */
    master(from: CacheHost): string | undefined {
        for (const s of this.hosts) {
            const r = this.cli(from, s.identity, this.options.sentinelPort, ["SENTINEL", "get-master-addr-by-name", MASTER_NAME], 2);
            const [ip] = r.out.split("\n");
            if (r.status === 0 && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) return ip;
        }
        return undefined;
    }

    /** `key` set through the primary the Sentinels name, as a Sentinel-aware client does; true when acknowledged. */
    write(from: CacheHost, key: string, value: string): boolean {
        const ip = this.master(from);
        if (!ip) return false;
        return this.cli(from, { address: ip }, this.options.port, ["SET", key, value], 2).out === "OK";
    }

    /** Role of host `h`'s node, from INFO replication: "master", "slave" or what it answered. */
    role(h: CacheHost): string {
        return /role:(\w+)/.exec(this.node(h, h, ["INFO", "replication"]))?.[1] ?? "down";
    }

    /** Waits until host `primary`'s node leads every other, each linked. */
    async settled(primary: CacheHost, timeoutMs = 60_000): Promise<void> {
        await waitFor(`${primary.identity.address} to lead ${this.hosts.length - 1} linked replicas`, timeoutMs, () => {
            const info = this.node(primary, primary, ["INFO", "replication"]);
            const linked = this.hosts.filter((h) => h !== primary).every((h) => /master_link_status:up/.test(this.node(h, h, ["INFO", "replication"])));
            return (/role:master/.test(info) && new RegExp(`connected_slaves:${this.hosts.length - 1}`).test(info) && linked) || info.replace(/\s+/g, " ").slice(0, 120);
        }, { intervalMs: 500, context: () => this.logs() });
    }

    /** Waits until every Sentinel names `primary` and knows its peers. */
    async sentinelsAgree(primary: CacheHost, timeoutMs = 60_000): Promise<void> {
        await waitFor(`every Sentinel to name ${primary.identity.address} and know ${this.hosts.length - 1} peers`, timeoutMs, () => {
            const seen = this.hosts.map((s) => this.cli(s, s.identity, this.options.sentinelPort, ["SENTINEL", "master", MASTER_NAME]).out.split("\n"));
            const field = (lines: string[], name: string) => lines[lines.indexOf(name) + 1];
            return seen.every((l) => field(l, "ip") === primary.identity.address && field(l, "num-other-sentinels") === String(this.hosts.length - 1)) || JSON.stringify(seen.map((l) => [field(l, "ip"), field(l, "num-other-sentinels")]));
        }, { intervalMs: 500, context: () => this.logs() });
    }

    /** The host whose node is `address`. */
    host(address: string): CacheHost {
        const h = this.hosts.find((x) => x.identity.address === address);
        if (!h) throw new Error(`no cache host at ${address}`);
        return h;
    }

    /**
     * Kills the primary and writes through the Sentinels' primary from `client` every 100 ms
     * until a write is acknowledged again: the milliseconds from the kill to that write, and the
     * new primary.
     */
    async failover(client: CacheHost, timeoutMs = 60_000): Promise<{ ms: number; primary: CacheHost; old: CacheHost }> {
        const old = this.host(this.master(client)!);
        await this.killNode(old);
        const killed = Date.now();
        let n = 0;
        await waitFor("a write acknowledged after the primary was killed", timeoutMs, () => this.write(client, `after-kill-${n++}`, "x"), { intervalMs: 100, context: () => this.logs() });
        return { ms: Date.now() - killed, primary: this.host(this.master(client)!), old };
    }

    /** What host `h`'s node start scripts printed, across its starts. */
    nodeLog(h: CacheHost): string {
        return run("cat", [path.join(h.dir, "valkey.log")]).stdout;
    }

    logs(): string {
        return this.hosts.map((h) => `${h.identity.address}: ${run("tail", ["-n", "15", path.join(h.dir, "valkey.log"), path.join(h.dir, "sentinel.log")]).stdout}`).join("\n");
    }
}
