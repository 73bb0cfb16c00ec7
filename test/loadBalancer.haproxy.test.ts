/**
 * The real HAProxy on the haproxy.cfg the dev stack's offline plan ships, in a network namespace
 * of its own: the dev Pis' addresses sit on its loopback with a tiny HTTP server each standing in
 * for the app's replicas, and every request comes from inside the namespace. Nothing leaves it.
 *
 * This host has Debian's HAProxy 2.6 (test/support/install-validators.sh); the Pis run the 3.2
 * image (specs.ts HAPROXY_IMAGE), which the renderer also targets but this test does not run.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { loadBalancerSchema } from "../components/tiers/loadBalancer/config";
import { runPlan } from "../components/plan/plan";
import { appBackend } from "../components/tiers/apps/appServers";
import { HAPROXY_HEALTH_PATH, HAPROXY_HTTP_FRONTEND, HAPROXY_METRICS_PATH, renderHaproxyConfig } from "../components/tiers/loadBalancer/renderers";
import { CERTIFICATE_FILE, HAPROXY_RUN_AS, LOAD_BALANCER_DIRS, haproxyInput, loadBalancerPis } from "../components/tiers/loadBalancer/specs";
import { STACKS_DIR, exampleStack } from "./support/exampleStacks";
import { NetnsLab, sleep, waitFor as waitUntil } from "./support/netnsLab";
import { Run, must, run } from "./support/processes";
import { validator } from "./support/validators";

const NS = `pct-lb-${process.pid}`;
const lab = new NetnsLab("picloud-lb-haproxy");
const work = lab.work;

const dev = exampleStack("dev");
const lb = dev.config.tiers.loadBalancer!;
const hello = dev.config.tiers.apps!.hello;
const BACKEND = "app-hello";



/** A command inside the namespace, run to completion. */
function inNs(args: string[]): Run {
    return run("ip", ["netns", "exec", NS, ...args]);
}

/** curl from inside the namespace; never anything but its own addresses. */
function curl(...args: string[]): Run {
    return inNs(["curl", "-sS", "--max-time", "5", ...args]);
}

/** A long-running process inside the namespace, its output in `<work>/<name>.log`. */
function startInNs(name: string, args: string[]): ChildProcess {
    return lab.start(NS, path.join(work, `${name}.log`), args);
}


