import { z } from "zod";
import { cores, dnsLabel, envMap, expected, hostname, intIn, pinnedImage, port, secretName, strictObject, urlPath } from "../../config/fields";
import { healthcheckSchema, placementSchema } from "../../config/workload";

/** The app-server tier's part of the config: `picloud:tiers.apps.<name>`. Pure: the config layer reads it (see test/layers.test.ts). */

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
        /**
         * An access key of blob storage (`picloud:tiers.blob.keys`): the app gets it as the AWS SDKs
         * read it, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (secrets), with AWS_ENDPOINT_URL_S3
         * and AWS_REGION. Only apps that name a key get its secret.
         */
        blobKey: dnsLabel("a key name of picloud:tiers.blob.keys").optional(),
        /**
         * A database of the database tier (`picloud:tiers.database.databases`): the app gets libpq's
         * PGHOST, PGPORT, PGDATABASE, PGUSER (its owner role) and PGTARGETSESSIONATTRS=read-write,
         * and PGPASSWORD as a secret. Only apps that name a database get its role's password.
         */
        database: z.string(expected("a database name of picloud:tiers.database.databases")).optional(),
        /**
         * The cache (`picloud:tiers.cache`): the app gets VALKEY_SENTINELS (the Sentinels'
         * host:port, comma-separated), VALKEY_MASTER_NAME, and VALKEY_PASSWORD as a secret, which
         * the Sentinels and the nodes both take. Only apps that set it get the password.
         */
        cache: z.boolean(expected("true or false")).optional(),
        /**
         * A user of the bus (`picloud:tiers.bus.accounts.<account>.users`): the app gets NATS_URL
         * (every node), NATS_USER, and NATS_PASSWORD as a secret. Only apps that name a user get
         * its password.
         */
        busUser: dnsLabel("a user of picloud:tiers.bus.accounts").optional(),
        /**
         * A user of the bus's RabbitMQ (`picloud:tiers.bus.rabbitmq.vhosts.<vhost>.users`): the app
         * gets RABBITMQ_ADDRESSES (every node's host:port, comma-separated), RABBITMQ_VHOST,
         * RABBITMQ_USER, and RABBITMQ_PASSWORD as a secret. Only apps that name a user get its password.
         */
        rabbitmqUser: dnsLabel("a user of picloud:tiers.bus.rabbitmq.vhosts").optional(),
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

/** Validated options of one app. */
export type AppConfig = z.output<typeof appSchema>;
