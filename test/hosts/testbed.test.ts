import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startTestbed, Testbed } from "./testbed";

const root = path.resolve(__dirname, "../..");

/** The test bed's network namespaces and links among `names` (without the `pct-` prefix). */
function namespacesAndLinks(names: string[]): string[] {
    const wanted = new Set(names.map((n) => `pct-${n}`));
    const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
        .split("\n")
        .map((line) => line.split(" ")[0]);
    const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
        .split("\n")
        .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "");
    return [...namespaces.filter((n) => wanted.has(n)).map((n) => `netns ${n}`), ...links.filter((l) => wanted.has(l)).map((l) => `link ${l}`)];
}

/** Cgroups made for the named machines (without systemd as init), anywhere near the top of any hierarchy. */
function machineCgroups(names: string[]): string[] {
    const byName = names.flatMap((n) => ["-o", "-name", `pct-${n}`]).slice(1);
    return execFileSync("find", ["/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "(", ...byName, ")"], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean);
}

/** Processes whose command line names anything under `dir` (machines), and mounts of it in any mount namespace. */
function processesAndMounts(dir: string): string[] {
    const found: string[] = [];
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        try {
            const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
            if (cmdline.includes(dir)) found.push(`process ${pid}: ${cmdline}`);
            for (const line of fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n")) {
                if (line.includes(dir)) found.push(`mount seen by ${pid}: ${line}`);
            }
        } catch {
            // The process ended while being looked at.
        }
    }
    return found;
}

/**
 * Starts a test bed with one host in another process and kills that process with SIGKILL once
 * the hosts are up, so that it tears nothing down. Resolves to the dead test bed's work directory.
 */
async function crashedTestbed(): Promise<string> {
    const child = spawn(
        process.execPath,
        ["--require", "tsx/cjs", "-e", 'require("./test/hosts/testbed").startTestbed({ hosts: ["crashed"] }).then((bed) => console.log(bed.privateKeyPath))'],
        { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // A started test bed keeps the process alive (its machines are children), so it waits here.
    const keyPath = await new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding("utf8").once("data", (line: string) => resolve(line.trim()));
        child.on("exit", (code) => reject(new Error(`the test bed process exited (${code}) before its hosts were up`)));
    });
    child.kill("SIGKILL");
    await exited;
    return path.dirname(keyPath);
}

/** systemd-nspawn's runtime directories, which the test bed removes only if it made them. */
const nspawnRuntimeDirs = ["/run/systemd/nspawn", "/run/mount"];
const runtimeDirsBefore = nspawnRuntimeDirs.filter((d) => fs.existsSync(d));

describe("the host test bed", () => {
    let bed: Testbed | undefined;
    afterAll(() => bed?.stop());

    it("clears what a killed test bed left before it starts", async () => {
        const stale = await crashedTestbed();
        const left = { objects: namespacesAndLinks(["crashed", "br0"]), workdir: fs.existsSync(stale) };
        // Started before any assertion, so that afterAll's stop() cleans up whatever happens.
        bed = await startTestbed({ hosts: ["alpha"] });
        // The dead test bed's machines went with it (the kernel signalled them); the rest waited.
        expect(left).toEqual({ objects: expect.arrayContaining(["netns pct-crashed", "link pct-br0"]), workdir: true });
        expect(namespacesAndLinks(["crashed"])).toEqual([]);
        expect(machineCgroups(["crashed"])).toEqual([]);
        expect(fs.existsSync(stale)).toBe(false);
        expect(processesAndMounts(stale)).toEqual([]);
    });

    it("boots hosts that take the test key, pin their host keys and reach each other, but nothing beyond the bridge", async () => {
        const [alpha] = bed!.hosts;
        // Strict host key checking against the pinned keys let these in at all.
        const users = await alpha.ssh("id -un && sudo -n id -un");
        expect(users.stdout).toBe(`${bed!.user}\nroot\n`);
        const hostKey = await alpha.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub");
        expect(hostKey.stdout).toContain(alpha.hostKey);
        const defaultRoute = await alpha.ssh("ip -4 route show default");
        expect(defaultRoute).toMatchObject({ code: 0, stdout: "" });
        const reach = await bed!.probe.ssh(`timeout 5 bash -c '</dev/tcp/${alpha.address}/22' && echo reached`);
        expect(reach.stdout).toBe("reached\n");
    });

    it("lets hosts install the packages tests need from the local apt repository", async () => {
        const packages = ["fail2ban", "ssh-audit", "lynis", "keepalived", "haproxy", "systemd-timesyncd", "nftables", "openssh-server"];
        const r = await bed!.probe.ssh(`sudo -n apt-get -q update && apt-get -s install ${packages.join(" ")}`);
        expect(r.code, r.stdout + r.stderr).toBe(0);
    });

    it("leaves nothing behind when stopped: machines, mounts, namespaces, links, cgroups, files", async () => {
        const workdir = path.dirname(bed!.privateKeyPath);
        await bed!.stop();
        expect(namespacesAndLinks(["alpha", "probe", "br0"])).toEqual([]);
        expect(machineCgroups(["alpha", "probe"])).toEqual([]);
        expect(processesAndMounts(workdir)).toEqual([]);
        expect(fs.existsSync(workdir)).toBe(false);
        expect(fs.existsSync("/run/picloud-testbed")).toBe(false);
        expect(nspawnRuntimeDirs.filter((d) => fs.existsSync(d))).toEqual(runtimeDirsBefore);
    });
});
