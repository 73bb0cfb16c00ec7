import { beforeAll, describe, expect, it } from "vitest";
import type { PiConfig } from "../config/schema";
import { installMockRuntime, MockRun, RecordedResource } from "../plan/mockRuntime";
import { DOCKER_READY_LINE } from "../renderers/hostScripts";
import { BOOTSTRAP_REMOTE_PATH, PiHost, dockerHostFromCheck, dockerSshOptions } from "./piHost";
import * as pulumi from "@pulumi/pulumi";

const pi: PiConfig = {
    name: "dev-1",
    address: "192.168.10.11",
    sshUser: "pi",
    sshPort: 2222,
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0",
    model: "pi5",
    memoryMb: 8192,
    cpus: 4,
    storage: "ssd",
    labels: {},
};

describe("PiHost under mocks", () => {
    let run: MockRun;
    let host: PiHost;
    const byName = (name: string): RecordedResource => {
        const r = run.resources.find((x) => x.name === name);
        if (!r) throw new Error(`no resource ${name}; have ${run.resources.map((x) => x.name).join(", ")}`);
        return r;
    };

    beforeAll(async () => {
        run = await installMockRuntime({ project: "picloud", stack: "test", config: {}, secretKeys: [] });
        host = new PiHost("dev-1", {
            pi,
            privateKey: pulumi.secret("not-a-real-key"),
            bootstrap: { timezone: "Etc/UTC", ntpServers: ["ntp.example"], journalRuntimeMaxMb: 64, fail2banIgnore: [] },
            knownHostsFile: "/tmp/kh",
        });
        await run.settle();
    });

    it("registers the boot poll, the script copy, the bootstrap, the check and a Docker provider, all inside the PiHost", () => {
        const component = byName("dev-1");
        expect(component.type).toBe("picloud:host:PiHost");
        for (const [name, type] of [
            ["dev-1-booted", "command:remote:Command"],
            ["dev-1-bootstrap-script", "command:remote:CopyToRemote"],
            ["dev-1-bootstrap", "command:remote:Command"],
            ["dev-1-ready", "command:remote:Command"],
            ["dev-1-docker", "pulumi:providers:docker"],
        ]) {
            expect(byName(name).type).toBe(type);
            expect(byName(name).parent).toBe(component.urn);
        }
    });

    it("pins the host key and keeps dialling a booting Pi", () => {
        const connection = byName("dev-1-booted").inputs.connection as Record<string, unknown>;
        expect(connection).toMatchObject({ host: "192.168.10.11", port: 2222, user: "pi", hostKey: pi.hostKey });
        expect(connection.dialErrorLimit as number).toBeGreaterThanOrEqual(10);
    });

    it("orders the chain: booted → copy → bootstrap → ready", () => {
        const urn = (n: string) => byName(n).urn;
        expect(byName("dev-1-bootstrap-script").dependencies).toContain(urn("dev-1-booted"));
        expect(byName("dev-1-bootstrap").dependencies).toContain(urn("dev-1-bootstrap-script"));
        expect(byName("dev-1-ready").dependencies).toContain(urn("dev-1-bootstrap"));
    });

    it("ships the rendered script and re-runs it when its hash changes", async () => {
        const copy = byName("dev-1-bootstrap-script").inputs;
        expect(copy.remotePath).toBe(BOOTSTRAP_REMOTE_PATH);
        expect(await (copy.source as { text: Promise<string> }).text).toBe(host.bootstrapScript);
        expect(copy.triggers).toEqual([host.bootstrapHash]);
        expect(byName("dev-1-bootstrap").inputs.triggers).toEqual([host.bootstrapHash]);
        expect(byName("dev-1-bootstrap").inputs.create).toBe(`sudo -n bash ${BOOTSTRAP_REMOTE_PATH}`);
    });

    it("gives Docker the pinned known_hosts and no prompt", () => {
        // Provider config reaches the engine JSON-encoded, as it would under the real engine.
        expect(JSON.parse(byName("dev-1-docker").inputs.sshOpts as string)).toEqual(dockerSshOptions("/tmp/kh"));
    });
});

describe("dockerHostFromCheck", () => {
    it("yields ssh:// only once the check said Docker is ready", () => {
        expect(dockerHostFromCheck(`memory cgroup: ok\n${DOCKER_READY_LINE}\n`, pi)).toBe("ssh://pi@192.168.10.11:2222");
        expect(dockerHostFromCheck("memory cgroup: ok\n", pi)).toBeUndefined();
        expect(dockerHostFromCheck(undefined, pi)).toBeUndefined();
    });
});

describe("dockerSshOptions", () => {
    it("adds the identity file only when given", () => {
        expect(dockerSshOptions("/k")).not.toContain("-i");
        expect(dockerSshOptions("/k", "/id")).toEqual(expect.arrayContaining(["-i", "/id", "IdentitiesOnly=yes"]));
        expect(dockerSshOptions("/k")).toEqual(expect.arrayContaining(["StrictHostKeyChecking=yes", "UserKnownHostsFile=/k", "BatchMode=yes"]));
    });
});
