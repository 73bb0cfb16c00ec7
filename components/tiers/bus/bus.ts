import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PiHost } from "../../host/piHost";
import { runRootScript, shipFile } from "../../host/remoteFiles";
import type { ClientEnvironment } from "../../runtime/workload";
import { TierArgs, TierComponent, hostOf, placedIdentities, replicaEndpoints } from "../tierComponent";
import type { BusConfig } from "./config";
import { BUS_CONFIG_DIR, NATS_EXPORTER_WORKLOAD, NATS_WORKLOAD, busEnvironment, busSpec, natsExporterWorkload, natsUsers, natsWorkload, passwordVariable, renderNatsConf, renderStreamsStep } from "./nats";

const KEY = "picloud:tiers.bus";

/** Arguments of {@link Bus}. */
export interface BusArgs extends TierArgs {
    /** Options under `picloud:tiers.bus`. */
    readonly options: BusConfig;
    /** Hosts by Pi name, for each node's nats.conf and the streams step. */
    readonly hosts: ReadonlyMap<string, PiHost>;
}

/**
 * The message bus: NATS with JetStream on three Pis (one on a smaller stack), each node's
 * nats.conf shipped before it starts, every user's password made here as a Pulumi secret and
 * given to the servers as environment; the streams step keeps the declared streams.
 */
export class Bus extends TierComponent {
    private readonly passwords = new Map<string, pulumi.Output<string>>();
    private readonly members: { address: string }[];
    private readonly options: BusConfig;

    constructor(name: string, args: BusArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:bus:Bus", name, opts);
        const { options } = args;
        this.options = options;
        const piHost = (pi: string) => hostOf(args.hosts, pi, KEY);
        const users = natsUsers(options);
        for (const u of users) this.passwords.set(u.user, new random.RandomPassword(`${name}-${u.account}-${u.user}-password`, { length: 40, special: false }, { parent: this }).result);
        const secretEnv = Object.fromEntries(users.map((u) => [passwordVariable(u.account, u.user), this.passwords.get(u.user)!]));

        const workload = natsWorkload(options, args.pis, secretEnv);
        const identities = placedIdentities(workload, args);
        this.members = identities;
        const shipped = identities.map((self) =>
            shipFile(`${name}-${self.pi}-nats-conf`, { connection: piHost(self.pi).connection, text: renderNatsConf(self, identities, options), remotePath: `${BUS_CONFIG_DIR}/nats.conf`, owner: "root" }, { parent: this, dependsOn: [piHost(self.pi).ready] }),
        );
        this.runWorkloads([workload], args, shipped);
        this.runWorkloads([natsExporterWorkload(options, args.pis, identities)], args);

        // The streams, once every node runs: each account's first user's password on stdin.
        const withStreams = Object.entries(options.accounts).filter(([, a]) => Object.keys(a.streams).length > 0);
        if (withStreams.length > 0) {
            const first = identities[0];
            const lines = withStreams.map(([account, a]) => {
                const user = Object.keys(a.users)[0];
                return pulumi.interpolate`${account} ${user} ${this.passwords.get(user)!}`;
            });
            runRootScript(
                `${name}-streams`,
                {
                    connection: piHost(first.pi).connection,
                    scriptName: "bus-streams.sh",
                    script: renderStreamsStep({ address: first.address, options, nodes: identities.length }),
                    stdin: pulumi.all(lines).apply((l) => l.join("\n") + "\n"),
                },
                { parent: this, dependsOn: this.replicas[NATS_WORKLOAD].map((m) => m.resource) },
            );
        }
        this.attach(busSpec(options, identities.length, replicaEndpoints(NATS_EXPORTER_WORKLOAD, options.exporterPort, args)), args.monitoring);
        this.registerOutputs({ nodes: identities.map((m) => `${m.address}:${options.clientPort}`), streams: withStreams.flatMap(([, a]) => Object.keys(a.streams)) });
    }

    /** What an app that names bus user `user` gets; throws naming the user when it is not declared. */
    userEnvironment(user: string): ClientEnvironment {
        const password = this.passwords.get(user);
        if (!password) throw new Error(`${KEY}.accounts: no user "${user}" is declared (users: ${[...this.passwords.keys()].join(", ") || "none"})`);
        return busEnvironment(this.members, this.options, user, password);
    }
}
