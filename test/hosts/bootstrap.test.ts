import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PiConfig, StackConfig } from "../../components/config/schema";
import { NFTABLES_TABLE } from "../../components/renderers/firewallFiles";
import { SYSCTL_HARDENING } from "../../components/renderers/hardening";
import { BOOTSTRAP_SUMMARY } from "../../components/renderers/hostScripts";
import { PiHostCommands, piHostCommands, runBootstrap, runFirewall, shipBootstrap, sshOnlyNetwork, testPi } from "./piHostCommands";
import { SshResult, startTestbed, Testbed, TestHost } from "./testbed";

/** What a case sets: the Pi (its name becomes the hostname) and the stack's bootstrap options but fail2banIgnore. */
interface Case {
    readonly pi: Pick<PiConfig, "name" | "model" | "storage">;
    readonly bootstrap: Omit<StackConfig["bootstrap"], "fail2banIgnore">;
}

const base: Case = {
    pi: { name: "lab-pi4", model: "pi4", storage: "sd" },
    bootstrap: {
        // Not the rootfs' Etc/UTC, so that the first run has a time zone to change.
        timezone: "Europe/Berlin",
        ntpServers: ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
        journalRuntimeMaxMb: 64,
    },
};

/** One host per rendering of the script that differs in steps: SD card or SSD, Pi 4 or Pi 5. */
const cases: [string, Case][] = [
    ["pi4sd", base],
    ["pi5ssd", { pi: { name: "lab-pi5", model: "pi5", storage: "ssd" }, bootstrap: { ...base.bootstrap, timezone: "America/Argentina/Buenos_Aires" } }],
];

/** The hardening steps, in the script's order; each changes something on a fresh Debian install. */
const HARDENING_STEPS = ["ssh-hardening", "sysctl-hardening", "fail2ban"];

const ROLLBACK = "picloud-firewall-rollback";
const TABLE = `${NFTABLES_TABLE.family} ${NFTABLES_TABLE.name}`;

type Step = { status: "ok" | "changed" | "skipped"; step: string; note?: string };

/** The script's step lines (`picloud: <status> <step>[: <note>]`); throws on any other stdout line but the summary. */
function steps(stdout: string): Step[] {
    return stdout
        .trimEnd()
        .split("\n")
        .filter((line) => !BOOTSTRAP_SUMMARY.test(line))
        .map((line) => {
            const m = /^picloud: (ok|changed|skipped) ([a-z0-9-]+)(?:: (.+))?$/.exec(line);
            if (!m) throw new Error(`the bootstrap printed a line that is neither a step nor the summary: ${JSON.stringify(line)}`);
            return { status: m[1] as Step["status"], step: m[2], note: m[3] };
        });
}

function summary(r: SshResult): { changed: number; reboot: string } {
    const m = BOOTSTRAP_SUMMARY.exec(r.stdout);
    if (!m) throw new Error(`no summary line in the bootstrap's output:\n${r.stdout}\n${r.stderr}`);
    return { changed: Number(m[1]), reboot: m[2] };
}

/**
 * The Pi hardware steps and Docker cannot run on a test host, and these stacks have no log store
 * (logShipping.test.ts has one), so the script must say it skipped them, and nothing else.
 */
function expectTestHostSkips(r: SshResult): void {
    const skipped = steps(r.stdout).filter((s) => s.status === "skipped");
    expect(skipped.map((s) => s.step)).toEqual(["pi-hardware", "log-shipping", "docker"]);
    expect(skipped.find((s) => s.step === "log-shipping")?.note).toContain("picloud:tiers.monitoring.victoriaLogs");
    expect(skipped.find((s) => s.step === "pi-hardware")?.note).toContain("not a Raspberry Pi");
    expect(skipped.find((s) => s.step === "docker")?.note).toContain("PICLOUD_SKIP_DOCKER=1");
}

/** `systemctl is-active` of a unit on the host: "active", "inactive" … */
async function unitState(host: TestHost, unit: string): Promise<string> {
    return (await host.ssh(`systemctl is-active ${unit} || true`)).stdout.trim();
}

/** Whether a unit starts at boot. */
async function unitEnabled(host: TestHost, unit: string): Promise<string> {
    return (await host.ssh(`systemctl is-enabled ${unit} || true`)).stdout.trim();
}

/**
 * The line the host check must stop at on a test host: every check before Docker passes on a
 * real Pi, but a test host has no Docker, and a machine whose kernel has the memory controller
 * off (in neither cgroup2's list nor /proc/cgroups) lacks that too.
 */
async function expectedHostCheckFailure(host: TestHost): Promise<RegExp> {
    const memory = await host.ssh("if c=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null); then case \" $c \" in *' memory '*) echo on ;; esac; else awk '$1 == \"memory\" && $4 == 1 { print \"on\" }' /proc/cgroups; fi");
    return memory.stdout.trim() === "on" ? /^picloud-host-check: docker is not installed/ : /^picloud-host-check: the memory cgroup controller is off/;
}

