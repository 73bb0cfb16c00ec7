import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { shellcheck } from "../../../test/support/scripts";
import { stringify } from "yaml";
import { validator } from "../../../test/support/validators";
import {
    checkFunctionSpecs,
    FAASD_CE_MAX_FUNCTIONS,
    FUNCTION_SCRIPT_SUMMARY,
    functionDeleteCommand,
    functionDeployCommand,
    functionDeployment,
    type FunctionSpec,
    SPEC_HASH_LABEL,
} from "./functions";
import { functionAlertRules, GATEWAY_METRICS, gatewayFunctionLabel } from "./metrics";

const hello: FunctionSpec = {
    name: "hello",
    image: `ghcr.io/openfaas/figlet:latest@sha256:${"a".repeat(64)}`,
    env: { WRITE_DEBUG: "false", GREETING: "it's \"quoted\" $(not run)" },
    memoryMb: 128,
    cpus: 0.5,
};

const tempDirs: string[] = [];
function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "picloud-functions-"));
    tempDirs.push(dir);
    return dir;
}
const servers: Server[] = [];
afterEach(() => {
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    for (const s of servers.splice(0)) s.close();
});


describe("functionDeployment", () => {
    it("is the FunctionDeployment the gateway takes, with limits and a spec hash label", () => {
        const d = functionDeployment(hello);
        expect(d).toEqual({
            service: "hello",
            image: hello.image,
            envVars: { GREETING: hello.env.GREETING, WRITE_DEBUG: "false" },
            limits: { memory: "128Mi", cpu: "0.5" },
            labels: { [SPEC_HASH_LABEL]: expect.stringMatching(/^[0-9a-f]{64}$/) },
        });
        expect(functionDeployment({ ...hello, cpus: undefined }).limits).toEqual({ memory: "128Mi" });
    });

    it("hashes the spec, not the order its env was written in", () => {
        const hash = (fn: FunctionSpec) => (functionDeployment(fn).labels as Record<string, string>)[SPEC_HASH_LABEL];
        expect(hash({ ...hello, env: { GREETING: hello.env.GREETING, WRITE_DEBUG: "false" } })).toBe(hash(hello));
        expect(hash({ ...hello, memoryMb: 256 })).not.toBe(hash(hello));
        expect(hash({ ...hello, image: `ghcr.io/openfaas/figlet:latest@sha256:${"b".repeat(64)}` })).not.toBe(hash(hello));
        expect(hash({ ...hello, env: { ...hello.env, MORE: "1" } })).not.toBe(hash(hello));
    });
});

describe("checkFunctionSpecs", () => {
    it.each([
        [{ ...hello, name: "Hello" }, /function: name must be a lowercase DNS label .*got "Hello"/],
        [{ ...hello, name: "hello_world" }, /name must be a lowercase DNS label/],
        [{ ...hello, image: "ghcr.io/openfaas/figlet:latest" }, /function "hello": image must be pinned by digest .*got "ghcr\.io\/openfaas\/figlet:latest"/],
        [{ ...hello, env: { "BAD-KEY": "x" } }, /function "hello": env key "BAD-KEY" is not an environment variable name/],
        [{ ...hello, memoryMb: 0 }, /function "hello": memoryMb must be a positive whole number of MiB, got 0/],
        [{ ...hello, memoryMb: 12.5 }, /memoryMb must be a positive whole number/],
        [{ ...hello, cpus: 0 }, /function "hello": cpus must be a positive number of cores, got 0/],
    ])("refuses %j", (fn, message) => {
        expect(() => checkFunctionSpecs([fn])).toThrow(message);
        expect(() => functionDeployCommand(fn, 8080)).toThrow(message);
    });

    it("refuses a name declared twice", () => {
        expect(() => checkFunctionSpecs([hello, { ...hello }])).toThrow(/function "hello" is declared twice/);
    });

    it(`refuses more than faasd CE's ${FAASD_CE_MAX_FUNCTIONS} functions`, () => {
        const many = (n: number) => Array.from({ length: n }, (_, i) => ({ ...hello, name: `fn-${i}` }));
        expect(() => checkFunctionSpecs(many(FAASD_CE_MAX_FUNCTIONS))).not.toThrow();
        expect(() => checkFunctionSpecs(many(FAASD_CE_MAX_FUNCTIONS + 1))).toThrow(/16 functions declared, but faasd CE deploys at most 15 .*remove 1/);
    });

    it("refuses a gateway port that is not a port", () => {
        expect(() => functionDeployCommand(hello, 0)).toThrow(/gatewayPort must be a port between 1 and 65535, got 0/);
        expect(() => functionDeleteCommand(hello, 65536)).toThrow(/gatewayPort must be a port/);
        expect(() => functionDeleteCommand({ name: "x y" }, 8080)).toThrow(/name must be a lowercase DNS label/);
    });
});

