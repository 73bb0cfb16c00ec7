import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { exampleStack } from "../../../test/support/exampleStacks";
import { shellcheck } from "../../../test/support/scripts";
import { monitoringGaps } from "../../monitoring/contract";
import { renderHaproxyConfig } from "../loadBalancer/renderers";
import { databaseSchema } from "./config";
import {
    PATRONI_WHEELS,
    POSTGRES_BASE_IMAGE,
    databaseMembers,
    patroniImageTag,
    patroniTimings,
    postgresWorkload,
    renderClusterStep,
    renderPatroniDockerfile,
    renderPatroniYml,
    renderPostgresHandOff,
    renderRolesSql,
    scramVerifier,
    synchronousMode,
} from "./postgres";
import { databaseEndpoint, databaseNames, databaseServices, databaseSpec } from "./specs";

const options = databaseSchema.parse({ roles: { shop: {} }, databases: { shop: { owner: "shop" } } });
const pi = (name: string, storage: "sd" | "ssd") => ({ name, address: "10.0.0.1", hostKey: "k", model: "pi4" as const, memoryMb: 4096, storage, labels: {}, user: "pi" }) as never;
const members = [0, 1, 2].map((index) => ({ index, pi: `p${index}`, address: `10.0.0.${11 + index}`, dataPath: `/srv/picloud/data/postgres-${index}` }));

describe("the database's members", () => {
    it("runs three members on SSD Pis (SD Pis only when allowed), fewer where fewer may carry one, with synchronous mode from two standbys on", () => {
        const pis = [pi("a", "ssd"), pi("b", "sd"), pi("c", "ssd"), pi("d", "ssd")];
        expect(databaseMembers(options, pis)).toBe(3);
        expect(databaseMembers(options, pis.slice(0, 3))).toBe(2);
        expect(databaseMembers(databaseSchema.parse({ allowSdCard: true, members: 5 }), pis)).toBe(5);
        expect([1, 2, 3, 5].map((n) => synchronousMode(options, n))).toEqual([false, false, true, true]);
        expect(synchronousMode(databaseSchema.parse({ synchronousMode: true }), 2)).toBe(true);
        expect(synchronousMode(databaseSchema.parse({ synchronousMode: false }), 3)).toBe(false);
    });

    it("keeps Patroni's rule for every lock time to live: loop_wait + 2 × retry_timeout ≤ ttl", () => {
        for (let ttl = 20; ttl <= 300; ttl++) {
            const t = patroniTimings(ttl);
            expect(t.loop_wait + 2 * t.retry_timeout, `ttl ${ttl}`).toBeLessThanOrEqual(ttl);
            expect(t.loop_wait).toBeGreaterThanOrEqual(1);
        }
        expect(patroniTimings(20)).toEqual({ ttl: 20, loop_wait: 5, retry_timeout: 5 });
    });

    it("renders a patroni.yml with the member's own addresses, etcd's DCS endpoints, the dynamic settings and no password", () => {
        const text = renderPatroniYml(members[1], members, options, { scope: "dev", etcd: ["10.0.0.11:2383", "10.0.0.12:2383"] });
        // PyYAML reads YAML 1.1, where a bare `on` is true: every such value is quoted.
        const doc = YAML.parse(text, { version: "1.1" });
        expect(doc.name).toBe("postgres-1");
        expect(doc.restapi.connect_address).toBe("10.0.0.12:8008");
        expect(doc.postgresql.connect_address).toBe("10.0.0.12:5432");
        expect(doc.etcd3).toEqual({ hosts: ["10.0.0.11:2383", "10.0.0.12:2383"], protocol: "http", use_proxies: true });
        expect(doc.bootstrap.dcs).toMatchObject({ ttl: 20, synchronous_mode: true, failsafe_mode: true, postgresql: { use_pg_rewind: true, parameters: { hot_standby: "on", fsync: "on", shared_buffers: "256MB" } } });
        expect(doc.postgresql.authentication.superuser).toEqual({ username: "postgres" });
        expect(text).not.toMatch(/password:/i);
        // The superuser and replication roles only from the members; the rest with a password.
        const hba: string[] = doc.postgresql.pg_hba;
        expect(hba.filter((l) => l.startsWith("host replication replicator"))).toEqual(["host replication replicator 127.0.0.1/32 scram-sha-256", ...members.map((m) => `host replication replicator ${m.address}/32 scram-sha-256`)]);
        expect(hba.indexOf("host all postgres,rewind,replicator 0.0.0.0/0 reject")).toBeLessThan(hba.indexOf("host all all 0.0.0.0/0 scram-sha-256"));
        expect(hba.some((l) => /\btrust\b/.test(l))).toBe(false);
    });

    it("builds its image from the pinned base and hash-pinned wheels, under a tag that changes with the Dockerfile", () => {
        const dockerfile = renderPatroniDockerfile();
        expect(dockerfile).toContain(`FROM ${POSTGRES_BASE_IMAGE}`);
        expect(POSTGRES_BASE_IMAGE).toMatch(/@sha256:[0-9a-f]{64}$/);
        for (const w of PATRONI_WHEELS) expect(dockerfile).toContain(`${w.name}==${w.version} --hash=sha256:${w.sha256}`);
        expect(dockerfile).toContain("--require-hashes");
        expect(dockerfile).not.toMatch(/^(COPY|ADD) /m);
        const w = postgresWorkload(options, [pi("a", "ssd"), pi("b", "ssd"), pi("c", "ssd")]);
        expect(w.build?.dockerfile).toBe(dockerfile);
        expect(w.image).toBe(patroniImageTag(dockerfile));
        expect(patroniImageTag(`${dockerfile}# changed\n`)).not.toBe(w.image);
        expect(w.data).toEqual({ containerPath: "/var/lib/postgresql/data", owner: { uid: 999, gid: 999 } });
        expect(w.updateStrategy).toBe("leader-last");
    });

    it("hands the primary over before a change, and does nothing on a standby, a stopped member or a lone one", () => {
        const script = renderPostgresHandOff(members[0], members, options);
        expect(shellcheck(`#!/usr/bin/env bash\nset -euo pipefail\n${script}\n`).status).toBe(0);
        expect(script).toContain("'docker' 'exec' 'postgres-0' '/opt/patroni/bin/patronictl' '-c' '/etc/patroni/patroni.yml' switchover --leader postgres-0 --force");
        expect(script).toContain("is not the primary\"; exit 0");
        expect(renderPostgresHandOff(members[0], members.slice(0, 1), options)).toContain("no standby");
    });
});

