import { z } from "zod";
import { cores, dnsLabel, expected, intIn, ipv4, port, secretName, strictObject } from "../../config/fields";
import type { PlacementConstraints } from "../../config/workload";

/** The load balancer's part of the config: `picloud:tiers.loadBalancer`. Pure: the config layer reads it (see test/layers.test.ts). */

/**
 * The load balancer: HAProxy on one or two Pis, sharing a virtual IP through keepalived (VRRP)
 * when two. Every app and the functions gateway are its backends.
 */
export const loadBalancerSchema = strictObject(
    {
        /** The Pis that run HAProxy (one or two); default: up to two Pis labelled role=edge, else two Pis placement picks. */
        pis: z.array(dnsLabel("a Pi name"), expected("a list of one or two Pi names")).min(1, expected("one or two Pi names")).max(2, expected("one or two Pi names")).optional(),
        /** Floating address clients use, moved by VRRP to whichever load-balancer Pi is healthy; needs two Pis and picloud:network.subnet. */
        virtualIp: ipv4().optional(),
        /** The Pis' LAN interface carrying VRRP and the virtual IP; default eth0. */
        interface: z
            .string(expected("a network interface name such as eth0"))
            .regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/, expected("a network interface name such as eth0"))
            .refine((i) => i !== "lo", expected("the LAN interface, not loopback"))
            .default("eth0"),
        /** VRRP virtual router id, unique on the LAN; default 51. */
        virtualRouterId: intIn(1, 255).default(51),
        /** Requests one client address may make in any 10 seconds before getting 429s; default 200. */
        rateLimitPer10s: intIn(1, 1_000_000).default(200),
        /** Concurrent connections each HAProxy accepts; default 2000. */
        maxConnections: intIn(16, 1_000_000).default(2000),
        /** Port of HAProxy's Prometheus endpoint (and /healthz) on each load-balancer Pi; default 8404. */
        statsPort: port().default(8404),
        /** HTTPS on :443 (and :80 redirecting) with a certificate the user supplies. */
        tls: strictObject(
            {
                /** Name of a picloud: secret holding the PEM certificate chain followed by its private key. */
                certificateSecret: secretName("the name of a picloud: secret config key holding a PEM certificate chain and key, e.g. edgeTlsPem"),
            },
            "TLS",
        ).optional(),
        /** Memory limit of each HAProxy, MB; default 128. */
        memoryMb: intIn(32, 4096, " of MB").default(128),
        /** CPU limit of each HAProxy, cores; default 1. */
        cpus: cores(0.1, 4).default(1),
    },
    "the load balancer",
);

/** Validated load balancer options. */
export type LoadBalancerConfig = z.output<typeof loadBalancerSchema>;

/** Where the load balancer runs, as its options and the Pis' labels decide before placement. */
export interface LoadBalancerTopology {
    /** HAProxy replicas: one per load-balancer Pi. */
    readonly replicas: number;
    /** The Pis named in `pis`, in order; otherwise placement picks among the eligible. */
    readonly pinnedTo?: readonly string[];
    readonly constraints: PlacementConstraints;
}

/**
 * The load balancer's Pis: those named in `picloud:tiers.loadBalancer.pis`; else up to two Pis
 * labelled role=edge; else two Pis (one on a one-Pi stack) that placement picks.
 */
export function loadBalancerTopology(lb: LoadBalancerConfig, pis: readonly { readonly labels: Readonly<Record<string, string>> }[]): LoadBalancerTopology {
    if (lb.pis) return { replicas: lb.pis.length, pinnedTo: lb.pis, constraints: {} };
    const edge = pis.filter((p) => p.labels.role === "edge").length;
    if (edge > 0) return { replicas: Math.min(2, edge), constraints: { labels: { role: "edge" } } };
    return { replicas: Math.min(2, pis.length), constraints: {} };
}
