import { describe, expect, it } from "vitest";
import { loadBalancerSchema } from "./config";
import { renderHaproxyConfig } from "./renderers";
import { EdgeBackend, byPrecedence, haproxyInput } from "./specs";

const backend = (name: string, route?: { host?: string; pathPrefix?: string }): EdgeBackend => ({
    backend: { name, servers: [{ name: `${name}-0`, address: "192.168.10.11:8080" }], healthPath: "/" },
    routes: route ? [{ backend: name, ...route }] : [],
});

describe("load-balancer routes", () => {
    it("try a site's own routes first, then the longest path prefix, whatever order the apps are declared in", () => {
        const declared = [
            { backend: "api", pathPrefix: "/api" },
            { backend: "shop", host: "shop.example" },
            { backend: "v2", pathPrefix: "/api/v2/" },
            { backend: "shop-api", host: "shop.example", pathPrefix: "/api" },
        ];
        const order = (routes: typeof declared) => byPrecedence(routes).map((r) => r.backend);
        expect(order(declared)).toEqual(["shop-api", "shop", "v2", "api"]);
        expect(order([...declared].reverse())).toEqual(["shop-api", "shop", "v2", "api"]);
    });

    it("reach haproxy.cfg in that order, so /api/v2 is not swallowed by an /api declared before it", () => {
        const options = loadBalancerSchema.parse({});
        const cfg = renderHaproxyConfig(haproxyInput(options, [backend("web"), backend("api", { pathPrefix: "/api" }), backend("v2", { pathPrefix: "/api/v2" })]));
        const uses = [...cfg.matchAll(/^\s*use_backend (\S+) if/gm)].map((m) => m[1]);
        expect(uses).toEqual(["v2", "api"]);
        expect(cfg).toMatch(/default_backend web/);
    });
});
