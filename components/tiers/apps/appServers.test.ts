import { describe, expect, it } from "vitest";
import { appSchema } from "./config";
import { appPlacement } from "./appServers";

const app = (placement?: Record<string, unknown>) =>
    appSchema.parse({ image: `nginx@sha256:${"a".repeat(64)}`, memoryMb: 64, port: 80, metrics: { port: 9797 }, ...(placement ? { placement } : {}) });

describe("appPlacement", () => {
    it("sends an app without a placement of its own to the Pis labelled role: app, when there are any", () => {
        expect(appPlacement(app(), [{ labels: { role: "edge" } }, { labels: { role: "app" } }])).toEqual({ labels: { role: "app" } });
        expect(appPlacement(app(), [{ labels: { role: "edge" } }, { labels: {} }])).toEqual({});
    });

    it("lets the app's own placement decide alone", () => {
        expect(appPlacement(app({ storage: "ssd" }), [{ labels: { role: "app" } }])).toEqual({ storage: "ssd" });
        expect(appPlacement(app({ labels: { role: "edge" } }), [{ labels: { role: "app" } }])).toEqual({ labels: { role: "edge" } });
    });
});
