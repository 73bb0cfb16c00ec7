import { createRequire } from "node:module";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

// Load picloud by its package name through Node's own resolver, exactly as another stack's
// `import { PiHost } from "picloud"` would: the package's "exports" point at the built dist/.
const requireFromConsumer = createRequire(path.join(__dirname, "consumer-stack.js"));

describe("picloud as a package", () => {
    it("resolves by name to the built entry point", () => {
        expect(requireFromConsumer.resolve("picloud")).toBe(path.resolve(__dirname, "..", "dist", "components", "index.js"));
    });

    it("lets another stack build a PiHost and plan it offline", async () => {
        const picloud = requireFromConsumer("picloud") as typeof import("../components");
        const pulumi = requireFromConsumer("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
        const run = await picloud.installMockRuntime({ project: "consumer", stack: "test", config: {}, secretKeys: [] });
        const config = picloud.parseStackConfig({
            values: {
                pis: [{ name: "pi-a", address: "192.168.5.10", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0", model: "pi5", memoryMb: 8192 }],
            },
            secretKeys: ["sshPrivateKey"],
        });
        const host = new picloud.PiHost(config.pis[0].name, {
            pi: config.pis[0],
            privateKey: pulumi.secret("placeholder"),
            bootstrap: config.bootstrap,
        });
        await run.settle();
        expect(host.bootstrapScript).toContain("readonly PICLOUD_HOSTNAME='pi-a'");
        expect(run.resources.filter((r) => r.type === "picloud:host:PiHost").map((r) => r.name)).toEqual(["pi-a"]);
        expect(run.resources.filter((r) => r.type.startsWith("command:remote:"))).toHaveLength(4);
    });
});
