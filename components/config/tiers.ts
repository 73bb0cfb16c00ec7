import { z } from "zod";
import { cores, dnsLabel, envMap, expected, hostname, intIn, ipv4, labels, pinnedImage, port, record, secretName, strictObject, urlPath } from "./fields";

/**
 * Options of each tier under `picloud:tiers`. A tier is enabled by giving its key; an unknown key
 * is an error that lists the tiers this version of picloud has.
 */

/** Where a workload may run: every constraint given must hold for a Pi to be eligible. */
export const placementSchema = strictObject(
    {
        /** Pi labels that must all match. */
        labels: labels().optional(),
        /** Allowed Pi models. */
        models: z.array(z.enum(["pi4", "pi5"], expected("a Pi model: 'pi4' or 'pi5'"))).min(1, expected("at least one model")).optional(),
        /** Required storage, e.g. 'ssd' for databases. */
        storage: z.enum(["sd", "ssd"], expected("'sd' or 'ssd'")).optional(),
    },
    "placement",
);

/** A container healthcheck. */
export const healthcheckSchema = strictObject(
    {
        /** Command run inside the container, exec form, e.g. ["wget", "-qO-", "http://localhost:8080/healthz"]. */
        command: z.array(z.string(), expected("a command as a list of strings")).min(1, expected("a non-empty command")),
        /** Seconds between checks; default 10. */
        intervalSeconds: intIn(1, 3600).default(10),
        /** Seconds before a check counts as failed; default 3. */
        timeoutSeconds: intIn(1, 600).default(3),
        /** Failures before the container is unhealthy; default 3. */
        retries: intIn(1, 100).default(3),
        /** Grace period after start, seconds; default 10. */
        startPeriodSeconds: intIn(0, 3600).default(10),
    },
    "a healthcheck",
);

