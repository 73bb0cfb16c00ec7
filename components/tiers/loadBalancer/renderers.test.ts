import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../../../test/support/tempDirs";
import { validator } from "../../../test/support/validators";
import {
    HAPROXY_HTTP_FRONTEND,
    HAPROXY_STATS_FRONTEND,
    type HaproxyConfigInput,
    KEEPALIVED_CHECK_SCRIPT,
    type KeepalivedConfigInput,
    renderHaproxyConfig,
    renderKeepalivedConfig,
} from "./renderers";

const tmp = tempDirs("picloud-loadbalancer-");

function run(file: string, args: string[]): { status: number | null; out: string } {
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 30_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `haproxy -c` on the text, from a fresh directory; the PEM, when given, is written beside it. */
function haproxyCheck(cfg: string, dir = tmp()): { status: number | null; out: string } {
    const file = path.join(dir, "haproxy.cfg");
    writeFileSync(file, cfg);
    return run(validator("haproxy"), ["-c", "-f", file]);
}

/** keepalived's config test mode; it only parses, so nothing runs and no address is added. */
function keepalivedCheck(cfg: string): { status: number | null; out: string } {
    const file = path.join(tmp(), "keepalived.conf");
    writeFileSync(file, cfg);
    return run(validator("keepalived"), [`--config-test`, "-f", file]);
}

/** A throwaway self-signed certificate and key in one PEM, as HAProxy's `crt` wants. */
function selfSignedPem(dir: string): string {
    const key = path.join(dir, "key.pem");
    const crt = path.join(dir, "crt.pem");
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=picloud.test"], {
        encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const pem = path.join(dir, "site.pem");
    spawnSync("sh", ["-c", `cat "${crt}" "${key}" > "${pem}"`]);
    return pem;
}

function input(overrides: Partial<HaproxyConfigInput> = {}): HaproxyConfigInput {
    return {
        backends: [
            {
                name: "web",
                servers: [
                    { name: "app1", address: "192.168.1.21:8080" },
                    { name: "app2", address: "192.168.1.22:8080" },
                ],
                healthPath: "/healthz",
            },
            { name: "api", servers: [{ name: "api1", address: "192.168.1.31:9000" }], healthPath: "/ready", balance: "leastconn" },
        ],
        routes: [
            { backend: "api", pathPrefix: "/api" },
            { backend: "api", host: "api.picloud.test" },
        ],
        rateLimit: { requestsPer10s: 200 },
        statsPort: 8405,
        maxConnections: 2000,
        ...overrides,
    };
}

/** The lines of one `frontend`/`backend`/... section, trimmed, comments dropped. */
function section(cfg: string, header: string): string[] {
    const out: string[] = [];
    let inside = false;
    for (const raw of cfg.split("\n")) {
        if (/^\S/.test(raw)) inside = raw.trim() === header;
        else if (inside && raw.trim() !== "" && !raw.trim().startsWith("#")) out.push(raw.trim());
    }
    return out;
}

describe("renderHaproxyConfig", () => {
    it("renders two routed backends that haproxy -c accepts without TLS", () => {
        const cfg = renderHaproxyConfig(input());
        const r = haproxyCheck(cfg);
        expect(r.status, `${r.out}\n${cfg}`).toBe(0);
        // Warnings today tend to be errors in the next major version.
        expect(r.out).not.toMatch(/WARNING|ALERT/);

        const fe = section(cfg, `frontend ${HAPROXY_HTTP_FRONTEND}`);
        expect(fe.filter((l) => l.startsWith("bind "))).toEqual(["bind :80"]);
        expect(fe).not.toContainEqual(expect.stringContaining("redirect"));
        // Routes in order, the first backend as default.
        expect(fe.filter((l) => l.startsWith("use_backend "))).toEqual(["use_backend api if route0_path", "use_backend api if route1_host"]);
        expect(fe).toContain("acl route0_path path /api");
        expect(fe).toContain("acl route0_path path_beg /api/");
        expect(fe).toContain("acl route1_host req.hdr(host),field(1,:) -i api.picloud.test");
        expect(fe.at(-1)).toBe("default_backend web");
    });

    it("limits each client address with a stick table and a 429", () => {
        const fe = section(renderHaproxyConfig(input()), `frontend ${HAPROXY_HTTP_FRONTEND}`);
        expect(fe).toContain("stick-table type ip size 100k expire 30s store http_req_rate(10s)");
        const track = fe.indexOf("http-request track-sc0 src");
        const deny = fe.indexOf("http-request deny deny_status 429 if { sc_http_req_rate(0) gt 200 }");
        expect(track).toBeGreaterThanOrEqual(0);
        expect(deny).toBeGreaterThan(track);
        // The limit applies before any routing decision.
        expect(deny).toBeLessThan(fe.findIndex((l) => l.startsWith("use_backend")));
    });

    it("serves the Prometheus exporter on the stats port", () => {
        const cfg = renderHaproxyConfig(input());
        expect(section(cfg, `frontend ${HAPROXY_STATS_FRONTEND}`)).toEqual(
            expect.arrayContaining(["bind :8405", "http-request use-service prometheus-exporter if { path /metrics }"]),
        );
        expect(section(cfg, "global")).toContain("maxconn 2000");
        expect(section(cfg, "defaults")).toContain("option forwardfor");
        expect(section(cfg, "global")).toContain("log stdout format raw local0 info");
    });

    it("health-checks every server of every backend", () => {
        const cfg = renderHaproxyConfig(input());
        const web = section(cfg, "backend web");
        expect(web).toEqual(["balance roundrobin", "option httpchk GET /healthz", "http-check expect status 200", "server app1 192.168.1.21:8080 check inter 2s fall 3 rise 2", "server app2 192.168.1.22:8080 check inter 2s fall 3 rise 2"]);
        const api = section(cfg, "backend api");
        expect(api).toContain("balance leastconn");
        expect(api).toContain("option httpchk GET /ready");
        const servers = cfg.split("\n").filter((l) => l.trim().startsWith("server "));
        expect(servers).toHaveLength(3);
        for (const s of servers) expect(s).toMatch(/ check inter 2s fall 3 rise 2$/);
    });

    it("terminates TLS on :443 and redirects :80, accepted by haproxy -c with a real certificate", () => {
        const dir = tmp();
        const pem = selfSignedPem(dir);
        const cfg = renderHaproxyConfig(input({ tls: { certificatePath: pem }, routes: [{ backend: "api", host: "api.picloud.test", pathPrefix: "/v1/" }] }));
        const r = haproxyCheck(cfg, dir);
        expect(r.status, `${r.out}\n${cfg}`).toBe(0);
        expect(r.out).not.toMatch(/WARNING|ALERT/);

        const fe = section(cfg, `frontend ${HAPROXY_HTTP_FRONTEND}`);
        expect(fe.filter((l) => l.startsWith("bind "))).toEqual(["bind :80", `bind :443 ssl crt ${pem} alpn h2,http/1.1`]);
        expect(fe).toContain("http-request redirect scheme https code 301 unless { ssl_fc }");
        expect(fe).toContain("use_backend api if route0_host route0_path");
        expect(fe).toContain("acl route0_path path /v1");
    });

    it("fails haproxy -c on a broken config, so the harness can fail", () => {
        const broken = renderHaproxyConfig(input()).replace("balance roundrobin", "balance no-such-algorithm");
        const r = haproxyCheck(broken);
        expect(r.status).not.toBe(0);
        expect(r.out).toMatch(/balance/);
        // A missing certificate must fail too: the check really loads it.
        expect(haproxyCheck(renderHaproxyConfig(input({ tls: { certificatePath: "/nonexistent/site.pem" } }))).status).not.toBe(0);
    });

    it("rejects bad input with a message naming the culprit", () => {
        const base = input();
        expect(() => renderHaproxyConfig(input({ backends: [...base.backends, { name: "empty", servers: [], healthPath: "/" }] }))).toThrow(/backend "empty" has no servers/);
        expect(() => renderHaproxyConfig(input({ backends: [] }))).toThrow(/at least one backend/);
        expect(() => renderHaproxyConfig(input({ routes: [{ backend: "nope", pathPrefix: "/x" }] }))).toThrow(/backend "nope", which does not exist/);
        expect(() => renderHaproxyConfig(input({ routes: [{ backend: "api" }] }))).toThrow(/route 0 \(backend "api"\) needs a host or a pathPrefix/);
        expect(() => renderHaproxyConfig(input({ backends: [{ name: "web", servers: [{ name: "a", address: "10.0.0.1" }], healthPath: "/" }] }))).toThrow(/backend "web", server "a": address must be host:port/);
        expect(() => renderHaproxyConfig(input({ backends: [{ name: "web", servers: [{ name: "a", address: "10.0.0.1:1" }], healthPath: "/x y" }] }))).toThrow(/backend "web": healthPath/);
        expect(() => renderHaproxyConfig(input({ backends: [base.backends[0], base.backends[0]] }))).toThrow(/backend "web" appears twice/);
        expect(() => renderHaproxyConfig(input({ rateLimit: { requestsPer10s: 0 } }))).toThrow(/requestsPer10s/);
        expect(() => renderHaproxyConfig(input({ statsPort: 80 }))).toThrow(/collides/);
    });
});

/**
 * A non-loopback interface of this machine: keepalived's config test looks the interface up and
 * refuses loopback, so the test borrows a real one (only parsed; no address is added to it).
 */
function realInterface(): string {
    // ARPHRD_LOOPBACK is 772.
    const name = readdirSync("/sys/class/net").find((n) => readFileSync(`/sys/class/net/${n}/type`, "utf8").trim() !== "772");
    if (!name) throw new Error("no non-loopback network interface to run keepalived's config test against");
    return name;
}

function vrrp(overrides: Partial<KeepalivedConfigInput> = {}): KeepalivedConfigInput {
    return {
        instance: "picloud_lb",
        interface: realInterface(),
        virtualIp: "192.168.1.10",
        prefixLength: 24,
        routerId: 51,
        priority: 150,
        peers: ["192.168.1.12"],
        self: "192.168.1.11",
        checkScript: "/usr/bin/curl -fsS http://127.0.0.1:8405/metrics -o /dev/null",
        ...overrides,
    };
}

describe("renderKeepalivedConfig", () => {
    it("renders a unicast VRRP instance that keepalived's config test accepts", () => {
        const cfg = renderKeepalivedConfig(vrrp({ notifyScript: "/usr/local/bin/picloud-vrrp-notify" }));
        const r = keepalivedCheck(cfg);
        expect(r.status, `${r.out}\n${cfg}`).toBe(0);
        // The config test prints nothing for a clean file; anything printed is a complaint.
        expect(r.out.trim()).toBe("");

        const lines = cfg.split("\n").map((l) => l.trim());
        expect(lines).toContain("script_user root");
        expect(lines).toContain("enable_script_security");
        expect(lines).toContain('script "/usr/bin/curl -fsS http://127.0.0.1:8405/metrics -o /dev/null"');
        expect(lines).toContain("state BACKUP");
        expect(lines).not.toContain("state MASTER");
        // Once moved, the address stays: a recovered Pi stands by.
        expect(lines).toContain("nopreempt");
        expect(lines).toContain("virtual_router_id 51");
        expect(lines).toContain("priority 150");
        expect(lines).toContain("unicast_src_ip 192.168.1.11");
        expect(lines).toContain(`192.168.1.10/24 dev ${realInterface()}`);
        expect(lines).toContain('notify "/usr/local/bin/picloud-vrrp-notify"');
        expect(lines.indexOf(KEEPALIVED_CHECK_SCRIPT)).toBeGreaterThan(lines.indexOf("track_script {"));
        // No plain-text VRRP password anywhere.
        expect(cfg).not.toMatch(/auth_pass|authentication\s*\{/);
    });

    it("fails keepalived's config test on a broken config, so the harness can fail", () => {
        const broken = renderKeepalivedConfig(vrrp()).replace("virtual_router_id 51", "virtual_router_id 999");
        const r = keepalivedCheck(broken);
        expect(r.status).not.toBe(0);
        expect(r.out).toMatch(/999/);
    });

    it("rejects bad input", () => {
        expect(() => renderKeepalivedConfig(vrrp({ routerId: 0 }))).toThrow(/routerId/);
        expect(() => renderKeepalivedConfig(vrrp({ interface: "lo" }))).toThrow(/loopback/);
        expect(() => renderKeepalivedConfig(vrrp({ priority: 255 }))).toThrow(/priority/);
        expect(() => renderKeepalivedConfig(vrrp({ peers: [] }))).toThrow(/at least one peer/);
        expect(() => renderKeepalivedConfig(vrrp({ peers: ["192.168.1.11"] }))).toThrow(/own peers/);
        expect(() => renderKeepalivedConfig(vrrp({ virtualIp: "192.168.1.300" }))).toThrow(/virtualIp/);
        expect(() => renderKeepalivedConfig(vrrp({ checkScript: 'curl "x"' }))).toThrow(/checkScript/);
    });
});
