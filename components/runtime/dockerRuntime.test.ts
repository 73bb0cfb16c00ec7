import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import type { PiConfig } from "../config/schema";
import { PiHost } from "../host/piHost";
import { installMockRuntime } from "../plan/mockRuntime";
import { DockerRuntime, LABELS, containerArgs, dockerSshOptions } from "./dockerRuntime";
import type { Workload } from "./workload";

const IMAGE = "traefik/whoami:v1.10@sha256:1699d99cb4b9acc17f74ca670b3d8d0b7ba27c948b3445f0593b58ebece92f04";
const workload: Workload = {
    name: "web",
    component: "apps",
    configKey: "picloud:tiers.apps.web",
    image: IMAGE,
    replicas: 2,
    memoryMb: 128,
    cpus: 0.5,
    ports: [{ container: 80, host: 8080 }],
    env: { MODE: "prod" },
    secretEnv: { TOKEN: pulumi.secret("s3cr3t") },
    healthcheck: { command: ["/healthz"], intervalSeconds: 5, timeoutSeconds: 2, retries: 3, startPeriodSeconds: 1 },
    metrics: { port: 9100, path: "/metrics" },
    logLabels: { app: "web" },
    networks: ["app"],
};

const unwrap = <T>(o: pulumi.Input<T>): Promise<{ value: T; secret: boolean }> =>
    new Promise((resolve) => {
        const out = pulumi.output(o);
        out.apply((value) => {
            (out as unknown as { isSecret: Promise<boolean> }).isSecret.then((secret) => resolve({ value: value as T, secret }));
            return value;
        });
    });

describe("containerArgs", () => {
    it("sets limits, ports, healthcheck, restart policy and journald logging", () => {
        const args = containerArgs(workload, 1, "dev-2");
        expect(args).toMatchObject({
            name: "web-1",
            memory: 128,
            memorySwap: 128,
            cpus: "0.5",
            ports: [{ internal: 80, external: 8080, protocol: "tcp" }],
            restart: "unless-stopped",
            logDriver: "journald",
            wait: true,
            healthcheck: { tests: ["CMD", "/healthz"], interval: "5s", timeout: "2s", retries: 3, startPeriod: "1s" },
        });
        expect(args.logOpts).toMatchObject({ tag: "dev-2/web-1" });
    });

    it("labels each replica for monitoring and log collection", () => {
        const labels = Object.fromEntries((containerArgs(workload, 0, "p") as { labels: { label: string; value: string }[] }).labels.map((l) => [l.label, l.value]));
        expect(labels).toEqual({
            [LABELS.workload]: "web",
            [LABELS.component]: "apps",
            [LABELS.replica]: "0",
            [LABELS.metricsPort]: "9100",
            [LABELS.metricsPath]: "/metrics",
            [`${LABELS.logPrefix}app`]: "web",
        });
    });

    it("keeps the environment secret when any variable is", async () => {
        const { value, secret } = await unwrap(containerArgs(workload, 0, "p").envs!);
        expect(value).toEqual(["MODE=prod", "TOKEN=s3cr3t"]);
        expect(secret).toBe(true);
        expect(containerArgs({ ...workload, secretEnv: {} }, 0, "p").envs).toEqual(["MODE=prod"]);
    });
});