describe("roles, databases and the cluster step", () => {
    it("gives a role PostgreSQL's SCRAM-SHA-256 verifier of its password, the same on every run", () => {
        const v = scramVerifier("shop", "s3cret");
        const m = /^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(v)!;
        expect(m).not.toBeNull();
        // RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
        const salted = pbkdf2Sync("s3cret", Buffer.from(m[1], "base64"), 4096, 32, "sha256");
        expect(m[2]).toBe(createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest("base64"));
        expect(m[3]).toBe(createHmac("sha256", salted).update("Server Key").digest("base64"));
        expect(scramVerifier("shop", "s3cret")).toBe(v);
        expect(scramVerifier("other", "s3cret")).not.toBe(v);
    });

    it("creates what is missing and never drops anything", () => {
        const sql = renderRolesSql([{ role: "shop", verifier: "SCRAM-SHA-256$x" }, { role: "picloud_monitor", verifier: "SCRAM-SHA-256$y", grants: ["pg_monitor"] }], options.databases);
        expect(sql).toContain("WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop')\\gexec");
        expect(sql).toContain("ALTER ROLE shop WITH LOGIN PASSWORD 'SCRAM-SHA-256$x';");
        expect(sql).toContain("GRANT pg_monitor TO picloud_monitor;");
        expect(sql).toContain("SELECT 'CREATE DATABASE shop OWNER shop' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'shop')\\gexec");
        expect(sql).not.toMatch(/\bDROP\b/i);
    });

    it("renders a cluster step that passes shellcheck and holds no secret (the passwords come on stdin)", () => {
        const script = renderClusterStep({ exec: ["docker", "exec", "-i", "postgres-0"], members, options });
        const r = shellcheck(script);
        expect(r.status, r.output).toBe(0);
        expect(script).toContain("IFS= read -r api_password");
        expect(script).toContain("-K -");
        expect(script).toContain('"synchronous_mode":true');
        expect(script).not.toMatch(/PGPASSWORD=\S/);
    });
});

