import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { type ReplicaIdentity, replicaIdentities } from "../../components/runtime/workload";
import type { BusConfig } from "../../components/tiers/bus/config";
import { NATS_DATA_IN_CONTAINER, NATS_WORKLOAD, natsUsers, passwordVariable, renderNatsConf, renderStreamsStep } from "../../components/tiers/bus/nats";
import type { NetnsLab } from "./netnsLab";
import { type Run, run, runAsync } from "./processes";
import { validator } from "./validators";

/** A namespaced Pi of the NATS lab. */
export interface NatsNode {
    readonly identity: ReplicaIdentity;
    readonly ns: string;
    readonly dir: string;
}

/**
 * NATS on namespaced Pis, as the host suite and the bus bench run it: nats-server (built from its
 * module at the image's version) on the nats.conf picloud renders, its store moved into the lab,
 * every declared user's password in its environment as the container gets it (one lab password).
 */
export class NatsLab {
    readonly password = "lab-password-not-a-secret-0123456789";
    readonly nodes: NatsNode[];
    private readonly servers = new Map<number, ChildProcess>();

    constructor(
        readonly lab: NetnsLab,
        readonly options: BusConfig,
        prefix: string,
        addresses: readonly string[],
    ) {
        const identities = replicaIdentities({ name: NATS_WORKLOAD, data: { containerPath: NATS_DATA_IN_CONTAINER } }, addresses.map((_, i) => `pi-${i + 1}`), (pi) => addresses[Number(pi.slice(3)) - 1]);
        this.nodes = identities.map((identity) => ({ identity, ns: `${prefix}${identity.index}`, dir: path.join(lab.work, `${prefix}node-${identity.index}`) }));
    }

    /** The namespaces on a switch of their own, each with its node's address. */
    network(switchNs: string, prefixLength = 24): void {
        this.lab.addSwitch(switchNs);
        this.nodes.forEach((n, i) => this.lab.addHost(n.ns, switchNs, `port${i}`, `${n.identity.address}/${prefixLength}`));
    }

    start(i: number): void {
        const n = this.nodes[i];
        mkdirSync(path.join(n.dir, "store"), { recursive: true });
        const conf = path.join(n.dir, "nats.conf");
        writeFileSync(conf, renderNatsConf(n.identity, this.nodes.map((x) => x.identity), this.options, { dataDir: path.join(n.dir, "store") }));
        const env = Object.fromEntries(natsUsers(this.options).map((u) => [passwordVariable(u.account, u.user), this.password]));
        this.servers.set(i, this.lab.start(n.ns, path.join(n.dir, "nats.log"), [validator("nats-server"), "--config", conf], env));
    }

    async kill(i: number): Promise<void> {
        await this.lab.stop(this.servers.get(i), "SIGKILL");
    }

    /** Every node's client URL. */
    get urls(): string {
        return this.nodes.map((n) => `nats://${n.identity.address}:${this.options.clientPort}`).join(",");
    }

    /** The NATS CLI in node `via`'s namespace as `user`, its password in the environment. */
    nats(via: number, user: string, args: string[]): { status: number | null; out: string } {
        const r = run("ip", ["netns", "exec", this.nodes[via].ns, "timeout", "10", validator("nats"), "--server", this.urls, "--timeout", "3s", ...args], undefined, { NATS_USER: user, NATS_PASSWORD: this.password });
        return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
    }

    /** The rendered streams step, run in the first node's namespace, each account's first user's password on stdin. */
    streamsStep(): Promise<Run> {
        const script = path.join(this.lab.work, `${this.nodes[0].ns}-bus-streams.sh`);
        writeFileSync(script, renderStreamsStep({ address: this.nodes[0].identity.address, options: this.options, nodes: this.nodes.length }));
        const stdin = Object.entries(this.options.accounts).map(([account, a]) => `${account} ${Object.keys(a.users)[0]} ${this.password}`);
        return runAsync("ip", ["netns", "exec", this.nodes[0].ns, "bash", script], `${stdin.join("\n")}\n`);
    }

    logs(): string {
        return this.nodes.map((n) => `${n.identity.address}: ${run("tail", ["-n", "15", path.join(n.dir, "nats.log")]).stdout}`).join("\n");
    }
}