describe("DockerRuntime", () => {
    const pi = (name: string, address: string): PiConfig => ({
        name, address, sshUser: "pi", sshPort: 22, model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {},
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0",
    });

    it("pulls an image and creates a network once per Pi, and runs each replica through its Pi's provider", async () => {
        const run = await installMockRuntime({ project: "picloud", stack: "t", config: {}, secretKeys: [] });
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
        const hosts = new Map([["a", pi("a", "10.0.0.1")], ["b", pi("b", "10.0.0.2")]].map(([n, p]) => [n as string, new PiHost(n as string, { pi: p as PiConfig, privateKey: "k", bootstrap })]));
        const runtime = new DockerRuntime(hosts, { identityFile: "/home/op/.ssh/picloud" });
        const owner = { resource: new pulumi.ComponentResource("picloud:test:Owner", "owner"), name: "owner" };
        runtime.deploy(workload, ["a", "b"], owner);
        runtime.deploy({ ...workload, name: "web2", ports: [] }, ["a"], owner);
        await run.settle();

        const of = (type: string) => run.resources.filter((r) => r.type === type);
        expect(of("docker:index/remoteImage:RemoteImage")).toHaveLength(2);
        expect(of("docker:index/network:Network").map((r) => r.name).sort()).toEqual(["a-net-app", "b-net-app"]);
        const containers = of("docker:index/container:Container");
        // Named after their owner, with the unscoped name of earlier releases as an alias.
        expect(containers.map((c) => c.name).sort()).toEqual(["owner-web-0", "owner-web-1", "owner-web2-0"]);
        expect(containers.map((c) => c.aliases).sort()).toEqual([["web-0"], ["web-1"], ["web2-0"]]);
        const ownerUrn = run.resources.find((r) => r.name === "owner")!.urn;
        const providerUrn = (host: string) => run.resources.find((r) => r.name === `${host}-docker`)!.urn;
        for (const c of containers) expect(c.parent).toBe(ownerUrn);
        expect(containers.find((c) => c.name === "owner-web-1")!.provider.startsWith(providerUrn("b"))).toBe(true);
        expect(containers.find((c) => c.name === "owner-web2-0")!.provider.startsWith(providerUrn("a"))).toBe(true);
        expect(() => runtime.deploy(workload, ["zzz"], owner)).toThrow(/placed on unknown Pi "zzz"/);
    });

    it("builds a workload's image once per Pi from its Dockerfile on stdin, in its owner, and pulls nothing for it", async () => {
        const run = await installMockRuntime({ project: "picloud", stack: "t", config: {}, secretKeys: [] });
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
        const hosts = new Map([["a", pi("a", "10.0.0.1")], ["b", pi("b", "10.0.0.2")]].map(([n, p]) => [n as string, new PiHost(n as string, { pi: p as PiConfig, privateKey: "k", bootstrap })]));
        const owner = { resource: new pulumi.ComponentResource("picloud:test:Owner", "owner"), name: "owner" };
        const built: Workload = { ...workload, name: "db", image: "picloud/db:1-abc", build: { dockerfile: "FROM x@sha256:00\n" }, networks: [] };
        new DockerRuntime(hosts).deploy({ ...built, replicas: 3 }, ["a", "b", "a"], owner);
        await run.settle();
        expect(run.resources.filter((r) => r.type === "docker:index/remoteImage:RemoteImage")).toHaveLength(0);
        const builds = run.resources.filter((r) => r.type === "command:remote:Command" && r.name.includes("-image-"));
        expect(builds).toHaveLength(2);
        const ownerUrn = run.resources.find((r) => r.name === "owner")!.urn;
        for (const b of builds) {
            expect(b.parent).toBe(ownerUrn);
            expect(b.inputs.stdin).toBe("FROM x@sha256:00\n");
            expect(b.inputs.create).toBe(`docker image inspect --format '{{.Id}}' 'picloud/db:1-abc' 2>/dev/null || { docker build --quiet --tag 'picloud/db:1-abc' - >&2 && docker image inspect --format '{{.Id}}' 'picloud/db:1-abc'; }`);
        }
        // Each container waits for its Pi's build.
        for (const c of run.resources.filter((r) => r.type === "docker:index/container:Container")) expect(c.dependencies.some((d) => builds.some((b) => b.urn === d))).toBe(true);
    });

    it("gives each Pi one Docker provider, a child of its PiHost, whose host and ssh options are plain config: known in every preview", async () => {
        const run = await installMockRuntime({ project: "picloud", stack: "t", config: {}, secretKeys: [] });
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
        const a = { ...pi("a", "10.0.0.1"), sshPort: 2222 };
        const runtime = new DockerRuntime(new Map([["a", new PiHost("a", { pi: a, privateKey: "k", bootstrap })]]));
        const owner = { resource: new pulumi.ComponentResource("picloud:test:Owner", "owner"), name: "owner" };
        runtime.deploy(workload, ["a"], owner);
        runtime.deploy({ ...workload, name: "web2", ports: [] }, ["a"], owner);
        await run.settle();
        const providers = run.resources.filter((r) => r.type === "pulumi:providers:docker");
        expect(providers.map((p) => p.name)).toEqual(["a-docker"]);
        expect(providers[0].parent).toBe(run.resources.find((r) => r.name === "a")!.urn);
        expect(providers[0].inputs.host).toBe("ssh://pi@10.0.0.1:2222");
        // Provider config reaches the engine JSON-encoded, as it would under the real engine.
        expect(JSON.parse(providers[0].inputs.sshOpts as string)).toEqual(dockerSshOptions(a));
    });
});

