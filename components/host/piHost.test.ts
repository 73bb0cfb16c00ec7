import { beforeAll, describe, expect, it } from "vitest";
import type { PiConfig } from "../config/schema";
import { installMockRuntime, MockRun, RecordedResource } from "../plan/mockRuntime";
import { scriptPath, shippedPath } from "../renderers/remoteCommands";
import { PiHost } from "./piHost";
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
const bootstrap = { timezone: "Etc/UTC", ntpServers: ["ntp.example"], journalRuntimeMaxMb: 64, fail2banIgnore: [] };
const RULESET = "table inet picloud {\n}\n";

describe("PiHost under mocks", () => {
    let run: MockRun;
    let host: PiHost;
    let bare: PiHost;
    const byName = (name: string): RecordedResource => {
        const r = run.resources.find((x) => x.name === name);
        if (!r) throw new Error(`no resource ${name}; have ${run.resources.map((x) => x.name).join(", ")}`);
        return r;
    };

    beforeAll(async () => {
        run = await installMockRuntime({ project: "picloud", stack: "test", config: {}, secretKeys: [] });
        host = new PiHost("dev-1", { pi, privateKey: pulumi.secret("not-a-real-key"), bootstrap, firewall: RULESET });
        bare = new PiHost("dev-2", { pi: { ...pi, name: "dev-2", address: "192.168.10.12" }, privateKey: pulumi.secret("not-a-real-key"), bootstrap });
        await run.settle();
    });

    it("registers the boot poll, the bootstrap, the check and the firewall with its confirmation, all commands inside the PiHost", () => {
        const component = byName("dev-1");
        expect(component.type).toBe("picloud:host:PiHost");
        for (const name of ["dev-1-booted", "dev-1-bootstrap-script", "dev-1-bootstrap", "dev-1-ready", "dev-1-firewall-script", "dev-1-firewall", "dev-1-firewall-confirmed"]) {
            expect(byName(name).type).toBe("command:remote:Command");
            expect(byName(name).parent).toBe(component.urn);
        }
        // The host layer needs the command provider alone: Docker is the runtime's.
        expect(run.resources.filter((r) => r.parent === component.urn).map((r) => r.type)).not.toContain("pulumi:providers:docker");
    });

    it("names every command it runs in `runs`, for its monitoring to cover, with and without a firewall", () => {
        for (const h of [host, bare]) {
            const component = byName(h.pi.name);
            const children = run.resources.filter((r) => r.parent === component.urn && r.custom).map((r) => r.name);
            expect([...h.runs].sort()).toEqual([...children].sort());
        }
        expect(host.runs.length).toBe(bare.runs.length + 3);
    });

    it("pins the host key and keeps dialling a booting Pi", () => {
        const connection = byName("dev-1-booted").inputs.connection as Record<string, unknown>;
        expect(connection).toMatchObject({ host: "192.168.10.11", port: 2222, user: "pi", hostKey: pi.hostKey });
        expect(connection.dialErrorLimit as number).toBeGreaterThanOrEqual(10);
    });

    it("orders the chain: booted → script → bootstrap → ready → firewall → its confirmation, which is what others wait for", () => {
        const urn = (n: string) => byName(n).urn;
        expect(byName("dev-1-bootstrap-script").dependencies).toContain(urn("dev-1-booted"));
        expect(byName("dev-1-bootstrap").dependencies).toContain(urn("dev-1-bootstrap-script"));
        expect(byName("dev-1-ready").dependencies).toContain(urn("dev-1-bootstrap"));
        expect(byName("dev-1-firewall-script").dependencies).toContain(urn("dev-1-ready"));
        expect(byName("dev-1-firewall").dependencies).toContain(urn("dev-1-firewall-script"));
        expect(byName("dev-1-firewall-confirmed").dependencies).toContain(urn("dev-1-firewall"));
        expect(host.ready).toBeDefined();
    });

    it("ships the bootstrap to a path that outlives a reboot, root's, and runs it from there", () => {
        const ship = byName("dev-1-bootstrap-script").inputs;
        expect(shippedPath(ship.create)).toBe(scriptPath("bootstrap.sh"));
        expect(ship.stdin).toBe(host.bootstrapScript);
        expect(host.bootstrapScript).toContain("readonly PICLOUD_HOSTNAME='dev-1'");
        expect(scriptPath("bootstrap.sh")).not.toMatch(/^\/tmp\//);
        expect(byName("dev-1-bootstrap").inputs.create).toMatch(new RegExp(`\nsudo -n bash '${scriptPath("bootstrap.sh")}'$`));
    });

    it("runs the bootstrap, the host check and the confirmation again (an Update) when their script changes, never by replacement", () => {
        for (const name of ["dev-1-bootstrap", "dev-1-ready", "dev-1-firewall", "dev-1-firewall-confirmed"]) {
            const inputs = byName(name).inputs;
            expect(inputs.triggers, name).toBeUndefined();
            expect(inputs.update, name).toBe(inputs.create);
            expect(inputs.create as string, name).toMatch(/^# picloud: runs again when this changes: [0-9a-f]{64}\n/);
        }
    });

    it("takes the firewall down when the Pi leaves the stack, and only then", () => {
        expect(byName("dev-1-firewall").inputs.delete).toMatch(/nft delete table inet picloud/);
        expect(byName("dev-1-bootstrap").inputs.delete).toBeUndefined();
    });

    it("gives a Pi without a ruleset no firewall, and its host check is what others wait for", () => {
        expect(run.resources.some((r) => r.name.startsWith("dev-2-firewall"))).toBe(false);
        expect(byName("dev-2-ready").type).toBe("command:remote:Command");
    });
});
