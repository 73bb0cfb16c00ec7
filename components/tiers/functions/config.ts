import { z } from "zod";
import { cores, dnsLabel, envMap, expected, intIn, ipv4, pinnedImage, port, record, strictObject } from "../../config/fields";

/** The functions tier's part of the config: `picloud:tiers.functions`. Pure: the config layer reads it (see test/layers.test.ts). */

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

/** Validated functions tier options. */
export type FunctionsConfig = z.output<typeof functionsSchema>;
/** Validated options of one function. */
export type FunctionConfig = z.output<typeof functionSchema>;

/** The path prefixes the load balancer sends to the functions gateway. */
export const FUNCTION_ROUTE_PREFIXES = ["/function", "/async-function"] as const;
