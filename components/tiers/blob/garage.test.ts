import { describe, expect, it } from "vitest";
import { exampleStack } from "../../../test/support/exampleStacks";
import { shellcheck } from "../../../test/support/scripts";
import { PicloudConfigError } from "../../config/errors";
import { parseStackConfig } from "../../config/schema";
import { monitoringGaps } from "../../monitoring/contract";
import { blobSchema } from "./config";
import { accessFlags, blobBackend, blobEndpoint, blobSpec, garageNodes, garageQuorum, garageWorkload, renderGarageInit, renderGarageToml, replicationFactor } from "./garage";

const options = blobSchema.parse({ buckets: { backups: {}, media: {} }, keys: { app: { buckets: { media: "read" } } } });
const pi = (name: string, storage: "sd" | "ssd") => ({ name, address: "10.0.0.1", hostKey: "k", model: "pi4" as const, memoryMb: 4096, storage, labels: {}, user: "pi" }) as never;

describe("Garage's nodes and layout", () => {
    it("runs three nodes on SSD Pis (SD Pis only when allowed), fewer where fewer Pis may carry one, more when told, with min(3, nodes) copies", () => {
        const pis = [pi("a", "ssd"), pi("b", "sd"), pi("c", "sd"), pi("d", "ssd"), pi("e", "ssd")];
        expect(garageNodes(options, pis)).toBe(3);
        expect(garageNodes(options, pis.slice(0, 4))).toBe(2);
        expect(garageNodes(options, [pi("x", "sd")])).toBe(1);
        expect(garageNodes(blobSchema.parse({ allowSdCard: true, nodes: 5 }), pis)).toBe(5);
        expect(garageNodes(blobSchema.parse({ nodes: 2 }), pis)).toBe(2);
        expect([1, 2, 3, 4, 7].map(replicationFactor)).toEqual([1, 2, 3, 3, 3]);
    });

    it("counts the nodes that must stay up for every partition to keep its quorum", () => {
        // Three copies tolerate one lost node, two copies none.
        expect([1, 2, 3, 5].map(garageQuorum)).toEqual([1, 2, 2, 4]);
        expect(garageWorkload(options, [pi("a", "ssd"), pi("b", "ssd"), pi("c", "ssd")]).quorum).toEqual({ name: "garage", quorum: 2, managedMembership: { maxCopies: 3 } });
    });

    it("renders the power-loss safe settings, quorum consistency and the node's own address, and no secret", () => {
        const toml = renderGarageToml({ index: 1, pi: "b", address: "10.0.0.12" }, 3, options);
        for (const line of ['db_engine = "sqlite"', "metadata_fsync = true", "replication_factor = 3", 'consistency_mode = "consistent"', 'block_ram_buffer_max = "64MiB"', 'rpc_public_addr = "10.0.0.12:3901"', 'metadata_dir = "/var/lib/garage/meta"']) {
            expect(toml).toContain(line);
        }
        expect(toml).not.toMatch(/secret|token/);
        expect(renderGarageToml({ index: 0, pi: "a", address: "10.0.0.11" }, 2, options)).toContain("replication_factor = 2");
    });

    it("grants a key exactly what it declares in each bucket and denies the rest", () => {
        expect(accessFlags("read")).toEqual({ read: true, write: false, owner: false });
        expect(accessFlags("readwrite")).toEqual({ read: true, write: true, owner: false });
        expect(accessFlags("owner")).toEqual({ read: true, write: true, owner: true });
        const script = renderGarageInit({ garage: ["docker", "exec", "garage-0", "/garage"], nodes: [{ address: "10.0.0.11", zone: "a" }], options, buckets: ["backups", "media"], keys: [{ name: "app", buckets: { media: "read" } }], peerListFile: "/srv/x" });
        expect(script).toContain(`garage bucket allow --read 'media' --key "\${keyid[app]:-}"`);
        expect(script).toContain(`garage bucket deny --write --owner 'media' --key "\${keyid[app]:-}"`);
        expect(script).toContain(`garage bucket deny --read --write --owner 'backups' --key "\${keyid[app]:-}"`);
        // One node has no peers to save: no wait for its peer list.
        expect(script).not.toContain("peer_list");
    });

    it("keeps secrets off command lines: the token in a root-only header file, key secrets in request bodies", () => {
        const script = renderGarageInit({ garage: ["g"], nodes: [{ address: "10.0.0.11", zone: "a" }, { address: "10.0.0.12", zone: "b" }], options, buckets: ["media"], keys: [{ name: "app", buckets: { media: "read" } }], peerListFile: "/srv/d/meta/peer_list" });
        expect(script).toContain('-H @"$auth"');
        expect(script).toContain("--data-binary @-");
        expect(script).not.toMatch(/curl[^\n]*\$token/);
        expect(script).toContain("stat -c %s '/srv/d/meta/peer_list'");
    });

    it("renders init steps that pass shellcheck", () => {
        for (const nodes of [1, 3]) {
            const script = renderGarageInit({
                garage: ["docker", "exec", "garage-0", "/garage"],
                nodes: Array.from({ length: nodes }, (_, i) => ({ address: `10.0.0.${11 + i}`, zone: `pi-${i}` })),
                options,
                buckets: ["backups", "media"],
                keys: [{ name: "app", buckets: { media: "read", backups: "owner" } }],
                peerListFile: "/srv/picloud/data/garage-0/meta/peer_list",
            });
            const r = shellcheck(script);
            expect(r.output, r.output).toBe("");
        }
    });
});

