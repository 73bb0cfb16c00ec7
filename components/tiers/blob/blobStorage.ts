import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { BlobConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { runRootScript, shipFile } from "../../host/remoteFiles";
import { TierArgs, TierComponent, hostOf, placedIdentities } from "../tierComponent";
import type { EdgeBackend } from "../loadBalancer/specs";
import { BlobEnvironment, GARAGE_CONFIG_DIR, GARAGE_WORKLOAD, blobBackend, blobEndpoint, blobSpec, garageWorkload, garageZone, renderGarageInit, renderGarageToml } from "./garage";

/** Arguments of {@link BlobStorage}. */
export interface BlobStorageArgs extends TierArgs {
    /** Options under `picloud:tiers.blob`. */
    readonly options: BlobConfig;
    /** Hosts by Pi name, for each node's garage.toml and the init step. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** The service registry's zone, when the stack has one: clients reach S3 by `s3.blob.<zone>`. */
    readonly zone?: string;
}

/**
 * Blob storage: Garage on three SSD Pis (or `nodes`), each node's metadata and blocks in its data
 * folder on its Pi, min(3, nodes) copies of each object in distinct zones, quorum reads and
 * writes. The RPC secret, the admin token and each access key's secret are made here as Pulumi
 * secrets; the init step on the first node's Pi connects the nodes, applies the layout and keeps
 * the declared buckets and keys.
 */
export class BlobStorage extends TierComponent {
    /** S3 behind the load balancer, when `loadBalancer` asks for it. */
    readonly edge?: EdgeBackend;
    /** Where clients reach S3. */
    readonly endpoint: string;
    /** The admin API's bearer token (a secret). */
    readonly adminToken: pulumi.Output<string>;
    private readonly keyEnvironments = new Map<string, BlobEnvironment>();

    constructor(name: string, args: BlobStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:blob:BlobStorage", name, opts);
        const { options } = args;
        const piHost = (pi: string) => hostOf(args.hosts, pi, "picloud:tiers.blob");
        // 32 random bytes in hex, as Garage wants its RPC secret.
        const rpcSecret = new random.RandomBytes(`${name}-rpc-secret`, { length: 32 }, { parent: this }).hex;
        this.adminToken = new random.RandomPassword(`${name}-admin-token`, { length: 40, special: false }, { parent: this }).result;

        // Each node's garage.toml before it starts; a changed one restarts nothing by itself (Garage reads it at start).
        const workload = garageWorkload(options, args.pis, { GARAGE_RPC_SECRET: rpcSecret, GARAGE_ADMIN_TOKEN: this.adminToken });
        const nodes = workload.replicas!;
        const identities = placedIdentities(workload, args);
        const shipped = identities.map((self) =>
            shipFile(`${name}-${self.pi}-garage-toml`, { connection: piHost(self.pi).connection, text: renderGarageToml(self, nodes, options), remotePath: `${GARAGE_CONFIG_DIR}/garage.toml`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
        );
        this.runWorkloads([workload], args, shipped);
        const members = this.replicas[GARAGE_WORKLOAD];
        const first = identities[0];

        // The keys: a Garage-shaped id (GK + 24 hex digits, public) and a secret, each made once.
        const keys = Object.entries(options.keys).map(([keyName, key]) => {
            const id = new random.RandomId(`${name}-key-${keyName}-id`, { byteLength: 12 }, { parent: this }).hex.apply((h) => `GK${h}`);
            const secret = new random.RandomBytes(`${name}-key-${keyName}-secret`, { length: 32 }, { parent: this }).hex;
            return { name: keyName, id, secret, buckets: key.buckets };
        });
        this.endpoint = blobEndpoint(options, identities, args.zone);
        for (const key of keys) {
            this.keyEnvironments.set(key.name, {
                env: { AWS_ENDPOINT_URL_S3: this.endpoint, AWS_REGION: options.region },
                secretEnv: { AWS_ACCESS_KEY_ID: key.id, AWS_SECRET_ACCESS_KEY: key.secret },
            });
        }

        // The init and join step, once every node runs: the token and the keys on stdin.
        const keyLines = keys.map((k) => pulumi.interpolate`${k.name} ${k.id} ${k.secret}`);
        const stdin = pulumi.all([this.adminToken, ...keyLines]).apply((lines) => lines.join("\n") + "\n");
        runRootScript(
            `${name}-init`,
            {
                connection: piHost(first.pi).connection,
                scriptName: "blob-garage-init.sh",
                script: renderGarageInit({
                    garage: ["docker", "exec", `${GARAGE_WORKLOAD}-${first.index}`, "/garage"],
                    nodes: identities.map((m) => ({ address: m.address, zone: garageZone(m) })),
                    options,
                    buckets: Object.keys(options.buckets),
                    keys: keys.map((k) => ({ name: k.name, buckets: k.buckets })),
                    peerListFile: `${first.dataPath}/meta/peer_list`,
                }),
                stdin,
            },
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );
        this.edge = blobBackend(options, identities);
        this.attach(blobSpec(options, identities), args.monitoring);
        this.registerOutputs({ endpoint: this.endpoint, nodes: identities.map((m) => `${m.address}:${options.s3Port}`), buckets: Object.keys(options.buckets) });
    }

    /** The environment an app that names key `name` gets; throws naming the key when it is not declared. */
    keyEnvironment(name: string): BlobEnvironment {
        const env = this.keyEnvironments.get(name);
        if (!env) throw new Error(`picloud:tiers.blob.keys: no key "${name}" is declared (keys: ${[...this.keyEnvironments.keys()].join(", ") || "none"})`);
        return env;
    }
}
