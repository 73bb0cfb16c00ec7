import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PiHost } from "../../host/piHost";
import { runRootScript, shipFile, shipSecret } from "../../host/remoteFiles";
import type { ClientEnvironment, ReplicaIdentity } from "../../runtime/workload";
import { TierArgs, TierComponent, hostOf, placedIdentities } from "../tierComponent";
import type { RabbitmqConfig } from "./config";
import {
    RABBITMQ_CONFIG_DIR,
    RABBITMQ_FILES,
    RABBITMQ_UID,
    RABBITMQ_WORKLOAD,
    containerCli,
    rabbitmqDefinitions,
    rabbitmqEnvironment,
    rabbitmqSpec,
    rabbitmqUsers,
    rabbitmqWorkload,
    renderDefinitionsStep,
    renderEnabledPlugins,
    renderInetrc,
    renderRabbitmqConf,
} from "./rabbitmq";

const KEY = "picloud:tiers.bus.rabbitmq";

/** Arguments of {@link RabbitmqCluster}. */
export interface RabbitmqClusterArgs extends TierArgs {
    /** Options under `picloud:tiers.bus.rabbitmq`. */
    readonly options: RabbitmqConfig;
    /** Hosts by Pi name, for each node's files and the definitions step. */
    readonly hosts: ReadonlyMap<string, PiHost>;
}

/**
 * The bus's RabbitMQ option: RabbitMQ nodes on three Pis, each with its rabbitmq.conf, plugins,
 * resolver file and the cluster's Erlang cookie (a Pulumi secret, a file only the rabbitmq user
 * reads) shipped before it starts; every user's password made here as a Pulumi secret and given
 * to the cluster on the definitions step's stdin, with the virtual hosts and quorum queues.
 */
export class RabbitmqCluster extends TierComponent {
    private readonly passwords = new Map<string, pulumi.Output<string>>();
    private readonly members: readonly ReplicaIdentity[];
    private readonly options: RabbitmqConfig;

    constructor(name: string, args: RabbitmqClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:bus:RabbitmqCluster", name, opts);
        const { options } = args;
        this.options = options;
        const piHost = (pi: string) => hostOf(args.hosts, pi, KEY);
        for (const { user } of rabbitmqUsers(options)) this.passwords.set(user, new random.RandomPassword(`${name}-${user}-password`, { length: 40, special: false }, { parent: this }).result);
        // The cookie authenticates nodes and the CLI to each other; it never changes once made.
        const cookie = new random.RandomPassword(`${name}-erlang-cookie`, { length: 48, special: false }, { parent: this }).result;

        const workload = rabbitmqWorkload(options, args.pis);
        const identities = placedIdentities(workload, args);
        this.members = identities;
        const files: [keyof typeof RABBITMQ_FILES, string][] = [
            ["conf", renderRabbitmqConf(identities, options)],
            ["plugins", renderEnabledPlugins()],
            ["inetrc", renderInetrc(args.pis)],
        ];
        const shipped = identities.flatMap((self) => {
            const { connection, ready } = piHost(self.pi);
            const at = (f: keyof typeof RABBITMQ_FILES) => `${RABBITMQ_CONFIG_DIR}/${RABBITMQ_FILES[f].file}`;
            return [
                ...files.map(([f, text]) => shipFile(`${name}-${self.pi}-${RABBITMQ_FILES[f].file}`, { connection, text, remotePath: at(f), owner: "root" }, { parent: this, dependsOn: [ready] })),
                shipSecret(`${name}-${self.pi}-erlang-cookie`, { connection, secret: cookie, remotePath: at("cookie"), owner: { uid: RABBITMQ_UID, gid: RABBITMQ_UID }, mode: "0400" }, { parent: this, dependsOn: [ready] }),
            ];
        });
        this.runWorkloads([workload], args, shipped);

        // The definitions, once every node runs: the passwords inside, on stdin only.
        const first = identities[0];
        const passwords = pulumi.all(Object.fromEntries(this.passwords));
        runRootScript(
            `${name}-definitions`,
            {
                connection: piHost(first.pi).connection,
                scriptName: "bus-rabbitmq-definitions.sh",
                script: renderDefinitionsStep({ cli: containerCli(`${RABBITMQ_WORKLOAD}-${first.index}`), options, nodes: identities.length }),
                stdin: passwords.apply((p) => JSON.stringify(rabbitmqDefinitions(options, identities.length, p))),
            },
            { parent: this, dependsOn: this.replicas[RABBITMQ_WORKLOAD].map((m) => m.resource) },
        );
        this.attach(rabbitmqSpec(options, identities.length, identities.map((m) => `${m.address}:${options.prometheusPort}`)), args.monitoring);
        this.registerOutputs({ nodes: identities.map((m) => `${m.address}:${options.amqpPort}`), queues: Object.values(options.vhosts).flatMap((v) => Object.keys(v.queues)) });
    }

    /** What an app that names RabbitMQ user `user` gets; throws naming the user when it is not declared (rabbitmqEnvironment). */
    userEnvironment(user: string): ClientEnvironment {
        return rabbitmqEnvironment(this.members, this.options, user, this.passwords.get(user)!);
    }
}