/** One application served by the app-server tier. */
export const appSchema = strictObject(
    {
        /** The application image, pinned by digest. */
        image: pinnedImage(),
        /** Replicas; default 2. */
        replicas: intIn(1, 64).default(2),
        /** Put each replica on a different Pi; default true. */
        spread: z.boolean(expected("true or false")).default(true),
        /** Memory limit per replica, MB. */
        memoryMb: intIn(16, 16384, " of MB"),
        /** CPU limit per replica in cores; default 0.5. */
        cpus: cores(0.05, 4).default(0.5),
        /** Port the application listens on inside its container. */
        port: port(),
        /** Port published on each Pi that runs a replica; default: not published. */
        hostPort: port().optional(),
        /** Plain environment. */
        env: envMap(z.string(expected("a string value")), "a map of variable to value").default({}),
        /** Secret environment: variable name → name of a `picloud:` config key set with --secret. */
        secretEnv: envMap(secretName(), "a map of variable to secret config key").default({}),
        healthcheck: healthcheckSchema.optional(),
        /** The app's name before a rename: its replicas, routes and monitoring carry over in one `pulumi up`. */
        renamedFrom: dnsLabel("the app's earlier name").optional(),
        /** Where the app serves Prometheus metrics (required: nothing runs unmonitored); published on each replica's Pi. */
        metrics: strictObject({ port: port(), path: z.string().regex(/^\//, expected("a path starting with '/'")).default("/metrics") }, "a metrics endpoint"),
        placement: placementSchema.default({}),
        /**
         * Which requests the load balancer sends to the app: a Host header, a path prefix, or both.
         * Without a route the app takes every request no other route matches (one such app at most).
         */
        route: strictObject({ host: hostname().optional(), pathPrefix: urlPath().optional() }, "a route")
            .refine((r) => r.host !== undefined || r.pathPrefix !== undefined, expected("a route with a host, a pathPrefix or both"))
            .optional(),
        /** Path the load balancer health-checks on every replica (anything but a 200 takes it out); default "/". */
        healthPath: urlPath().default("/"),
        /** Requests each replica is sent at once; more wait at the load balancer (its saturation signal); default 100. */
        maxConcurrentRequests: intIn(1, 100_000).default(100),
        /** Golden-signal alert thresholds, measured at the load balancer. */
        slo: strictObject(
            {
                /** Share of responses that may be 5xx over 5 minutes; default 0.05. */
                maxErrorRatio: z.number(expected("a ratio from 0.001 to 1")).min(0.001, expected("a ratio from 0.001 to 1")).max(1, expected("a ratio from 0.001 to 1")).default(0.05),
                /** Average response time the app may take, ms; default 500. */
                maxLatencyMs: intIn(1, 600_000, " of ms").default(500),
            },
            "service level objectives",
        ).prefault({}),
    },
    "an app",
);

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

/** One function served by the functions tier. */
export const functionSchema = strictObject(
    {
        /** The function's image (an OpenFaaS watchdog image), pinned by digest. */
        image: pinnedImage(),
        /** Plain environment. */
        env: envMap(z.string(expected("a string value")), "a map of variable to value").default({}),
        /** Memory limit, MB. */
        memoryMb: intIn(16, 4096, " of MB"),
        /** CPU limit in cores; default 0.5. */
        cpus: cores(0.05, 4).default(0.5),
    },
    "a function",
);

/** The functions (lambda) tier: faasd on one Pi, its gateway behind the load balancer. */
export const functionsSchema = strictObject(
    {
        /** The Pi that runs faasd; default: one labelled role=functions, else the roomiest Pi placement picks. */
        pi: dnsLabel("a Pi name").optional(),
        /** Host port of the OpenFaaS gateway (API, UI, /function/<name>); default 8180. */
        gatewayPort: port().default(8180),
        /** Host port of faasd-provider; default 8181. */
        providerPort: port().default(8181),
        /** Host port of the gateway's Prometheus metrics; default 8182. */
        metricsPort: port().default(8182),
        /** DNS servers the functions resolve with; default Quad9 and Cloudflare. */
        nameservers: z.array(ipv4(), expected("a list of DNS server IPv4 addresses")).min(1, expected("at least one DNS server")).default(["9.9.9.9", "1.1.1.1"]),
        /** Memory set aside for faasd itself (gateway, provider, NATS, queue worker, its Prometheus), MB; default 384. */
        memoryMb: intIn(128, 4096, " of MB").default(384),
        /** Alert thresholds: 5xx share of invocations per function, and their 95th-percentile latency. */
        slo: strictObject(
            {
                maxErrorRatio: z.number(expected("a ratio from 0.001 to 0.999")).min(0.001, expected("a ratio from 0.001 to 0.999")).max(0.999, expected("a ratio from 0.001 to 0.999")).default(0.05),
                maxLatencyMs: intIn(1, 600_000, " of ms").default(1000),
            },
            "service level objectives",
        ).prefault({}),
        /** Functions by name (faasd CE deploys at most 15). */
        functions: record("a function name: a lowercase DNS label (a-z, 0-9, '-', starting with a letter)", dnsLabel("a function name"), functionSchema, "a map of function name to function options")
            .refine((f) => Object.keys(f).length <= 15, expected("at most 15 functions: faasd CE (OpenFaaS Community Edition) refuses the 16th"))
            .default({}),
    },
    "the functions tier",
);

const url = (what: string) => z.url(expected(`${what}: an http(s) URL`)).refine((u) => /^https?:\/\//.test(u), expected(`${what}: an http(s) URL`));

/** Where alerts go. */
export const alertingSchema = strictObject(
    {
        /** Webhooks that receive every critical and warning alert. */
        webhookUrls: z.array(url("a webhook"), expected("a list of webhook URLs")).default([]),
        /** Email for every critical and warning alert. */
        email: strictObject(
            {
                to: z.email(expected("an email address")),
                from: z.email(expected("an email address")),
                /** SMTP relay as host:port. */
                smarthost: z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, expected("an SMTP relay as host:port")),
                username: z.string().min(1, expected("an SMTP user name")).optional(),
                /** Name of a picloud: secret config key holding the SMTP password. */
                passwordSecret: z.string().regex(/^[a-zA-Z][a-zA-Z0-9]*$/, expected("the name of a picloud: secret config key")).optional(),
            },
            "email alerting",
        ).optional(),
        /** A dead man's switch URL (e.g. a healthchecks.io check) pinged while alerting works. */
        deadMansSwitchUrl: url("a dead man's switch").optional(),
    },
    "alerting",
);

/** The Monitoring tier: Prometheus, Alertmanager and Grafana on one Pi, exporters on every Pi. */
export const monitoringSchema = strictObject(
    {
        /** The Pi that runs Prometheus, Alertmanager and Grafana; default: one labelled role=monitoring, else the first with an SSD, else the first. */
        pi: dnsLabel("a Pi name").optional(),
        /** How long metrics are kept, days; default 15. */
        retentionDays: intIn(1, 3650).default(15),
        /** Cap on Prometheus's on-disk size, MB; default 4096 on SSD, 1024 on SD. */
        retentionSizeMb: intIn(128, 1_000_000).optional(),
        /** Scrape interval, seconds; default 30. */
        scrapeIntervalSeconds: intIn(5, 300).default(30),
        alerting: alertingSchema.prefault({}),
    },
    "the monitoring tier",
);

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

/** All tier options. */
export const tiersSchema = strictObject(
    {
        /** Monitoring: always built, with these defaults unless given. */
        monitoring: monitoringSchema.prefault({}),
        /** Application servers: user images with replicas spread over the Pis. */
        apps: record("an app name: a lowercase DNS label (a-z, 0-9, '-', starting with a letter)", dnsLabel("an app name"), appSchema, "a map of app name to app options").optional(),
        /** The load balancer in front of the apps and functions. */
        loadBalancer: loadBalancerSchema.optional(),
        /** Functions (lambda): faasd on one Pi. */
        functions: functionsSchema.optional(),
        /** The service registry: etcd, three members on SSD Pis (one on a stack of fewer than three). */
        registry: registrySchema.optional(),
    },
    "tiers",
);

/** Validated options of one app. */
export type AppConfig = z.output<typeof appSchema>;
/** Validated load balancer options. */
export type LoadBalancerConfig = z.output<typeof loadBalancerSchema>;
/** Validated service registry options. */
export type RegistryConfig = z.output<typeof registrySchema>;
/** Validated functions tier options. */
export type FunctionsConfig = z.output<typeof functionsSchema>;
/** Validated options of one function. */
export type FunctionConfig = z.output<typeof functionSchema>;
/** Validated monitoring tier options. */
export type MonitoringConfig = z.output<typeof monitoringSchema>;
/** Validated placement constraints. */
export type PlacementConstraints = z.output<typeof placementSchema>;
/** Validated healthcheck. */
export type HealthcheckConfig = z.output<typeof healthcheckSchema>;

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

/** The path prefixes the load balancer sends to the functions gateway. */
export const FUNCTION_ROUTE_PREFIXES = ["/function", "/async-function"] as const;
