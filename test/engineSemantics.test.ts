/**
 * The rules that keep picloud's resources right under the real engine, checked on every example
 * stack's resource tree (the offline plan's, as the engine would receive it) where the engine
 * lane cannot reach: Docker containers and the whole prod stack.
 *
 * - `@pulumi/command` replaces a resource whose `triggers` change, create-before-delete: the old
 *   resource's delete then runs after its successor's create and undoes it. So no command has
 *   triggers; a change reaches the Pi as an Update of the same command.
 * - A script kept in /tmp is gone after a reboot, and a later Update would run a missing file.
 * - The Pis' sshd takes no `Setenv`, which `addPreviousOutputInEnv` would send on every Update.
 * - A provider whose host is only known after a step is unknown in every preview after that step
 *   changes; Docker's host is plain config.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../components/plan/mockRuntime";
import { runPlan } from "../components/plan/plan";
import { shippedPath } from "../components/renderers/remoteCommands";

const STACKS = ["lab", "dev", "prod"] as const;
const stackFile = (stack: string) => path.resolve(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`);
const resources: Record<string, readonly RecordedResource[]> = {};

beforeAll(async () => {
    for (const stack of STACKS) {
        const plan = await runPlan({ stack, source: { file: stackFile(stack) } });
        if (!plan.ok) throw new Error(plan.error);
        resources[stack] = plan.resources;
    }
}, 120_000);

const commands = (stack: string) => resources[stack].filter((r) => r.type.startsWith("command:"));

describe.each(STACKS)("the %s stack under the engine's semantics", (stack) => {
    it("runs everything on a Pi as remote.Commands, none with triggers: a change is an Update, never a replacement whose delete undoes it", () => {
        expect(commands(stack).length).toBeGreaterThan(10);
        for (const c of commands(stack)) {
            expect(c.type, c.name).toBe("command:remote:Command");
            expect(c.inputs.triggers, `${c.name} has triggers`).toBeUndefined();
            // The same command runs on create and on every Update.
            expect(c.inputs.update, c.name).toBe(c.inputs.create);
            expect(c.inputs.addPreviousOutputInEnv, c.name).toBe(false);
        }
    });

    it("keeps no script in /tmp, which a reboot empties", () => {
        for (const c of commands(stack)) {
            for (const field of ["create", "update", "delete"]) {
                const text = c.inputs[field];
                if (typeof text === "string") expect(text, `${c.name}.${field}`).not.toMatch(/(^|[\s'"])\/tmp\//);
            }
        }
    });

    it("ships every file through one command per file, whose delete removes only that file", () => {
        const shipped = commands(stack).filter((c) => shippedPath(c.inputs.create) !== undefined);
        expect(shipped.length).toBeGreaterThan(5);
        const paths = shipped.map((c) => `${(c.inputs.connection as { host: string }).host}:${shippedPath(c.inputs.create)}`);
        expect(new Set(paths).size, "two resources ship the same file").toBe(paths.length);
        for (const c of shipped) expect(c.inputs.delete, c.name).toMatch(new RegExp(`^cat >/dev/null\n(sudo -n )?rm -f '${shippedPath(c.inputs.create)}'$`));
    });

    it("reads a command's stdin in its delete before anything else: the provider feeds it there too, and a delete that exits unread fails with EOF", () => {
        const withBoth = commands(stack).filter((c) => c.inputs.stdin !== undefined && c.inputs.delete !== undefined);
        expect(withBoth.length).toBeGreaterThan(5);
        for (const c of withBoth) expect(String(c.inputs.delete), c.name).toMatch(/^cat >\/dev\/null\n/);
    });

    it("sends every secret on stdin as a secret, and logs no command that ships one", () => {
        for (const c of commands(stack).filter((r) => r.secretInputs.includes("stdin") && shippedPath(r.inputs.create) !== undefined)) {
            expect(c.inputs.logging, c.name).toBe("none");
        }
        for (const c of commands(stack)) expect(c.secretInputs, c.name).not.toContain("create");
    });

    it("gives every Docker provider a host known in preview, ssh:// to its own Pi", () => {
        const providers = resources[stack].filter((r) => r.type === "pulumi:providers:docker");
        expect(providers.length).toBeGreaterThan(0);
        for (const p of providers) {
            expect(p.inputs.host, p.name).toMatch(/^ssh:\/\/[a-z_][a-z0-9_-]*@[\d.]+:\d+$/);
            expect(p.inputs.sshOpts as string, p.name).toContain("KnownHostsCommand=");
        }
    });
});
