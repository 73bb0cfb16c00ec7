import { z } from "zod";
import { cores, expected, intIn, port, record, strictObject } from "../../config/fields";

/** The database tier's part of the config: `picloud:tiers.database`. Pure: the config layer reads it (see test/layers.test.ts). */

/** A PostgreSQL identifier picloud creates (a database or a role): lowercase, so it never needs quoting. */
const identifier = (what: string) => {
    const rule = expected(`${what}: 1 to 63 lowercase letters, digits and '_', starting with a letter`);
    return z.string(rule).regex(/^[a-z][a-z0-9_]{0,62}$/, rule).refine((s) => !s.startsWith("pg_") && !RESERVED_ROLES.has(s), expected(`${what} that is not reserved (pg_*, ${[...RESERVED_ROLES].join(", ")})`));
};

/** Roles picloud and PostgreSQL keep for themselves. */
export const RESERVED_ROLES = new Set(["postgres", "replicator", "rewind", "picloud_monitor", "public"]);

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
    },
    "the database tier",
);

/** Validated database options. */
export type DatabaseConfig = z.output<typeof databaseSchema>;
