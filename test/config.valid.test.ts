import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { picloudProgram } from "../components/cloud/program";
import { loadStackConfig } from "../components/cloud/stackConfig";
import { PicloudConfigError, describeValue } from "../components/config/errors";
import { DEFAULT_OS_RESERVE_MB, RawStackConfig, StackConfig, parseStackConfig } from "../components/config/schema";
import { installMockRuntime } from "../components/plan/mockRuntime";
import { readStackDocument, toPulumiConfig } from "../components/plan/plan";

const root = path.resolve(__dirname, "..");
const SECRET = { secure: "v1:AAAA" };

/** Runs a stack file through the real program path, with the secrets it needs present. */
async function runStack(stack: string, secrets: readonly string[]) {
    const document = readStackDocument(path.join(root, "stacks", `Pulumi.${stack}.yaml`));
    const fileConfig: Record<string, unknown> = { ...document.config };
    for (const key of secrets) fileConfig[key] = SECRET;
    const { config, secretKeys } = toPulumiConfig(fileConfig);
    const run = await installMockRuntime({ project: "picloud", stack, config, secretKeys });
    // As `pulumi up` runs it: from the committed placement lock, which must be up to date.
    const { outputs } = picloudProgram({ lockFile: path.join(root, "stacks", `placement.${stack}.json`), planCommand: `npm run plan -- --stack ${stack}` });
    await run.settle();
    const parsed: StackConfig = loadStackConfig();
    return { outputs, parsed, run };
}

