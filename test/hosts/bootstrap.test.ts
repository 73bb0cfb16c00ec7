import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_REMOTE_PATH } from "../../components/host/piHost";
import { BOOTSTRAP_SUMMARY, BootstrapInput, renderBootstrapScript } from "../../components/renderers/hostScripts";
import { SshResult, startTestbed, Testbed, TestHost } from "./testbed";

const base: BootstrapInput = {
    hostname: "lab-pi4",
    model: "pi4",
    storage: "sd",
    sshUser: "pi",
    // Not the rootfs' Etc/UTC, so that the first run has a time zone to change.
    timezone: "Europe/Berlin",
    ntpServers: ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
    journalRuntimeMaxMb: 64,
};

/** One host per rendering of the script that differs in steps: SD card or SSD, Pi 4 or Pi 5. */
const cases: [string, BootstrapInput][] = [
    ["pi4sd", base],
    ["pi5ssd", { ...base, hostname: "lab-pi5", model: "pi5", storage: "ssd", timezone: "America/Argentina/Buenos_Aires" }],
];

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

/** The Pi hardware steps and Docker cannot run on a test host, so the script must say it skipped them. */
function expectTestHostSkips(r: SshResult): void {
    const skipped = steps(r.stdout).filter((s) => s.status === "skipped");
    expect(skipped.find((s) => s.step === "pi-hardware")?.note).toContain("not a Raspberry Pi");
    expect(skipped.find((s) => s.step === "docker")?.note).toContain("PICLOUD_SKIP_DOCKER=1");
}

describe("the bootstrap on Debian hosts, shipped and run over SSH as PiHost does", () => {
    let bed: Testbed;
    beforeAll(async () => {
        bed = await startTestbed({ hosts: cases.map(([name]) => name) });
    });
    afterAll(() => bed?.stop());

    describe.each(cases)("on %s", (name, input) => {
        let host: TestHost;
        let first: SshResult;
        let second: SshResult;
        beforeAll(async () => {
            host = bed.hosts.find((h) => h.name === name)!;
            const copy = await host.ssh(`cat > ${BOOTSTRAP_REMOTE_PATH}`, { input: renderBootstrapScript(input) });
            expect(copy.code, copy.stderr).toBe(0);
            // sudo resets the environment, so the variable goes on its command line; Docker
            // Engine cannot run here (DESIGN.md §5).
            const bootstrap = `sudo -n PICLOUD_SKIP_DOCKER=1 bash ${BOOTSTRAP_REMOTE_PATH}`;
            first = await host.ssh(bootstrap);
            second = await host.ssh(bootstrap);
        });

        it("succeeds the first time, changing what a fresh Debian install lacks, without a reboot", () => {
            expect(first.code, first.stderr).toBe(0);
            expect(summary(first)).toEqual({ changed: expect.any(Number), reboot: "no" });
            expect(summary(first).changed).toBeGreaterThan(0);
            expect(steps(first.stdout).filter((s) => s.status === "changed").length).toBe(summary(first).changed);
            expectTestHostSkips(first);
        });

        it("changes nothing the second time", () => {
            expect(second.code, second.stderr).toBe(0);
            expect(steps(second.stdout).filter((s) => s.status === "changed")).toEqual([]);
            expect(summary(second)).toEqual({ changed: 0, reboot: "no" });
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
            expect(out.split("\n")[0]).toBe(input.hostname);
            expect(out).toContain("install ok installed\nenabled\n");
            expect(out).toContain(`NTP=${input.ntpServers.join(" ")}\n`);
            expect(out).toContain(`Storage=volatile\nRuntimeMaxUse=${input.journalRuntimeMaxMb}M\n`);
            expect(out).toContain(`/usr/share/zoneinfo/${input.timezone}\n${input.timezone}\n`);
            // /etc/hosts follows the new name, or every sudo would first fail to resolve it.
            expect(await host.ssh("sudo -n true")).toMatchObject({ code: 0, stderr: "" });
        });

        it("moves /var/log to RAM at the next boot only on an SD card", async () => {
            const fstab = await host.ssh("cat /etc/fstab");
            expect(/^tmpfs \/var\/log tmpfs /m.test(fstab.stdout)).toBe(input.storage === "sd");
        });
    });
});
