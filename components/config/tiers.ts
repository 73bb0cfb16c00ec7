import { z } from "zod";
import { dnsLabel, envMap, expected, intIn, labels, pinnedImage, port, record, strictObject } from "./fields";

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
        cpus: z.number(expected("a number of cores from 0.05 to 4")).min(0.05, expected("a number of cores from 0.05 to 4")).max(4, expected("a number of cores from 0.05 to 4")).default(0.5),
        /** Port the application listens on inside its container. */
        port: port(),
        /** Port published on each Pi that runs a replica; default: not published. */
        hostPort: port().optional(),
        /** Plain environment. */
        env: envMap(z.string(expected("a string value")), "a map of variable to value").default({}),
        /** Secret environment: variable name → name of a `picloud:` config key set with --secret. */
        secretEnv: envMap(
            z
                .string()
                .regex(/^[a-zA-Z][a-zA-Z0-9]*$/, expected("the name of a picloud: secret config key, e.g. webDbPassword"))
                .refine((k) => k !== "sshPrivateKey", expected("an app's own secret; the Pis' SSH key never goes into a container")),
            "a map of variable to secret config key",
        ).default({}),
        healthcheck: healthcheckSchema.optional(),
        /** Where the app serves Prometheus metrics (required: nothing runs unmonitored); published on each replica's Pi. */
        metrics: strictObject({ port: port(), path: z.string().regex(/^\//, expected("a path starting with '/'")).default("/metrics") }, "a metrics endpoint"),
        placement: placementSchema.default({}),
    },
    "an app",
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

/** All tier options. */
export const tiersSchema = strictObject(
    {
        /** Monitoring: always built, with these defaults unless given. */
        monitoring: monitoringSchema.prefault({}),
        /** Application servers: user images with replicas spread over the Pis. */
        apps: record("an app name: a lowercase DNS label (a-z, 0-9, '-', starting with a letter)", dnsLabel("an app name"), appSchema, "a map of app name to app options").optional(),
    },
    "tiers",
);

/** Validated options of one app. */
export type AppConfig = z.output<typeof appSchema>;
/** Validated monitoring tier options. */
export type MonitoringConfig = z.output<typeof monitoringSchema>;
/** Validated placement constraints. */
export type PlacementConstraints = z.output<typeof placementSchema>;
/** Validated healthcheck. */
export type HealthcheckConfig = z.output<typeof healthcheckSchema>;
