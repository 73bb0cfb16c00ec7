/**
 * Garage for real in namespaced Pis: nodes started on exactly the garage.toml picloud renders
 * (their data folder moved to the test's work directory), the RPC secret and admin token in their
 * environment as the containers get them, the cluster's init step as rendered, and S3 requests
 * signed with SigV4 as any client signs them. Shared by the blob storage test and the database's
 * backups test.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { BlobConfig } from "../../components/tiers/blob/config";
import { garageZone, renderGarageInit, renderGarageToml } from "../../components/tiers/blob/garage";
import type { ReplicaIdentity } from "../../components/runtime/workload";
import type { NetnsLab } from "./netnsLab";
import { run, runAsync } from "./processes";
import { validator } from "./validators";

/** A Garage node: who it is, the namespace it runs in and its folder. */
export interface GarageNode {
    readonly identity: ReplicaIdentity;
    readonly ns: string;
    readonly dir: string;
    process?: ChildProcess;
}

/** An access key as picloud makes it with @pulumi/random: a Garage-shaped id and a secret. */
export interface GarageKey {
    readonly name: string;
    readonly id: string;
    readonly secret: string;
}
export const garageKey = (name: string): GarageKey => ({ name, id: `GK${randomBytes(12).toString("hex")}`, secret: randomBytes(32).toString("hex") });

export class GarageLab {
    // What picloud makes with @pulumi/random, in the form Garage takes.
    readonly rpcSecret = randomBytes(32).toString("hex");
    readonly adminToken = randomBytes(20).toString("hex");

    constructor(
        private readonly lab: NetnsLab,
        readonly options: BlobConfig,
        readonly nodes: readonly GarageNode[],
    ) {
        for (const n of nodes) {
            mkdirSync(n.dir, { recursive: true });
            writeFileSync(this.toml(n), renderGarageToml(n.identity, nodes.length, options, n.dir));
        }
    }

    toml(n: GarageNode): string {
        return path.join(n.dir, "garage.toml");
    }

    /** The secrets' environment, as a node's container and its CLI get it. */
    env(): Record<string, string> {
        return { GARAGE_RPC_SECRET: this.rpcSecret, GARAGE_ADMIN_TOKEN: this.adminToken };
    }

    start(n: GarageNode): void {
        n.process = this.lab.start(n.ns, path.join(n.dir, "garage.log"), [validator("garage"), "-c", this.toml(n), "server"], this.env());
    }

    /** The last lines of each node's log. */
    logs(lines = 6): string {
        return this.nodes.map((n) => `node ${n.identity.index}:\n${tail(path.join(n.dir, "garage.log"), lines)}`).join("\n");
    }

    /** The init step as the component renders it, with Garage's CLI against node 0 instead of `docker exec`; asynchronous, as it waits. */
    initStep(keys: readonly GarageKey[], declared: BlobConfig = this.options) {
        const first = this.nodes[0];
        const script = path.join(first.dir, "init.sh");
        writeFileSync(
            script,
            renderGarageInit({
                garage: [validator("garage"), "-c", this.toml(first)],
                nodes: this.nodes.map((n) => ({ address: n.identity.address, zone: garageZone(n.identity) })),
                options: declared,
                buckets: Object.keys(declared.buckets),
                keys: keys.map((k) => ({ name: k.name, buckets: declared.keys[k.name].buckets })),
                peerListFile: path.join(first.dir, "meta", "peer_list"),
                waitSeconds: 90,
            }),
        );
        const stdin = [this.adminToken, ...keys.map((k) => `${k.name} ${k.id} ${k.secret}`)].join("\n") + "\n";
        return runAsync("ip", ["netns", "exec", first.ns, "bash", script], stdin, this.env());
    }

    /** An S3 request signed with SigV4 as any client signs it, through node `via`; `upload` PUTs. */
    s3(via: GarageNode, key: Pick<GarageKey, "id" | "secret">, object: string, upload?: string) {
        const url = `http://${via.identity.address}:${this.options.s3Port}/${object}`;
        const args = ["netns", "exec", via.ns, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--aws-sigv4", `aws:amz:${this.options.region}:s3`, "--user", `${key.id}:${key.secret}`];
        if (upload !== undefined) args.push("--data-binary", "@-", "-X", "PUT");
        const r = run("ip", [...args, url], upload);
        const lines = r.stdout.split("\n");
        return { code: Number(lines.pop()), body: lines.join("\n"), stderr: r.stderr };
    }

    /** Whether node `n` reports the cluster healthy. */
    healthy(n: GarageNode): boolean {
        return run("ip", ["netns", "exec", n.ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${n.identity.address}:${this.options.adminPort}/health`]).stdout === "200";
    }
}

export function tail(file: string, lines = 6): string {
    try {
        return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}