describe("blob storage's monitoring, endpoint and config", () => {
    const nodes = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}` }));

    it("is complete monitoring: a scrape of every node's admin port, the alerts upstream does not ship, a dashboard", () => {
        const spec = blobSpec(options, nodes);
        expect(monitoringGaps(spec)).toEqual([]);
        expect(spec.scrapeTargets[0].targets).toEqual(["10.0.0.11:3903", "10.0.0.12:3903", "10.0.0.13:3903"]);
        expect(spec.alertRules.map((r) => r.alert)).toEqual(["BlobGarageTargetDown", "GarageClusterUnavailable", "GaragePartitionsWithoutQuorum", "GarageClusterUnhealthy", "GarageResyncErrors", "GarageLowDisk"]);
        expect(spec.alertRules.find((r) => r.alert === "GarageLowDisk")!.expr).toContain("< 0.1");
    });

    it("is reached by its registry name, else the load balancer's host, else the first node", () => {
        expect(blobEndpoint(options, nodes, "dev.internal")).toBe("http://s3.blob.dev.internal:3900");
        expect(blobEndpoint(blobSchema.parse({ loadBalancer: { host: "s3.example.org" } }), nodes)).toBe("http://s3.example.org");
        expect(blobEndpoint(options, nodes)).toBe("http://10.0.0.11:3900");
        expect(blobBackend(options, nodes)).toBeUndefined();
        const edge = blobBackend(blobSchema.parse({ loadBalancer: { host: "s3.example.org" } }), nodes)!;
        expect(edge.backend).toMatchObject({ name: "blob-s3", healthPath: "/health", checkPort: 3903 });
        expect(edge.routes).toEqual([{ backend: "blob-s3", host: "s3.example.org" }]);
    });

    it("refuses a key granting an undeclared bucket, and an app naming an undeclared key, naming the key", () => {
        const prod = exampleStack("prod");
        expect(prod.config.tiers.blob!.keys.hello.buckets.media).toBe("readwrite");
        const base = { pis: [{ name: "a", address: "10.0.0.11", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaWQtkkIJq7Iza/VlBf4dpDjLz1Rser9LqnV8bTJjAk", model: "pi4", memoryMb: 4096 }] };
        const problems = (values: Record<string, unknown>) => {
            try {
                parseStackConfig({ values: { ...base, ...values }, secretKeys: ["sshPrivateKey"] });
                return [];
            } catch (e) {
                if (!(e instanceof PicloudConfigError)) throw e;
                return e.problems.map((p) => `${p.key}: ${p.message}`);
            }
        };
        expect(problems({ tiers: { blob: { buckets: { media: {} }, keys: { app: { buckets: { photos: "read" } } } } } })).toEqual([
            'picloud:tiers.blob.keys.app.buckets.photos: expected a bucket of picloud:tiers.blob.buckets (media), got "photos"',
        ]);
        const app = { image: "ghcr.io/x/y:1@sha256:" + "a".repeat(64), memoryMb: 64, port: 80, metrics: { port: 80 }, blobKey: "nope" };
        expect(problems({ tiers: { apps: { web: app } } })).toEqual(['picloud:tiers.apps.web.blobKey: expected picloud:tiers.blob to be enabled for a blob key, got "nope" with no blob storage']);
        expect(problems({ tiers: { blob: {}, apps: { web: app } } })).toEqual(['picloud:tiers.apps.web.blobKey: expected a key of picloud:tiers.blob.keys (none declared), got "nope"']);
    });
});