describe("the function scripts", () => {
    it.each([
        ["deploy", functionDeployCommand(hello, 8080)],
        ["delete", functionDeleteCommand(hello, 31112)],
    ])("%s passes shellcheck -S style and sets -euo pipefail first", (_, script) => {
        const result = shellcheck(script);
        expect(result.status, result.output).toBe(0);
        expect(result.output).toBe("");
        expect(script.split("\n").find((l) => l.trim() !== "" && !l.startsWith("#"))).toBe("set -euo pipefail");
    });

    it("carries the deployment as one quoted word that bash gives back exactly", () => {
        const script = functionDeployCommand(hello, 8080);
        const line = script.split("\n").find((l) => l.startsWith("readonly DEPLOYMENT="));
        const r = spawnSync("bash", ["-c", `${line}\nprintf '%s' "$DEPLOYMENT"`], { encoding: "utf8" });
        expect(JSON.parse(r.stdout)).toEqual(functionDeployment(hello));
        expect(script).toContain("readonly GATEWAY_URL='http://127.0.0.1:8080'");
    });
});

describe("GATEWAY_METRICS and functionAlertRules", () => {
    it("names the gateway's series, port and path", () => {
        expect(GATEWAY_METRICS).toMatchObject({
            containerPort: 8082,
            path: "/metrics",
            invocations: "gateway_function_invocation_total",
            duration: "gateway_functions_seconds",
            replicas: "gateway_service_count",
        });
        expect(gatewayFunctionLabel("hello")).toBe("hello.openfaas-fn");
    });

    it("gives an error-ratio and a latency alert that pass promtool check rules", () => {
        const rules = functionAlertRules("functions-gateway", { errorRatio: 0.1, p95Seconds: 2 });
        expect(rules.map((r) => r.alert)).toEqual(["FunctionErrorRatioHigh", "FunctionLatencyHigh"]);
        expect(rules[0].expr).toContain('gateway_function_invocation_total{job="functions-gateway",code=~"5.."}[5m]');
        expect(rules[0].expr).toMatch(/> 0\.1$/);
        expect(rules[1].expr).toBe('histogram_quantile(0.95, sum by (function_name, le) (rate(gateway_functions_seconds_bucket{job="functions-gateway"}[5m]))) > 2');
        const file = join(tempDir(), "functions.rules.yml");
        const groups = [
            {
                name: "functions",
                rules: rules.map((r) => ({ alert: r.alert, expr: r.expr, for: r.for, labels: { severity: r.severity }, annotations: { summary: r.summary, description: r.description } })),
            },
        ];
        writeFileSync(file, stringify({ groups }));
        const r = spawnSync(validator("promtool"), ["check", "rules", file], { encoding: "utf8" });
        expect(r.status, r.stdout + r.stderr).toBe(0);
    });

    it.each([
        [{ errorRatio: 0 }, /errorRatio must be between 0 and 1/],
        [{ errorRatio: 1.5 }, /errorRatio must be between 0 and 1/],
        [{ p95Seconds: -1 }, /p95Seconds must be positive/],
    ])("refuses thresholds %j", (t, message) => {
        expect(() => functionAlertRules("functions-gateway", t)).toThrow(message);
    });
});

/**
 * The function scripts run for real, as root in a private mount namespace whose /var/lib holds
 * the gateway's basic-auth files, against a stand-in gateway that answers as faasd's does and
 * refuses requests without the right credentials. A curl wrapper logs every command line.
 */