describe("how the database is reached and watched", () => {
    it("serves the primary and the standbys behind the load balancer by Patroni's role checks, valid for HAProxy's renderer", () => {
        const services = databaseServices(options, members);
        expect(services.map((s) => [s.name, s.port, s.healthPath, s.checkPort])).toEqual([
            ["database-primary", 5000, "/primary", 8008],
            ["database-replicas", 5001, "/replica", 8008],
        ]);
        const cfg = renderHaproxyConfig({ backends: [{ name: "web", servers: [{ name: "w", address: "10.0.0.2:80" }], healthPath: "/" }], routes: [], tcpServices: services, rateLimit: { requestsPer10s: 100 }, statsPort: 8404, maxConnections: 1000 });
        expect(cfg).toContain("listen database-primary\n    bind :5000\n    option httpchk GET /primary");
        expect(cfg).toContain("server postgres-2 10.0.0.13:5432 check port 8008");
        expect(() => renderHaproxyConfig({ backends: [{ name: "web", servers: [{ name: "w", address: "10.0.0.2:80" }], healthPath: "/" }], routes: [], tcpServices: [{ ...services[0], port: 8404 }], rateLimit: { requestsPer10s: 100 }, statsPort: 8404, maxConnections: 1000 })).toThrow(
            'TCP service "database-primary": port 8404 collides with statsPort',
        );
    });

    it("points apps at the registry's name, else the load balancer, else every member", () => {
        expect(databaseEndpoint(options, members, "10.0.0.10", "dev.internal")).toEqual({ host: "primary.database.dev.internal", port: 5000 });
        expect(databaseEndpoint(options, members, "10.0.0.10", undefined)).toEqual({ host: "10.0.0.10", port: 5000 });
        expect(databaseEndpoint(options, members, undefined, undefined)).toEqual({ host: "10.0.0.11,10.0.0.12,10.0.0.13", port: 5432 });
        expect(databaseNames(members, ["10.0.0.5"], ["10.0.0.10"]).map((n) => `${n.name}=${n.addresses.join(",")}`)).toEqual([
            "primary.database=10.0.0.10",
            "replicas.database=10.0.0.10",
            "postgres.database=10.0.0.11,10.0.0.12,10.0.0.13",
            "exporter.database=10.0.0.5",
        ]);
    });

    it("watches Patroni and the exporters, with the synchronous standby's alert only in synchronous mode", () => {
        const spec = databaseSpec(options, members, ["10.0.0.11:9187"]);
        expect(monitoringGaps(spec)).toEqual([]);
        const alerts = spec.alertRules.map((r) => r.alert);
        for (const a of ["PostgresDown", "PostgresNoPrimary", "PostgresTwoPrimaries", "PostgresReplicationLag", "PostgresTooManyConnections", "PostgresDeadlocks", "PostgresNoSynchronousStandby"]) expect(alerts).toContain(a);
        expect(databaseSpec(options, members.slice(0, 2), []).alertRules.map((r) => r.alert)).not.toContain("PostgresNoSynchronousStandby");
    });

    it("the dev stack's database: three members on the registry's Pis, its dashboard and alerts delivered", () => {
        const dev = exampleStack("dev");
        expect(dev.plan.placement.assignments.get("postgres")).toHaveLength(3);
        expect(new Set(dev.plan.placement.assignments.get("postgres"))).toEqual(new Set(dev.plan.placement.assignments.get("etcd")));
    });
});