function logOf(name: string, lines = 30): string {
    try {
        return readFileSync(path.join(work, `${name}.log`), "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

/** Polls until `check` holds; the error shows what it last saw and HAProxy's log. */
const waitFor = (what: string, timeoutMs: number, check: () => boolean | string) =>
    waitUntil(what, timeoutMs, check, { context: () => `haproxy log:\n${logOf("haproxy")}` });

// Each server answers 200 on its health path and, anywhere else, its own name and the
// X-Forwarded-For HAProxy added.
const BACKEND_SERVER = `
const [host, port, name, healthPath] = process.argv.slice(1);
require("node:http").createServer((req, res) => {
    if (req.url === healthPath) return res.end("ok");
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ name, xff: req.headers["x-forwarded-for"] ?? null }) + "\\n");
}).listen(Number(port), host);
`;

interface Server {
    readonly backend: string;
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly healthPath: string;
    process?: ChildProcess;
}

/** Every server of every backend in the config, as HAProxy will check them. */
const servers: Server[] = [];
const appServers = () => servers.filter((s) => s.backend === BACKEND);

function serversOf(config: string): Server[] {
    const found: Server[] = [];
    let backend = "";
    let healthPath = "";
    for (const line of config.split("\n")) {
        backend = /^backend (\S+)$/.exec(line)?.[1] ?? (/^\S/.test(line) ? "" : backend);
        healthPath = /^\s+option httpchk GET (\S+)$/.exec(line)?.[1] ?? healthPath;
        const m = /^\s+server (\S+) ([\d.]+):(\d+) /.exec(line);
        if (m && backend) found.push({ backend, name: m[1], host: m[2], port: Number(m[3]), healthPath });
    }
    return found;
}

function startBackend(s: Server): void {
    s.process = startInNs(`${s.backend}-${s.name}`, [process.execPath, "-e", BACKEND_SERVER, s.host, String(s.port), s.name, s.healthPath]);
}

/** When the last HAProxy started had every server UP. */
let allUpAt = 0;

async function startHaproxy(config: string): Promise<ChildProcess> {
    const checked = serversOf(readFileSync(config, "utf8"));
    const child = startInNs("haproxy", [validator("haproxy"), "-db", "-f", config]);
    await waitFor("HAProxy's /healthz", 10_000, () => child.exitCode === null && curl("-o", "/dev/null", "-w", "%{http_code}", url(lb.statsPort, HAPROXY_HEALTH_PATH)).stdout === "200");
    await waitFor("every server UP", 10_000, () => {
        const live = metrics();
        return checked.every((s) => serverIs(live, s, "UP")) || live.split("\n").filter((l) => l.startsWith("haproxy_server_status") && l.endsWith(" 1")).join("; ");
    });
    allUpAt = Date.now();
    return child;
}

const url = (port: number, p = "/") => `http://127.0.0.1:${port}${p}`;
const metrics = () => curl(url(lb.statsPort, HAPROXY_METRICS_PATH)).stdout;
const serverIs = (text: string, s: Server, state: "UP" | "DOWN") => text.includes(`haproxy_server_status{proxy="${s.backend}",server="${s.name}",state="${state}"} 1`);

function deniedRequests(text: string): number {
    const m = new RegExp(`^haproxy_frontend_requests_denied_total\\{proxy="${HAPROXY_HTTP_FRONTEND}"\\} (\\d+)$`, "m").exec(text);
    if (!m) throw new Error(`no haproxy_frontend_requests_denied_total for ${HAPROXY_HTTP_FRONTEND} in /metrics`);
    return Number(m[1]);
}

/** `n` requests to :80 over one keep-alive connection from `source`, each answer's JSON body. */
function answers(source: string, n: number): { name: string; xff: string }[] {
    const r = curl("--interface", source, ...Array<string>(n).fill(url(80)));
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim().split("\n").map((l) => JSON.parse(l));
}

let outDir = "";
let haproxyCfg = "";

beforeAll(async () => {
    outDir = path.join(work, "plan");
    const plan = await runPlan({ stack: "dev", source: { file: path.join(STACKS_DIR, "Pulumi.dev.yaml") }, outDir });
    if (!plan.ok) throw new Error(plan.error);
    const lbPi = loadBalancerPis(dev.plan.placement, dev.config.pis)[0].name;
    haproxyCfg = path.join(outDir, lbPi, LOAD_BALANCER_DIRS.config, "haproxy.cfg");
    servers.push(...serversOf(readFileSync(haproxyCfg, "utf8")));

    lab.addNamespace(NS);
    for (const host of new Set(servers.map((s) => s.host))) must("ip", ["-n", NS, "address", "add", `${host}/32`, "dev", "lo"]);
    for (const s of servers) startBackend(s);
    await waitFor("the backends", 10_000, () => servers.every((s) => curl("-o", "/dev/null", "-w", "%{http_code}", `http://${s.host}:${s.port}${s.healthPath}`).stdout === "200"));
}, 60_000);

afterAll(async () => {
    await lab.stopAll();
    lab.remove();
});

describe("the dev stack's haproxy.cfg, run by HAProxy", () => {
    let haproxy: ChildProcess;

    // The config runs as shipped: nothing in it is impossible here. uid/gid 99 need no user or
    // group of that number on the host; HAProxy starts as root, binds, then drops to them.
    beforeAll(async () => {
        haproxy = await startHaproxy(haproxyCfg);
    }, 30_000);
    afterAll(() => lab.stop(haproxy));

    it("balances the app over its three replicas on the dev Pis' addresses, checked on its health path", () => {
        expect(appServers().map((s) => `${s.host}:${s.port}`).sort()).toEqual(["192.168.10.11:8080", "192.168.10.12:8080", "192.168.10.13:8080"]);
        expect(new Set(appServers().map((s) => s.name)).size).toBe(3);
        for (const s of appServers()) expect(s.healthPath).toBe(hello.healthPath);
    });

    it("drops root for uid/gid 99 once it has bound its ports", () => {
        const status = readFileSync(`/proc/${haproxy.pid}/status`, "utf8");
        expect(status).toMatch(new RegExp(`^Uid:\\s+${HAPROXY_RUN_AS.uid}\\s+${HAPROXY_RUN_AS.uid}\\s+${HAPROXY_RUN_AS.uid}\\s`, "m"));
        expect(status).toMatch(new RegExp(`^Gid:\\s+${HAPROXY_RUN_AS.gid}\\s+${HAPROXY_RUN_AS.gid}\\s+${HAPROXY_RUN_AS.gid}\\s`, "m"));
    });

    it("answers /healthz on the stats port", () => {
        const r = curl("-o", "/dev/null", "-w", "%{http_code}", url(lb.statsPort, HAPROXY_HEALTH_PATH));
        expect(r.stdout).toBe("200");
    });

    it("sends requests to each server in turn, with the client's address in X-Forwarded-For", () => {
        const got = answers("127.0.0.7", 6);
        expect(new Set(got.slice(0, 3).map((a) => a.name))).toEqual(new Set(appServers().map((s) => s.name)));
        expect(got.slice(3).map((a) => a.name)).toEqual(got.slice(0, 3).map((a) => a.name));
        for (const a of got) expect(a.xff).toBe("127.0.0.7");
    });

    it("drops an X-Forwarded-For the client made up, so apps only see the address HAProxy saw", () => {
        const r = curl("--interface", "127.0.0.7", "-H", "X-Forwarded-For: 6.6.6.6", url(80));
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).xff).toBe("127.0.0.7");
    });

    it("marks a killed replica DOWN within 10 s, keeps serving from the others, and takes it back when it returns", async () => {
        const victim = appServers()[1];
        const [, inter, fall] = /^\s+server \S+ \S+ check inter (\d+)s fall (\d+) /m.exec(readFileSync(haproxyCfg, "utf8"))!.map(Number);
        // A freshly started HAProxy takes a server out at its first failed check; only after
        // `fall` good checks has it the margin of a long-running one. Test the long-running one.
        await sleep(allUpAt + fall * inter * 1000 - Date.now());
        try {
            await lab.stop(victim.process, "SIGKILL");
            const ms = await waitFor(`${victim.name} DOWN`, 10_000, () => serverIs(metrics(), victim, "DOWN"));
            // Gone after `fall` failed checks `inter` apart, not at the first one.
            expect(ms).toBeGreaterThan((fall - 1) * inter * 1000 - 500);
            expect(metrics()).toContain(`haproxy_backend_active_servers{proxy="${BACKEND}"} 2`);
            const got = answers("127.0.0.8", 8);
            expect(new Set(got.map((a) => a.name))).toEqual(new Set(appServers().filter((s) => s !== victim).map((s) => s.name)));
        } finally {
            startBackend(victim);
        }
        await waitFor(`${victim.name} UP again`, 10_000, () => serverIs(metrics(), victim, "UP"));
    });

    it(`answers 429 beyond ${lb.rateLimitPer10s} requests in 10 s from one address, counting them as denied`, () => {
        const before = deniedRequests(metrics());
        const extra = 50;
        const r = curl("--interface", "127.0.0.9", "-w", "%{http_code}\\n", ...Array<string[]>(lb.rateLimitPer10s + extra).fill(["-o", "/dev/null", url(80)]).flat());
        expect(r.status, r.stderr).toBe(0);
        const codes = r.stdout.trim().split("\n");
        expect(codes.slice(0, lb.rateLimitPer10s).every((c) => c === "200")).toBe(true);
        expect(codes.slice(lb.rateLimitPer10s)).toEqual(Array(extra).fill("429"));
        expect(deniedRequests(metrics()) - before).toBe(extra);
        // Another address is not limited.
        expect(curl("--interface", "127.0.0.10", "-o", "/dev/null", "-w", "%{http_code}", url(80)).stdout).toBe("200");
    });

    /** Every `haproxy_*` selector in these PromQL expressions, with its equality matchers. */
    function selectors(exprs: string[]): { text: string; name: string; labels: Record<string, string> }[] {
        return exprs.flatMap((expr) =>
            [...expr.matchAll(/\b(haproxy_[a-z0-9_]+)(\{([^}]*)\})?/g)].map((m) => {
                const matchers = (m[3] ?? "").split(",").filter(Boolean);
                const labels: Record<string, string> = {};
                for (const matcher of matchers) {
                    const eq = /^\s*(\w+)="([^"]*)"\s*$/.exec(matcher);
                    if (!eq) throw new Error(`${m[0]}: only label="value" matchers are checked here, got ${matcher}`);
                    labels[eq[1]] = eq[2];
                }
                return { text: m[0], name: m[1], labels };
            }),
        );
    }

    /** Whether the exporter has a series of that name carrying those labels; job and instance are Prometheus's own. */
    function exported(live: string, s: { name: string; labels: Record<string, string> }): boolean {
        const { job: _job, instance: _instance, ...labels } = s.labels;
        return live
            .split("\n")
            .filter((l) => l.startsWith(`${s.name}{`) || l.startsWith(`${s.name} `))
            .some((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    }

    function monitoringFiles(sub: string): string[] {
        const found = readdirSync(outDir).flatMap((pi) => {
            const dir = path.join(outDir, pi, "srv/picloud/monitoring", sub);
            try {
                return readdirSync(dir).map((f) => path.join(dir, f));
            } catch {
                return [];
            }
        });
        expect(found.length, `no files under */srv/picloud/monitoring/${sub} in the plan`).toBeGreaterThan(0);
        return found;
    }

    it("exports every haproxy_* series the dev stack's alert rules select, with the app's proxy label", () => {
        const exprs = monitoringFiles("prometheus/rules").flatMap((f) =>
            (YAML.parse(readFileSync(f, "utf8")) as { groups: { rules: { expr: string }[] }[] }).groups.flatMap((g) => g.rules.map((r) => r.expr)),
        );
        const used = selectors(exprs);
        // Not vacuous: the load balancer's own rules and the app's golden signals are among them.
        expect(new Set(used.map((s) => s.name))).toEqual(
            new Set([
                "haproxy_process_current_connections",
                "haproxy_process_max_connections",
                "haproxy_frontend_requests_denied_total",
                "haproxy_backend_active_servers",
                "haproxy_backend_http_responses_total",
                "haproxy_backend_response_time_average_seconds",
                "haproxy_backend_current_queue",
            ]),
        );
        // Each backend's golden signals select it by its name in haproxy.cfg; the app's are there.
        const backends = new Set(servers.map((s) => s.backend));
        const selected = used.filter((u) => u.name.startsWith("haproxy_backend_")).map((u) => u.labels.proxy);
        expect(selected).toContain(BACKEND);
        for (const proxy of selected) expect(backends).toContain(proxy);
        const live = metrics();
        expect(used.filter((s) => !exported(live, s)).map((s) => s.text)).toEqual([]);
    });

    it("exports every haproxy_* series the dev stack's dashboards select", () => {
        const exprs: string[] = [];
        const collect = (v: unknown): void => {
            if (Array.isArray(v)) v.forEach(collect);
            else if (v && typeof v === "object") {
                for (const [k, x] of Object.entries(v)) {
                    if (k === "expr" && typeof x === "string") exprs.push(x);
                    else collect(x);
                }
            }
        };
        for (const f of monitoringFiles("grafana/dashboards")) collect(JSON.parse(readFileSync(f, "utf8")));
        const used = selectors(exprs);
        expect(used.length).toBeGreaterThan(0);
        const live = metrics();
        expect(used.filter((s) => !exported(live, s)).map((s) => s.text)).toEqual([]);
    });
});