describe("the bootstrap with hardening, then the firewall, on Debian hosts, shipped and run over SSH as PiHost does", () => {
    let bed: Testbed;
    let commands: Map<string, PiHostCommands>;
    beforeAll(async () => {
        bed = await startTestbed({ hosts: cases.map(([name]) => name) });
        const pis = cases.map(([name, c]) => ({
            pi: testPi(bed, bed.hosts.find((h) => h.name === name)!, c.pi),
            // The operator's machine never gets banned, as a stack lists it.
            bootstrap: { ...c.bootstrap, fail2banIgnore: [bed.bridgeAddress] },
        }));
        commands = await piHostCommands(pis, sshOnlyNetwork(bed, pis.map((p) => p.pi)));
    });
    afterAll(() => bed?.stop());

    describe.each(cases)("on %s", (name, c) => {
        let host: TestHost;
        let run: PiHostCommands;
        let first: SshResult;
        let second: SshResult;
        let firewall: SshResult;
        beforeAll(async () => {
            host = bed.hosts.find((h) => h.name === name)!;
            run = commands.get(c.pi.name)!;
            await shipBootstrap(host, run);
            first = await runBootstrap(host, run);
            second = await runBootstrap(host, run);
            firewall = await runFirewall(host, run);
        });

        it("succeeds the first time, changing what a fresh Debian install lacks, hardening included, without a reboot", () => {
            expect(first.code, first.stderr).toBe(0);
            expect(summary(first)).toEqual({ changed: expect.any(Number), reboot: "no" });
            const changed = steps(first.stdout).filter((s) => s.status === "changed");
            expect(changed.length).toBe(summary(first).changed);
            expect(changed.map((s) => s.step)).toEqual(expect.arrayContaining(HARDENING_STEPS));
            expectTestHostSkips(first);
        });

        it("changes nothing the second time", () => {
            expect(second.code, second.stderr).toBe(0);
            expect(steps(second.stdout).filter((s) => s.status === "changed")).toEqual([]);
            expect(summary(second)).toEqual({ changed: 0, reboot: "no" });
            expect(steps(second.stdout).filter((s) => HARDENING_STEPS.includes(s.step))).toEqual(HARDENING_STEPS.map((step) => ({ status: "ok", step, note: undefined })));
            expectTestHostSkips(second);
        });

        it("leaves the host named, on time sync, with the journal in RAM and the time zone set", async () => {
            const facts = await host.ssh(
                [
                    "hostname",
                    "dpkg-query -W -f='${Status}\\n' systemd-timesyncd",
                    "systemctl is-enabled systemd-timesyncd",
                    "cat /etc/systemd/timesyncd.conf.d/picloud.conf /etc/systemd/journald.conf.d/picloud.conf",
                    "readlink /etc/localtime",
                    "cat /etc/timezone",
                ].join(" && "),
            );
            expect(facts.code, facts.stderr).toBe(0);
            const out = facts.stdout;
            expect(out.split("\n")[0]).toBe(c.pi.name);
            expect(out).toContain("install ok installed\nenabled\n");
            expect(out).toContain(`NTP=${c.bootstrap.ntpServers.join(" ")}\n`);
            expect(out).toContain(`Storage=volatile\nRuntimeMaxUse=${c.bootstrap.journalRuntimeMaxMb}M\n`);
            expect(out).toContain(`/usr/share/zoneinfo/${c.bootstrap.timezone}\n${c.bootstrap.timezone}\n`);
            // /etc/hosts follows the new name, or every sudo would first fail to resolve it.
            expect(await host.ssh("sudo -n true")).toMatchObject({ code: 0, stderr: "" });
        });

        it("moves /var/log to RAM at the next boot only on an SD card", async () => {
            const fstab = await host.ssh("cat /etc/fstab");
            expect(/^tmpfs \/var\/log tmpfs /m.test(fstab.stdout)).toBe(c.pi.storage === "sd");
        });

        it("keeps the pinned ed25519 host key, serves a 4096-bit RSA key, and runs fail2ban's sshd jail", async () => {
            const facts = await host.ssh(
                [
                    "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub",
                    "ssh-keygen -l -f /etc/ssh/ssh_host_rsa_key.pub | cut -d' ' -f1",
                    // The fifth field of /etc/ssh/moduli is the size minus one.
                    "awk '$5 ~ /^[0-9]+$/ && $5 < 3071' /etc/ssh/moduli | wc -l",
                    "systemctl is-enabled fail2ban picloud-firewall",
                    "sudo -n fail2ban-client status | sed -n 's/.*Jail list:[[:space:]]*//p'",
                ].join(" && "),
            );
            expect(facts.code, facts.stderr).toBe(0);
            expect(facts.stdout).toBe(`${host.hostKey}\n4096\n0\nenabled\nenabled\nsshd\n`);
        });

        it("applies the network sysctls a container owns (its network namespace's); the kernel-wide ones are the machine's", async () => {
            // systemd-sysctl expands `*` to the interfaces there are, plus all and default.
            const paths = SYSCTL_HARDENING.filter((s) => s.key.startsWith("net.")).flatMap((s) =>
                (s.key.includes("*") ? ["all", "default", "eth0"] : [""]).map((i) => ({ path: `/proc/sys/${s.key.replace("*", i).replace(/\./g, "/")}`, value: s.value })),
            );
            const read = await host.ssh(paths.map((p) => `if [ -e ${p.path} ]; then echo "${p.path} $(cat ${p.path})"; fi`).join("\n"));
            expect(read.code, read.stderr).toBe(0);
            const values = new Map(read.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
            // net.core.bpf_jit_harden is kernel-wide despite its name, so absent from a namespace.
            expect(values.size).toBe(paths.length - 1);
            for (const [path, value] of values) expect(`${path} ${value}`).toBe(`${path} ${paths.find((p) => p.path === path)!.value}`);
        });

        it("keeps its script where a reboot does not empty it, root's alone", async () => {
            const path = /^# picloud: ships (\S+)$/m.exec(run.shipScript.command)![1];
            expect(path).toMatch(/^\/var\/lib\/picloud\/scripts\//);
            expect((await host.ssh(`sudo -n stat -c '%U %a' ${path} $(dirname ${path})`)).stdout).toBe("root 700\nroot 700\n");
            expect((await host.ssh(`sudo -n cat ${path}`)).stdout).toBe(run.script);
        });

        it("stops the host check only at what a test host lacks (Docker, or a cgroup2 memory controller)", async () => {
            const check = await host.ssh(run.hostCheck);
            expect(check.code).toBe(1);
            expect(check.stderr.trim()).toMatch(await expectedHostCheckFailure(host));
        });

        it("loads the firewall after the host check, with its rollback armed until it is confirmed", async () => {
            expect(firewall.code, firewall.stderr).toBe(0);
            expect(firewall.stdout).toBe("picloud: changed firewall\npicloud-firewall: changed=1\n");
            expect(await unitState(host, `${ROLLBACK}.timer`)).toBe("active");
            // Enabled, so a reboot before the confirmation arms it again.
            expect(await unitEnabled(host, `${ROLLBACK}.timer`)).toBe("enabled");
            expect((await host.ssh(`sudo -n nft list table ${TABLE}`)).code).toBe(0);
        });

        it("takes a firewall nobody confirmed down again when its rollback fires, which the confirmation reports", async () => {
            expect(await host.ssh(`sudo -n systemctl start ${ROLLBACK}.service`)).toMatchObject({ code: 0 });
            expect((await host.ssh(`sudo -n nft list table ${TABLE}`)).code).not.toBe(0);
            // Nor does the next boot load the rejected rules.
            expect(await unitEnabled(host, "picloud-firewall.service")).toBe("disabled");
            const confirm = await host.ssh(run.firewall.confirm);
            expect(confirm.code).toBe(1);
            expect(confirm.stderr).toMatch(/^picloud-firewall: the firewall \(table inet picloud\) is not loaded: it was rolled back/m);
            // The next run loads it again, and arms a new rollback.
            const again = await runFirewall(host, run);
            expect(again.code, again.stderr).toBe(0);
            expect(again.stdout).toBe("picloud: changed firewall\npicloud-firewall: changed=1\n");
            expect(await unitState(host, `${ROLLBACK}.timer`)).toBe("active");
        });

        it("is confirmed over a new SSH connection, which calls the rollback off for good", async () => {
            const confirm = await host.ssh(run.firewall.confirm);
            expect(confirm.code, confirm.stderr).toBe(0);
            expect(await unitState(host, `${ROLLBACK}.timer`)).toBe("inactive");
            expect(await unitEnabled(host, `${ROLLBACK}.timer`)).toBe("disabled");
            expect(await unitEnabled(host, "picloud-firewall.service")).toBe("enabled");
            const table = await host.ssh(`sudo -n nft list table ${TABLE}`);
            expect(table.code, table.stderr).toBe(0);
            expect(table.stdout).toContain(`ip saddr ${bed.subnet} tcp dport 22 accept comment "ssh"`);
            // Again: nothing changes, nothing is armed.
            expect((await runFirewall(host, run)).stdout).toBe("picloud: ok firewall\npicloud-firewall: changed=0\n");
            expect(await unitState(host, `${ROLLBACK}.timer`)).toBe("inactive");
        });
    });
});