describe("the example stacks", () => {
    it("lab: one Pi, defaults applied", async () => {
        const { outputs, parsed, run } = await runStack("lab", ["picloud:sshPrivateKey"]);
        expect(outputs.pis).toEqual({ "lab-pi": "192.168.1.50" });
        expect(run.resources.length).toBeGreaterThan(0);
        expect(parsed.secretKeys).toEqual(["sshPrivateKey"]);
        expect(parsed.osReserveMb).toBe(DEFAULT_OS_RESERVE_MB);
        expect(parsed.osReserveMb).toBe(512);
        expect(parsed.network).toBeUndefined();
        expect(parsed.bootstrap).toEqual({
            timezone: "Etc/UTC",
            ntpServers: ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
            journalRuntimeMaxMb: 64,
            fail2banIgnore: [],
        });
        expect(parsed.pis).toEqual([
            expect.objectContaining({ name: "lab-pi", sshUser: "pi", sshPort: 22, cpus: 4, storage: "sd", labels: {} }),
        ]);
        expect(parsed.tiers.apps?.hello).toMatchObject({ replicas: 1, spread: true, env: {}, secretEnv: {}, placement: {} });
    });

    it("dev: three Pis, defaults applied, given values kept", async () => {
        const { outputs, parsed, run } = await runStack("dev", ["picloud:sshPrivateKey"]);
        expect(Object.keys(outputs.pis)).toEqual(["dev-1", "dev-2", "dev-3"]);
        expect(run.resources.length).toBeGreaterThan(0);
        expect(parsed.osReserveMb).toBe(512);
        expect(parsed.network).toEqual({ subnet: "192.168.10.0/24" });
        expect(parsed.bootstrap.timezone).toBe("Europe/Berlin");
        expect(parsed.bootstrap.ntpServers).toEqual(["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]);
        for (const pi of parsed.pis) {
            expect(pi).toMatchObject({ sshUser: "pi", sshPort: 22, cpus: 4, storage: "sd", model: "pi4", memoryMb: 4096 });
        }
        expect(parsed.pis.map((p) => p.labels.role)).toEqual(["edge", "edge", "data"]);
    });

    it("prod: six Pis with the app's secret, defaults where not given", async () => {
        const { outputs, parsed, run } = await runStack("prod", ["picloud:sshPrivateKey", "picloud:helloApiToken", "picloud:edgeTlsPem"]);
        expect(Object.keys(outputs.pis)).toHaveLength(6);
        expect(run.resources.length).toBeGreaterThan(0);
        expect(parsed.secretKeys).toEqual(["edgeTlsPem", "helloApiToken", "sshPrivateKey"]);
        expect(parsed.osReserveMb).toBe(768);
        expect(parsed.bootstrap).toMatchObject({ timezone: "Europe/Berlin", ntpServers: ["0.de.pool.ntp.org", "1.de.pool.ntp.org"], journalRuntimeMaxMb: 64 });
        for (const pi of parsed.pis) expect(pi).toMatchObject({ sshUser: "pi", sshPort: 22, cpus: 4 });
        expect(Object.fromEntries(parsed.pis.map((p) => [p.name, p.storage]))).toEqual({
            "edge-1": "sd",
            "edge-2": "sd",
            "app-1": "ssd",
            "app-2": "sd",
            "data-1": "ssd",
            "data-2": "ssd",
        });
        expect(parsed.tiers.apps?.hello.secretEnv).toEqual({ API_TOKEN: "helloApiToken" });
    });
});

describe("parseStackConfig", () => {
    const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaWQtkkIJq7Iza/VlBf4dpDjLz1Rser9LqnV8bTJjAk";
    // An ssh-rsa key-type blob (exponent only, no real modulus): enough for the type check.
    const RSA_BLOB = "AAAAB3NzaC1yc2EAAAADAQABAAAAAQA=";
    const pi = (over: Record<string, unknown> = {}) => ({ name: "p1", address: "192.168.1.10", hostKey: ED25519, model: "pi4", memoryMb: 4096, ...over });
    const raw = (values: Record<string, unknown>, secretKeys: string[] = ["sshPrivateKey"]): RawStackConfig => ({ values, secretKeys });
    const problemsOf = (r: RawStackConfig) => {
        try {
            parseStackConfig(r);
        } catch (e) {
            expect(e).toBeInstanceOf(PicloudConfigError);
            return (e as PicloudConfigError).problems;
        }
        throw new Error("config was accepted");
    };

    it("accepts a minimal config and applies the defaults", () => {
        const config = parseStackConfig(raw({ pis: [pi()] }));
        expect(config.pis[0]).toMatchObject({ sshUser: "pi", sshPort: 22, cpus: 4, storage: "sd", labels: {} });
        expect(config.osReserveMb).toBe(512);
        expect(config.bootstrap.timezone).toBe("Etc/UTC");
        expect(config.tiers.apps).toBeUndefined();
    });

    it("reports several problems at once, each at its key", () => {
        let error: PicloudConfigError | undefined;
        try {
            parseStackConfig(raw({ pis: [pi({ address: "10.0.0.300", model: "pi3" }), pi({ name: "p2", sshUser: "root" })], osReserveMb: 64 }, []));
        } catch (e) {
            error = e as PicloudConfigError;
        }
        expect(error).toBeInstanceOf(PicloudConfigError);
        expect(error!.problems.map((p) => p.key).sort()).toEqual(
            ["picloud:osReserveMb", "picloud:pis[0].address", "picloud:pis[0].model", "picloud:pis[1].sshUser", "picloud:sshPrivateKey"].sort(),
        );
        expect(error!.message).toMatch(/^invalid picloud config \(5 problems\):\n/);
        for (const p of error!.problems) expect(error!.message).toContain(`  - ${p.key}: ${p.message}`);
    });

    it("reports several cross-field problems at once", () => {
        const problems = problemsOf(raw({ pis: [pi(), pi({ memoryMb: 3000 }), pi({ name: "p3", address: "192.168.1.11", model: "pi5", memoryMb: 16384 }), pi({ name: "p3", address: "192.168.1.12" })] }));
        expect(problems.map((p) => p.key)).toEqual(["picloud:pis[1].name", "picloud:pis[1].address", "picloud:pis[1].memoryMb", "picloud:pis[3].name"]);
    });

    it("shows long given values truncated in messages (describeValue)", () => {
        const long = "a".repeat(100);
        const problems = problemsOf(raw({ pis: [pi({ name: long })] }));
        expect(problems.map((p) => p.key)).toEqual(["picloud:pis[0].name"]);
        const shown = describeValue(long);
        expect(shown).toHaveLength(60);
        expect(shown).toBe(`"${"a".repeat(56)}...`);
        expect(problems[0].message).toContain(`got ${shown}`);
        expect(problems[0].message).not.toContain(long);
        // Short values are shown whole, as JSON; nothing given is "nothing".
        expect(describeValue("pi3")).toBe('"pi3"');
        expect(describeValue([])).toBe("[]");
        expect(describeValue(undefined)).toBe("nothing");
        expect(describeValue("b".repeat(58))).toBe(`"${"b".repeat(58)}"`);
        expect(describeValue("b".repeat(59))).toBe(`"${"b".repeat(56)}...`);
    });

    it("does not echo a long host key whole, but says what is wrong with it", () => {
        const line = `ssh-ed25519 ${"A".repeat(200)}`;
        const [problem] = problemsOf(raw({ pis: [pi({ hostKey: line })] }));
        expect(problem.key).toBe("picloud:pis[0].hostKey");
        expect(problem.message).toContain(`got ${describeValue(line)}`);
        expect(problem.message).not.toContain(line);
        expect(problem.message).toMatch(/the line says ssh-ed25519 but the key data is/);
    });

    it("rejects a secret that no option refers to", () => {
        const problems = problemsOf(raw({ pis: [pi()] }, ["sshPrivateKey", "webDbPassword"]));
        expect(problems).toEqual([{ key: "picloud:webDbPassword", message: expect.stringMatching(/unknown secret/) }]);
    });

    it("accepts a secret a secretEnv option refers to", () => {
        const app = { image: "nginx:1.27@sha256:" + "a".repeat(64), memoryMb: 64, port: 80, metrics: { port: 9797 }, secretEnv: { DB_PASSWORD: "webDbPassword" } };
        const config = parseStackConfig(raw({ pis: [pi()], tiers: { apps: { web: app } } }, ["sshPrivateKey", "webDbPassword"]));
        expect(config.secretKeys).toEqual(["sshPrivateKey", "webDbPassword"]);
    });

    it("refuses a well-formed RSA host key, saying why: the hardening regenerates it, so only the ed25519 key can be pinned", () => {
        const problems = problemsOf(raw({ pis: [pi({ hostKey: `rsa-sha2-512 ${RSA_BLOB}` }), pi({ name: "p2", address: "192.168.1.11", hostKey: `ssh-rsa ${RSA_BLOB}` })] }));
        expect(problems.map((p) => p.key)).toEqual(["picloud:pis[0].hostKey", "picloud:pis[1].hostKey"]);
        for (const p of problems) expect(p.message).toMatch(/picloud pins the ed25519 host key: its hardened sshd regenerates the RSA key/);
    });

    it("rejects rsa-sha2-512 whose blob is not an ssh-rsa key", () => {
        const problems = problemsOf(raw({ pis: [pi({ hostKey: `rsa-sha2-512 ${ED25519.split(" ")[1]}` })] }));
        expect(problems.map((p) => p.key)).toEqual(["picloud:pis[0].hostKey"]);
    });
});
