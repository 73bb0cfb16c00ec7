import { z } from "zod";
import { bucketName, cores, dnsLabel, expected, intIn, onCalendar, port, record, strictObject } from "../../config/fields";

/** The database tier's part of the config: `picloud:tiers.database`. Pure: the config layer reads it (see test/layers.test.ts). */

/** A PostgreSQL identifier picloud creates (a database or a role): lowercase, so it never needs quoting. */
const identifier = (what: string) => {
    const rule = expected(`${what}: 1 to 63 lowercase letters, digits and '_', starting with a letter`);
    return z.string(rule).regex(/^[a-z][a-z0-9_]{0,62}$/, rule).refine((s) => !s.startsWith("pg_") && !RESERVED_ROLES.has(s), expected(`${what} that is not reserved (pg_*, ${[...RESERVED_ROLES].join(", ")})`));
};

/** Roles picloud and PostgreSQL keep for themselves. */
export const RESERVED_ROLES = new Set(["postgres", "replicator", "rewind", "picloud_monitor", "public"]);

/** A Cassandra keyspace picloud creates: lowercase, never quoted, not one of Cassandra's own. */
const keyspaceName = () => {
    const rule = expected("a keyspace name: 1 to 48 lowercase letters, digits and '_', starting with a letter, not system*");
    return z.string(rule).regex(/^[a-z][a-z0-9_]{0,47}$/, rule).refine((s) => !s.startsWith("system"), rule);
};

/** Days of the week as systemd and `date +%a` name them. */
export const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;

/** A point in time to restore to: "latest" (all archived WAL), or an ISO 8601 time with its zone. */
const restoreTarget = () => {
    const rule = expected('"latest" or an ISO 8601 time with its zone, such as 2026-12-02T10:30:00Z');
    return z
        .string(rule)
        .regex(/^(latest|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2}))$/, rule)
        .refine((s) => s === "latest" || !Number.isNaN(Date.parse(s)), rule);
};

