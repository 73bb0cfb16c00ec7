/**
 * The example stacks' apps are scraped where they say: an app whose monitoring scrapes a metrics
 * port of its own must be told to serve it there. podinfo, the examples' app, serves /metrics on
 * its main port unless `--port-metrics` (PODINFO_PORT_METRICS) says otherwise, so a stack that
 * declared 9797 without telling podinfo had every app target down from the first up.
 */
import { describe, expect, it } from "vitest";
import { exampleStack } from "./support/exampleStacks";

describe.each(["lab", "dev", "prod"])("the %s stack's apps", (stack) => {
    const apps = Object.entries(exampleStack(stack).config.tiers.apps ?? {});

    it("serve metrics where their monitoring scrapes them", () => {
        expect(apps.length).toBeGreaterThan(0);
        for (const [name, app] of apps) {
            if (!app.image.startsWith("ghcr.io/stefanprodan/podinfo:")) throw new Error(`app ${name}: an image this test does not know how to tell its metrics port (${app.image})`);
            expect(app.metrics.path, name).toBe("/metrics");
            if (app.metrics.port !== app.port) expect(app.env.PODINFO_PORT_METRICS, `app ${name}: podinfo serves metrics on ${app.port} unless told ${app.metrics.port}`).toBe(String(app.metrics.port));
        }
    });
});
