import { z } from "zod";
import { dnsLabel, expected, intIn, strictObject } from "../../config/fields";

/** The Monitoring tier's part of the config: `picloud:tiers.monitoring`. Pure: the config layer reads it (see test/layers.test.ts). */

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

/** Validated monitoring tier options. */
export type MonitoringConfig = z.output<typeof monitoringSchema>;
