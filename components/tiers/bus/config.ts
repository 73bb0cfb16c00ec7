import { z } from "zod";
import { cores, dnsLabel, expected, intIn, port, record, strictObject } from "../../config/fields";

/** The message bus's part of the config: `picloud:tiers.bus`. Pure: the config layer reads it (see test/layers.test.ts). */

/** A NATS subject a stream takes: tokens of letters, digits, '-' and '_', separated by '.', with `*` and a last `>` as wildcards. */
const subject = () => {
    const rule = expected("a NATS subject such as orders.* or events.>");
    return z.string(rule).regex(/^([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$|^>$/, rule);
};

/** A stream's name: letters, digits, '-' and '_' (NATS forbids '.', '*', '>' and spaces in it). */
const streamName = () => {
    const rule = expected("a stream name: 1 to 64 letters, digits, '-' and '_'");
    return z.string(rule).regex(/^[A-Za-z0-9_-]{1,64}$/, rule);
};

/** How often JetStream fsyncs: "always" (before every acknowledgement), or a Go duration such as "2m" (NATS's default). */
const syncInterval = () => {
    const rule = expected('"always", or a duration such as 2m or 30s');
    return z.string(rule).regex(/^(always|[1-9][0-9]*(ms|s|m|h))$/, rule);
};

/** A group's users (a NATS account's, a RabbitMQ virtual host's), by name: each gets a password picloud makes. */
const users = () => record("a user name: a lowercase DNS label", dnsLabel("a user name"), strictObject({}, "user options").prefault({}), "a map of user name to options").default({});

/** A RabbitMQ queue's name picloud declares: letters, digits, '-', '_' and '.', not amq.* (RabbitMQ keeps those). */
const queueName = () => {
    const rule = expected("a queue name: 1 to 128 letters, digits, '-', '_' and '.', not starting with amq.");
    return z.string(rule).regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, rule).refine((s) => !s.startsWith("amq."), rule);
};

/**
 * The RabbitMQ option, beside NATS: RabbitMQ 4 on three Pis (one on a smaller stack), every
 * declared queue a quorum queue on min(3, nodes) of them, its Raft WAL and memory watermark sized
 * for a Pi.
 */
export const rabbitmqSchema = strictObject(
    {
        /** Quorum queues fsync every write: nodes go to SSD Pis only, unless this is true; default false. */
        allowSdCard: z.boolean(expected("true or false")).default(false),
        /** Nodes: default three where the stack has three Pis or more, else one. Raft wants an odd number. */
        nodes: z.union([z.literal(1), z.literal(3), z.literal(5)], expected("1, 3 or 5")).optional(),
        /** Memory limit per node, MB; default 1024. */
        memoryMb: intIn(512, 16384, " of MB").default(1024),
        /** CPU limit per node in cores; default 0.5. */
        cpus: cores(0.25, 4).default(0.5),
        /**
         * The share of memoryMb above which RabbitMQ blocks publishers (its memory alarm) until
         * consumers catch up; default 0.4, since the Erlang VM may briefly take twice what it uses.
         */
        memoryWatermark: z.number(expected("a fraction between 0.2 and 0.7")).min(0.2, expected("a fraction between 0.2 and 0.7")).max(0.7, expected("a fraction between 0.2 and 0.7")).default(0.4),
        /**
         * The quorum queues' shared write-ahead log, MB: RabbitMQ keeps up to this much in memory
         * before it rolls the log over. RabbitMQ's default, 512, costs gigabytes of RAM on a busy
         * node; default 64.
         */
        walMaxMb: intIn(8, 512, " of MB").default(64),
        /** Free disk, MB, below which RabbitMQ blocks publishers (its disk alarm); default 1024. */
        diskFreeLimitMb: intIn(50, 1_000_000, " of MB").default(1024),
        /** AMQP's port for clients; default 5672. */
        amqpPort: port().default(5672),
        /** Erlang distribution between nodes (and the CLI on each node); default 25672. */
        distPort: port().default(25672),
        /** The Prometheus plugin's port; default 15692. */
        prometheusPort: port().default(15692),
        /**
         * Virtual hosts, by name: each isolated from the others, with its users (each gets a
         * password picloud makes and full rights on its virtual host) and its queues (each a quorum
         * queue, created when missing and never deleted).
         */
        vhosts: record(
            "a virtual host name: a lowercase DNS label",
            dnsLabel("a virtual host name"),
            strictObject(
                {
                    users: users(),
                    queues: record(
                        "a queue name",
                        queueName(),
                        strictObject(
                            {
                                /** Space the queue's messages may take, MB; once full it refuses new ones (publishers get a nack). Default 256. */
                                maxMb: intIn(1, 1_000_000, " of MB").default(256),
                                /** Deliveries of a message before it is dropped (a poison message stops coming back); default 20. */
                                deliveryLimit: intIn(1, 10_000).default(20),
                            },
                            "queue options",
                        ),
                        "a map of queue name to options",
                    ).default({}),
                },
                "virtual host options",
            ),
            "a map of virtual host name to options",
        ).default({}),
    },
    "the RabbitMQ option",
);

/** Validated RabbitMQ options. */
export type RabbitmqConfig = z.output<typeof rabbitmqSchema>;

/** The message bus: NATS with JetStream, three nodes where there are three Pis or more. */
export const busSchema = strictObject(
    {
        /** With syncInterval "always" every message is fsynced: nodes go to SSD Pis only, unless this is true; default false. */
        allowSdCard: z.boolean(expected("true or false")).default(false),
        /** Nodes: default three where the stack has three Pis or more, else one. JetStream's Raft wants an odd number. */
        nodes: z.union([z.literal(1), z.literal(3), z.literal(5)], expected("1, 3 or 5")).optional(),
        /** Memory limit per node, MB; GOMEMLIMIT is four fifths of it, in-memory streams a quarter. Default 512. */
        memoryMb: intIn(128, 16384, " of MB").default(512),
        /** CPU limit per node in cores; default 0.5. */
        cpus: cores(0.1, 4).default(0.5),
        /** Disk each node's streams may fill, GB (JetStream's max_file_store); default 10. */
        storeGb: intIn(1, 100_000, " of GB").default(10),
        /**
         * JetStream's fsync: "always" (default) acknowledges a message only once it is on disk, so
         * a power cut of every Pi loses nothing acknowledged; NATS's own default, "2m", may lose
         * up to two minutes of them on every node at once.
         */
        syncInterval: syncInterval().default("always"),
        /** Clients' port; default 4222. */
        clientPort: port().default(4222),
        /** Routes between nodes; default 6222. */
        clusterPort: port().default(6222),
        /** The HTTP monitoring port the exporter reads; default 8222. */
        monitorPort: port().default(8222),
        /** prometheus-nats-exporter's port beside each node; default 7777. */
        exporterPort: port().default(7777),
        /**
         * Accounts, by name: each is isolated from the others (its own subjects and streams), with
         * its users (each gets a password picloud makes) and its streams (each on min(3, nodes)
         * nodes, created when missing and never deleted).
         */
        accounts: record(
            "an account name: a lowercase DNS label",
            dnsLabel("an account name"),
            strictObject(
                {
                    users: users(),
                    streams: record(
                        "a stream name",
                        streamName(),
                        strictObject(
                            {
                                subjects: z.array(subject(), expected("a list of subjects")).min(1, expected("at least one subject")),
                                /** Hours a message is kept; default 168 (a week). */
                                maxAgeHours: intIn(1, 24 * 3650).default(168),
                                /** Space the stream may take, MB; default 1024. Oldest messages go first. */
                                maxMb: intIn(1, 10_000_000, " of MB").default(1024),
                            },
                            "stream options",
                        ),
                        "a map of stream name to options",
                    ).default({}),
                },
                "account options",
            ),
            "a map of account name to options",
        ).default({}),
        /** RabbitMQ beside NATS, for apps that speak AMQP: see {@link rabbitmqSchema}. */
        rabbitmq: rabbitmqSchema.optional(),
    },
    "the message bus",
);

/** Validated bus options. */
export type BusConfig = z.output<typeof busSchema>;
