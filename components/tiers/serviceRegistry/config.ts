import { z } from "zod";
import { cores, expected, intIn, ipv4, onCalendar, port, strictObject } from "../../config/fields";

/** The service registry's part of the config: `picloud:tiers.registry`. Pure: the config layer reads it (see test/layers.test.ts). */

/** The service registry: etcd, the cluster's consistent key-value store. */
export const registrySchema = strictObject(
    {
        /** etcd fsyncs every write and misses heartbeats on SD cards: members go to SSD Pis only, unless this is true; default false. */
        allowSdCard: z.boolean(expected("true or false")).default(false),
        /** Memory limit per member, MB; default 256. */
        memoryMb: intIn(64, 4096, " of MB").default(256),
        /** CPU limit per member in cores; default 0.5. */
        cpus: cores(0.1, 4).default(0.5),
        /** Client port (TLS) on each member's Pi; default 2379. */
        clientPort: port().default(2379),
        /** Peer port (TLS) between members; default 2380. */
        peerPort: port().default(2380),
        /** Metrics port (plain HTTP, for Prometheus); default 2381. */
        metricsPort: port().default(2381),
        /** Plain-HTTP client port on each member's loopback only, for its Pi's own CoreDNS and picloud's steps on that Pi; default 2382. */
        localClientPort: port().default(2382),
        /**
         * Plain-HTTP client port on each member's LAN address for tiers that keep their state in
         * etcd (the database's Patroni, which cannot trust etcd's self-made TLS certificates);
         * listened on only when such a tier is enabled, and opened by the firewall to its Pis only; default 2383.
         */
        dcsPort: port().default(2383),
        /** CoreDNS on every Pi: the zone's names from etcd, everything else forwarded. */
        dns: strictObject(
            {
                /** The zone picloud answers for; default `<stack>.internal`. Its names in etcd are picloud's: it writes and removes them. */
                zone: z
                    .string(expected("a DNS zone such as dev.internal"))
                    .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, expected("a DNS zone of lowercase labels such as dev.internal"))
                    .optional(),
                /** Seconds a client may keep an answer; default 30. */
                ttlSeconds: intIn(5, 3600, " of seconds").default(30),
                /** DNS servers the rest is forwarded to; default each Pi's own (its /etc/resolv.conf). */
                forwardTo: z.array(ipv4(), expected("a list of DNS server IPv4 addresses")).min(1, expected("at least one DNS server")).optional(),
                /** Port of CoreDNS's Prometheus metrics on each Pi; default 9153. */
                metricsPort: port().default(9153),
                /** Memory limit of each CoreDNS, MB; default 64. */
                memoryMb: intIn(32, 1024, " of MB").default(64),
                /** CPU limit of each CoreDNS, cores; default 0.1. */
                cpus: cores(0.05, 2).default(0.1),
            },
            "the registry's DNS",
        ).prefault({}),
        /** Snapshots: when (a systemd OnCalendar expression such as "daily" or "*-*-* 03:00"), how many to keep, and the age that alerts. */
        backup: strictObject(
            {
                onCalendar: onCalendar().default("daily"),
                keep: intIn(1, 365).default(7),
                maxAgeHours: intIn(1, 24 * 31).default(26),
            },
            "backup options",
        ).prefault({}),
    },
    "the service registry",
);

/** Validated service registry options. */
export type RegistryConfig = z.output<typeof registrySchema>;