describe("DockerRuntime, leader-last", () => {
    const pi = (name: string, address: string): PiConfig => ({
        name, address, sshUser: "pi", sshPort: 22, model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {},
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0",
    });

    it("runs each replica's hand-off before its container, after the replica before it, again whenever its settings change", async () => {
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
        const clustered = (image: string): Workload => ({
            ...workload,
            name: "kv",
            image,
            replicas: 3,
            updateStrategy: "leader-last",
            leaderHandOff: (self, members) => `hand-off kv-${self.index} to ${members.length - 1}`,
        });
        const deployed = async (image: string) => {
            const run = await installMockRuntime({ project: "picloud", stack: "t", config: {}, secretKeys: [] });
            const hosts = new Map(["a", "b", "c"].map((n, i) => [n, new PiHost(n, { pi: pi(n, `10.0.0.${i + 1}`), privateKey: "k", bootstrap })]));
            new DockerRuntime(hosts).deploy(clustered(image), ["a", "b", "c"], { resource: new pulumi.ComponentResource("picloud:test:Owner", "owner"), name: "owner" });
            await run.settle();
            return run.resources;
        };
        const resources = await deployed("repo/kv:1@sha256:" + "a".repeat(64));
        const urn = (name: string) => resources.find((r) => r.name === name)!.urn;
        const byName = (name: string) => resources.find((r) => r.name === name)!;
        for (const n of [0, 1, 2]) {
            const handOff = byName(`owner-kv-${n}-hand-off`);
            expect(handOff.inputs.create).toContain(`hand-off kv-${n} to 2`);
            expect(byName(`owner-kv-${n}`).dependencies).toContain(handOff.urn);
            if (n > 0) expect(handOff.dependencies).toContain(urn(`owner-kv-${n - 1}`));
        }
        // The containers do not wait for their own health (a member alone never is); the next hand-off waits for the cluster.
        expect(byName("owner-kv-0").inputs.wait).toBe(false);
        // A new image changes every hand-off's command (its rerun key), so each runs again first.
        const changed = await deployed("repo/kv:2@sha256:" + "b".repeat(64));
        for (const n of [0, 1, 2]) {
            expect(changed.find((r) => r.name === `owner-kv-${n}-hand-off`)!.inputs.create).not.toBe(byName(`owner-kv-${n}-hand-off`).inputs.create);
        }
    });

    it("refuses leader-last without a hand-off", async () => {
        await installMockRuntime({ project: "picloud", stack: "t", config: {}, secretKeys: [] });
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
        const runtime = new DockerRuntime(new Map([["a", new PiHost("a", { pi: pi("a", "10.0.0.1"), privateKey: "k", bootstrap })]]));
        expect(() => runtime.deploy({ ...workload, updateStrategy: "leader-last" }, ["a"], { resource: new pulumi.ComponentResource("picloud:test:Owner", "o"), name: "o" })).toThrow(
            'workload "web" updates leader-last but declares no leaderHandOff',
        );
    });
});

describe("dockerSshOptions", () => {
    const a = { address: "10.0.0.1", sshPort: 2222, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0 pi@a" };

    it("pins the Pi's own key and no known_hosts file, and never prompts", () => {
        const opts = dockerSshOptions(a);
        expect(opts).toEqual(expect.arrayContaining(["StrictHostKeyChecking=yes", "UserKnownHostsFile=/dev/null", "GlobalKnownHostsFile=/dev/null", "BatchMode=yes"]));
        expect(opts).toContain("KnownHostsCommand=/bin/echo [10.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0");
        expect(opts).not.toContain("-i");
    });

    it("adds the identity file only when given", () => {
        expect(dockerSshOptions(a, "/id")).toEqual(expect.arrayContaining(["-i", "/id", "IdentitiesOnly=yes"]));
    });
});
