import { z } from "zod";
import { cores, expected, intIn, port, strictObject } from "../../config/fields";

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
        /** Snapshots: when (a systemd OnCalendar expression such as "daily" or "*-*-* 03:00"), how many to keep, and the age that alerts. */
        backup: strictObject(
            {
                onCalendar: z.string(expected("a systemd OnCalendar expression such as daily")).regex(/^[A-Za-z0-9*:,./ -]{1,64}$/, expected("a systemd OnCalendar expression such as daily")).default("daily"),
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
