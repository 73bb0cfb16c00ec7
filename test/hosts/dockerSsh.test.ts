/**
 * Docker's ssh:// transport with the options picloud gives each Pi's Docker provider
 * (`dockerSshOptions`), run by the real OpenSSH client against a test host, as Docker's connection
 * helper runs it (`ssh <options> -- user@host docker system dial-stdio`): the pinned host key comes
 * from the options themselves, so no known_hosts file has to exist anywhere, and any other key is
 * refused without a prompt.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerHost, dockerSshOptions } from "../../components/runtime/dockerRuntime";
import { testPi } from "./piHostCommands";
import { startTestbed, Testbed } from "./testbed";

describe("Docker's ssh transport with picloud's options, against a real sshd", () => {
    let bed: Testbed;
    beforeAll(async () => {
        bed = await startTestbed({ hosts: ["dockerssh"] });
    });
    afterAll(() => bed?.stop());

    /** ssh as Docker runs it, from a HOME of its own with no ~/.ssh at all. */
    function dockerSsh(hostKey: string): { status: number | null; stdout: string; stderr: string; home: string } {
        const pi = testPi(bed, bed.hosts[0], { name: "dockerssh", model: "pi4", storage: "sd" });
        const home = fs.mkdtempSync(path.join(path.dirname(bed.privateKeyPath), "home-"));
        // Docker takes user, host and port from the provider's host, ssh://user@host:port.
        const url = /^ssh:\/\/([^@]+)@([^:]+):(\d+)$/.exec(dockerHost(pi))!;
        const r = spawnSync("ssh", [...dockerSshOptions({ ...pi, hostKey }, bed.privateKeyPath), "-p", url[3], "--", `${url[1]}@${url[2]}`, "echo", "through"], {
            encoding: "utf8",
            env: { ...process.env, HOME: home },
            input: "",
        });
        return { ...r, home };
    }

    it("connects with the Pi's pinned key, writing no known_hosts anywhere", () => {
        const r = dockerSsh(bed.hosts[0].hostKey);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("through\n");
        expect(fs.existsSync(path.join(r.home, ".ssh", "known_hosts"))).toBe(false);
    });

    it("refuses a host whose key is not the pinned one, without asking", () => {
        const other = path.join(path.dirname(bed.privateKeyPath), "not_the_host_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
        const wrongKey = fs.readFileSync(`${other}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
        const r = dockerSsh(wrongKey);
        expect(r.status).toBe(255);
        expect(r.stderr).toMatch(/Host key verification failed/);
        expect(r.stdout).toBe("");
    });
});