/** The database tier: PostgreSQL 17 with Patroni, its leader elected in the service registry's etcd. */
export const databaseSchema = strictObject(
    {
        /** PostgreSQL fsyncs its WAL on every commit: members go to SSD Pis only, unless this is true; default false. */
        allowSdCard: z.boolean(expected("true or false")).default(false),
        /** Members: one primary, the rest standbys; default three, or as many Pis as may carry one when fewer. */
        members: intIn(1, 5).optional(),
        /**
         * A commit is acknowledged only once a standby has it too, so failover loses no acknowledged
         * write (Patroni's synchronous_mode). Default: on with two standbys or more, where one of them
         * may be down without stopping writes.
         */
        synchronousMode: z.boolean(expected("true or false")).optional(),
        /** Memory limit per member, MB; shared_buffers is a quarter of it. Default 1024. */
        memoryMb: intIn(256, 16384, " of MB").default(1024),
        /** CPU limit per member in cores; default 0.5, so three members fit beside the other tiers' own on 4-core Pis. */
        cpus: cores(0.25, 4).default(0.5),
        /** Connections each member accepts (max_connections); default 100. */
        maxConnections: intIn(20, 1000).default(100),
        /** PostgreSQL's port on each member; default 5432. */
        port: port().default(5432),
        /** Patroni's REST API on each member (health, role, metrics); default 8008. */
        restApiPort: port().default(8008),
        /** postgres_exporter's metrics port; default 9187. */
        exporterPort: port().default(9187),
        /** Seconds the leader's lock lives without renewal: how long a dead primary goes unnoticed at most; default 20, Patroni's least. */
        leaderTtlSeconds: intIn(20, 300, " of seconds").default(20),
        /** Ports the load balancer serves the primary (read-write) and the standbys (read-only) on, when the stack has one; defaults 5000 and 5001 (5432 is the members' own, on Pis that may carry both). */
        loadBalancer: strictObject({ primaryPort: port().default(5000), replicasPort: port().default(5001) }, "the database's load-balancer ports").prefault({}),
        /** Databases, by name, each with its owner role (declared under `roles`). Created when missing, never dropped. */
        databases: record("a database name", identifier("a database name"), strictObject({ owner: identifier("a role name") }, "database options"), "a map of database name to options").default({}),
        /** Login roles, by name; each gets a password picloud makes. Created when missing, never dropped. */
        roles: record("a role name", identifier("a role name"), strictObject({}, "role options").prefault({}), "a map of role name to role options").default({}),
        /** Replication lag, seconds, above which a standby alerts; default 30. */
        maxLagSeconds: intIn(1, 86400, " of seconds").default(30),
        /**
         * Backups with pgBackRest into a bucket of blob storage: WAL archived continuously (at
         * least every `archiveTimeoutSeconds`), a backup on each `onCalendar`, full on `fullOn`
         * and differential on the other days, the newest `keepFull` full backups kept (with their
         * differentials and the WAL to restore to any moment since the oldest).
         */
        backup: strictObject(
            {
                /** The bucket, declared under picloud:tiers.blob.buckets. */
                bucket: bucketName(),
                /** The blob key pgBackRest signs with, declared under picloud:tiers.blob.keys with readwrite or owner access to the bucket. */
                key: dnsLabel("a key name"),
                /** When a backup runs; default every day at 02:30. */
                onCalendar: onCalendar().default("*-*-* 02:30"),
                /** The day a backup is full; the others are differential. Default Sun. */
                fullOn: z.enum(WEEKDAYS, expected(`a day of the week: ${WEEKDAYS.join(", ")}`)).default("Sun"),
                /** Full backups kept; default 2 (two weeks of restore points with a weekly full). */
                keepFull: intIn(1, 52).default(2),
                /** Seconds after which a partly filled WAL segment is archived anyway: at most this much committed work is only on the Pis. Default 60. */
                archiveTimeoutSeconds: intIn(30, 3600, " of seconds").default(60),
                /** Hours without a successful backup that alert; default 26. */
                maxAgeHours: intIn(1, 24 * 31).default(26),
                /** Loopback port of each member's TLS bridge to blob storage (pgBackRest speaks S3 over TLS only); default 8443. */
                bridgePort: port().default(8443),
            },
            "backup options",
        ).optional(),
        /**
         * Restores the whole cluster from the backups to `to` on the next `pulumi up`, once for
         * each value: every member stops, its data is set aside on its Pi, the first member
         * restores and is promoted, the others copy from it. Needs `backup`.
         */
        restore: strictObject({ to: restoreTarget() }, "restore options").optional(),
        /**
         * The ring option: Apache Cassandra 5.0 beside PostgreSQL, a homogeneous ring of `nodes`
         * (at least three, each on its own Pi with at least 8 GB and an SSD), every keyspace
         * replicated three times, for QUORUM reads and writes.
         */
        cassandra: strictObject(
            {
                /** Nodes of the ring; default 3 (replication factor 3 needs three). */
                nodes: intIn(3, 64).default(3),
                /** Memory limit per node, MB; the heap is half of it, memtables an eighth of the heap each on and off it. Default 4096. */
                memoryMb: intIn(2048, 16384, " of MB").default(4096),
                /** CPU limit per node in cores; default 2. */
                cpus: cores(1, 4).default(2),
                /** CQL's port on each node; default 9042. */
                cqlPort: port().default(9042),
                /** Gossip and streaming between nodes; default 7000. */
                storagePort: port().default(7000),
                /** The JMX exporter's metrics port on each node; default 7070. */
                metricsPort: port().default(7070),
                /** Keyspaces, by name: each created when missing, replicated to min(3, nodes) nodes; never dropped. */
                keyspaces: record("a keyspace name", keyspaceName(), strictObject({}, "keyspace options").prefault({}), "a map of keyspace name to options").default({}),
            },
            "the Cassandra ring",
        ).optional(),
    },
    "the database tier",
);

/** Validated database options. */
export type DatabaseConfig = z.output<typeof databaseSchema>;