describe("the dev stack's load balancer with tls set, run by HAProxy", () => {
    let haproxy: ChildProcess;
    let rendered = "";
    const dir = path.join(work, "tls");
    const key = path.join(dir, "key.pem");
    const certificate = path.join(dir, "crt.pem");

    beforeAll(async () => {
        mkdirSync(dir);
        must("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=shop.test", "-keyout", key, "-out", certificate]);
        const pem = path.join(dir, CERTIFICATE_FILE);
        writeFileSync(pem, readFileSync(certificate, "utf8") + readFileSync(key, "utf8"));

        const options = loadBalancerSchema.parse({ ...lb, tls: { certificateSecret: "edgeTlsPem" } });
        const input = haproxyInput(options, [appBackend("hello", hello, { placement: dev.plan.placement, pis: dev.config.pis })]);
        expect(input.tls?.certificatePath).toBe(`${LOAD_BALANCER_DIRS.inContainer}/certs/${CERTIFICATE_FILE}`);
        // The only change: the PEM is read from here instead of the container's mount.
        rendered = renderHaproxyConfig({ ...input, tls: { certificatePath: pem } });
        const config = path.join(dir, "haproxy.cfg");
        writeFileSync(config, rendered);
        haproxy = await startHaproxy(config);
    }, 30_000);
    afterAll(() => lab.stop(haproxy));

    it("serves HTTPS on :443 with the given certificate, HTTP/2 by ALPN", () => {
        const r = curl("--cacert", certificate, "--resolve", "shop.test:443:127.0.0.1", "--http2", "-w", "%{http_code} %{http_version}", "https://shop.test/");
        expect(r.status, r.stderr).toBe(0);
        const [body, status] = r.stdout.split("\n");
        expect(status).toBe("200 2");
        expect(appServers().map((s) => s.name)).toContain(JSON.parse(body).name);
        expect(curl("-k", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1/").stdout).toBe("200");
    });

    it("redirects plain HTTP on :80 to HTTPS with a 301, keeping path and query", () => {
        const r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://shop.test/cart?item=1", "--resolve", "shop.test:80:127.0.0.1");
        expect(r.stdout).toBe("301 https://shop.test/cart?item=1");
    });

    // OpenSSL 3 clients refuse TLS 1.1 at their default security level; lowered, the refusal can
    // only be the server's.
    const tls11 = ["-k", "--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT:@SECLEVEL=0", "-o", "/dev/null", "-w", "%{http_code}"];

    it("refuses TLS 1.1 and accepts TLS 1.2", () => {
        const r = curl(...tls11, "https://127.0.0.1/");
        expect(r.status, r.stderr).toBe(35);
        expect(r.stderr).toMatch(/protocol version/);
        expect(curl("-k", "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1/").stdout).toBe("200");
    });

    it("refuses TLS 1.1 also where the TLS library would allow it", async () => {
        // OpenSSL 3 servers refuse TLS 1.1 at their default security level too, so the test above
        // would hold whatever the config said. With the level lowered in HAProxy the config must
        // still refuse 1.1, and a config allowing it lets the same client through. (HAProxy 2.2+
        // also defaults to TLS 1.2 at least; the rendered line keeps that explicit.)
        await lab.stop(haproxy);
        const permissive = rendered.replace("\nglobal\n", "\nglobal\n    ssl-default-bind-ciphers DEFAULT:@SECLEVEL=0\n");
        expect(permissive).toContain("ssl-min-ver TLSv1.2 ");
        const variants = [
            { name: "as rendered", text: permissive, expected: 35 },
            { name: "with ssl-min-ver TLSv1.0", text: permissive.replace("ssl-min-ver TLSv1.2 ", "ssl-min-ver TLSv1.0 "), expected: 0 },
        ];
        for (const v of variants) {
            const config = path.join(dir, `haproxy-tls11-${v.expected}.cfg`);
            writeFileSync(config, v.text);
            haproxy = await startHaproxy(config);
            try {
                const r = curl(...tls11, "https://127.0.0.1/");
                expect(r.status, `${v.name}: ${r.stderr}`).toBe(v.expected);
            } finally {
                await lab.stop(haproxy);
            }
        }
    });
});
