import { z } from "zod";
import { cores, expected, intIn, port, strictObject } from "../../config/fields";

/** The cache's part of the config: `picloud:tiers.cache`. Pure: the config layer reads it (see test/layers.test.ts). */

/** What Valkey does once `maxmemory` is reached (its `maxmemory-policy`). */
export const EVICTION_POLICIES = ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "noeviction"] as const;

/** What a node keeps on its Pi's disk: nothing (a pure cache), RDB snapshots, or an append-only file fsynced every second. */
export const PERSISTENCE = ["none", "rdb", "aof"] as const;

/** The cache: Valkey, a primary and replicas on distinct Pis, failed over by three Sentinels. */
export const cacheSchema = strictObject(
    {
        /** Valkey nodes, one primary and the rest replicas, each on a Pi of its own; default three, or one per Pi when fewer. */
        nodes: intIn(1, 5).optional(),
        /** Memory limit per node, MB; `maxmemory` is three quarters of it (half with persistence, for the fork that writes it). Default 256. */
        memoryMb: intIn(64, 16384, " of MB").default(256),
        /** CPU limit per node in cores; default 0.25. */
        cpus: cores(0.1, 4).default(0.25),
        /** What a node evicts once its data reaches maxmemory; default allkeys-lru (a cache). noeviction refuses writes instead. */
        evictionPolicy: z.enum(EVICTION_POLICIES, expected(`one of ${EVICTION_POLICIES.join(", ")}`)).default("allkeys-lru"),
        /** What a node keeps on disk; default none. "aof" loses at most a second of writes when every Pi loses power at once. */
        persistence: z.enum(PERSISTENCE, expected(`one of ${PERSISTENCE.join(", ")}`)).default("none"),
        /** Valkey's port on each node; default 6379. */
        port: port().default(6379),
        /** Sentinel's port on each of its Pis; default 26379. */
        sentinelPort: port().default(26379),
        /** redis_exporter's port beside each node; default 9121. */
        exporterPort: port().default(9121),
        /** redis_exporter's port beside each Sentinel; default 9355. */
        sentinelExporterPort: port().default(9355),
        /** Seconds a primary may not answer before the Sentinels agree it is down and fail over; default 5. */
        downAfterSeconds: intIn(1, 600, " of seconds").default(5),
        /** Seconds a failover may take before Sentinels try again with another replica; default 60. */
        failoverTimeoutSeconds: intIn(10, 3600, " of seconds").default(60),
        /** Connections each node accepts (maxclients); default 1000. */
        maxClients: intIn(16, 100_000).default(1000),
        /**
         * Valkey 8's dual-channel replication: a full resync streams the snapshot and the
         * backlog on two connections, so the primary holds no copy of the changes meanwhile;
         * default true. A Valkey-only setting (Redis 7 refuses it).
         */
        dualChannelReplication: z.boolean(expected("true or false")).default(true),
    },
    "the cache",
);

/** Validated cache options. */
export type CacheConfig = z.output<typeof cacheSchema>;