describe("the function scripts, against a stand-in gateway", () => {
    const USER = "admin";
    const PASSWORD = "gw-p4ss:word!";
    const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;

    interface Call {
        readonly method: string;
        readonly url: string;
        readonly body: string;
    }

    async function fakeGateway(): Promise<{ port: number; calls: Call[]; functions: Map<string, Record<string, unknown>> }> {
        const calls: Call[] = [];
        const functions = new Map<string, Record<string, unknown>>();
        const server = createServer((req, res) => {
            let body = "";
            req.on("data", (c: Buffer) => (body += c.toString()));
            req.on("end", () => {
                const url = req.url ?? "";
                calls.push({ method: req.method ?? "", url, body });
                if (url === "/healthz") {
                    res.end();
                    return;
                }
                if (req.headers.authorization !== AUTH) {
                    res.statusCode = 401;
                    res.end("unauthorized");
                    return;
                }
                const named = /^\/system\/function\/([^/]+)$/.exec(url);
                if (req.method === "GET" && named) {
                    const f = functions.get(named[1]);
                    res.statusCode = f ? 200 : 404;
                    res.end(f ? JSON.stringify({ name: named[1], image: f.image, labels: f.labels, envVars: f.envVars, replicas: 1 }) : "");
                    return;
                }
                if (url === "/system/functions") {
                    const b = JSON.parse(body) as Record<string, unknown>;
                    const name = (b.service ?? b.functionName) as string;
                    const exists = functions.has(name);
                    // As faasd: deploy fails on an existing container, update and delete on a missing one.
                    if ((req.method === "POST" && exists) || (req.method !== "POST" && !exists)) {
                        res.statusCode = exists ? 400 : 404;
                        res.end(exists ? `unable to create container: ${name}, error: already exists` : `service ${name} not found`);
                        return;
                    }
                    if (req.method === "DELETE") functions.delete(name);
                    else functions.set(name, b);
                    res.end();
                    return;
                }
                res.statusCode = 500;
                res.end();
            });
        });
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        return { port: (server.address() as AddressInfo).port, calls, functions };
    }

    /** A /var/lib with the gateway's basic-auth files, and a logging curl. */
    function piTree(withSecrets = true): { root: string; fakes: string; curlLog: string } {
        const root = tempDir();
        const secrets = join(root, "varlib", "faasd", "secrets");
        mkdirSync(secrets, { recursive: true });
        if (withSecrets) {
            writeFileSync(join(secrets, "basic-auth-user"), USER);
            writeFileSync(join(secrets, "basic-auth-password"), PASSWORD);
        }
        const fakes = join(root, "bin");
        mkdirSync(fakes);
        const curlLog = join(root, "curl.log");
        writeFileSync(join(fakes, "curl"), `#!/bin/sh\nprintf '%s\\n' "$*" >>${curlLog}\nexec /usr/bin/curl "$@"\n`);
        chmodSync(join(fakes, "curl"), 0o755);
        writeFileSync(curlLog, "");
        return { root, fakes, curlLog };
    }

    // Asynchronous: the stand-in gateway answers from this process's event loop.
    function run(tree: { root: string; fakes: string }, script: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
        const file = join(tree.root, "script.sh");
        writeFileSync(file, script);
        const wrapper = `set -e\nmount --bind ${join(tree.root, "varlib")} /var/lib\nexec bash ${file}`;
        return new Promise((resolve) => {
            const child = spawn("unshare", ["-m", "--propagation", "private", "bash", "-c", wrapper], {
                env: { ...process.env, PATH: `${tree.fakes}:/usr/sbin:/usr/bin:/sbin:/bin` },
            });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
            child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
            child.on("close", (status) => resolve({ status, stdout, stderr }));
        });
    }

    it("creates a function, leaves it alone when unchanged, replaces it when changed, then deletes it", async () => {
        const gw = await fakeGateway();
        const tree = piTree();

        const created = await run(tree, functionDeployCommand(hello, gw.port));
        expect(created.status, created.stderr).toBe(0);
        expect(created.stdout).toBe("picloud: changed function-hello: created\npicloud-function: changed=1\n");
        expect(created.stdout).toMatch(FUNCTION_SCRIPT_SUMMARY);
        expect(gw.functions.get("hello")).toEqual(functionDeployment(hello));

        const again = await run(tree, functionDeployCommand(hello, gw.port));
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toBe("picloud: ok function-hello\npicloud-function: changed=0\n");

        const bigger = { ...hello, memoryMb: 256 };
        const replaced = await run(tree, functionDeployCommand(bigger, gw.port));
        expect(replaced.status, replaced.stderr).toBe(0);
        expect(replaced.stdout).toContain("picloud: changed function-hello: replaced");
        expect(gw.functions.get("hello")).toEqual(functionDeployment(bigger));

        const deleted = await run(tree, functionDeleteCommand(hello, gw.port));
        expect(deleted.status, deleted.stderr).toBe(0);
        expect(deleted.stdout).toBe("picloud: changed function-hello: deleted\npicloud-function: changed=1\n");
        const gone = await run(tree, functionDeleteCommand(hello, gw.port));
        expect(gone.status, gone.stderr).toBe(0);
        expect(gone.stdout).toBe("picloud: ok function-hello\npicloud-function: changed=0\n");

        expect(gw.calls.filter((c) => c.url !== "/healthz").map((c) => `${c.method} ${c.url}`)).toEqual([
            "GET /system/function/hello",
            "POST /system/functions",
            "GET /system/function/hello",
            "GET /system/function/hello",
            "PUT /system/functions",
            "DELETE /system/functions",
            "DELETE /system/functions",
        ]);
        expect(JSON.parse(gw.calls.filter((c) => c.method === "DELETE")[0].body)).toEqual({ functionName: "hello" });

        // The credentials travelled in a header fed to curl on stdin, never on a command line.
        const commandLines = readFileSync(tree.curlLog, "utf8");
        expect(commandLines).toContain("-K -");
        expect(commandLines).not.toContain(PASSWORD);
        expect(commandLines).not.toContain(AUTH.split(" ")[1]);
        for (const r of [created, again, replaced, deleted, gone]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    });

    it("fails with the gateway's answer when the gateway refuses", async () => {
        const gw = await fakeGateway();
        const tree = piTree();
        writeFileSync(join(tree.root, "varlib", "faasd", "secrets", "basic-auth-password"), "wrong");
        const r = await run(tree, functionDeployCommand(hello, gw.port));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain("picloud: error: the gateway answered 401 to asking for function hello: unauthorized");
        expect(gw.functions.size).toBe(0);
    });

    it("says how to run it when the basic-auth files cannot be read", async () => {
        const gw = await fakeGateway();
        const r = await run(piTree(false), functionDeployCommand(hello, gw.port));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/cannot read \/var\/lib\/faasd\/secrets\/basic-auth-user: run this as root on the faasd Pi/);
    });
});
