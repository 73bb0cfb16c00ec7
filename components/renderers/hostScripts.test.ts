import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
    BOOTSTRAP_SUMMARY,
    BootstrapInput,
    DOCKER_APT_KEY_FINGERPRINT,
    DOCKER_READY_LINE,
    renderBootstrapScript,
    renderHostCheckScript,
    renderReadinessScript,
    shellQuote,
} from "./hostScripts";

const base: BootstrapInput = {
    hostname: "dev-1",
    model: "pi4",
    storage: "sd",
    sshUser: "pi",
    timezone: "Etc/UTC",
    ntpServers: ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
    journalRuntimeMaxMb: 64,
};

const bootstraps: [string, BootstrapInput][] = [
    ["pi4/sd", base],
    ["pi4/ssd", { ...base, storage: "ssd" }],
    ["pi5/ssd", { ...base, model: "pi5", storage: "ssd", ntpServers: ["ntp.lan"] }],
    ["pi5/sd, odd timezone", { ...base, model: "pi5", timezone: "America/Argentina/Buenos_Aires", journalRuntimeMaxMb: 256 }],
    ["pi4/ssd, shipping its journal", { ...base, storage: "ssd", logShipping: { url: "http://10.0.0.5:9428/insert/journald" } }],
];

const allScripts: [string, string][] = [
    ...bootstraps.map(([name, input]): [string, string] => [`bootstrap ${name}`, renderBootstrapScript(input)]),
    ["readiness", renderReadinessScript()],
    ["host check", renderHostCheckScript()],
];

function shellcheck(script: string): { status: number | null; output: string } {
    const r = spawnSync("shellcheck", ["-s", "bash", "-S", "style", "-"], { input: script, encoding: "utf8" });
    if (r.error) throw new Error(`shellcheck could not run (apt-get install shellcheck): ${r.error.message}`);
    return { status: r.status, output: r.stdout + r.stderr };
}

function bashSyntax(script: string): { status: number | null; output: string } {
    const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    return { status: r.status, output: r.stderr };
}

/** A bash function's definition, cut out of a rendered script so it can be tried on its own. */
function shellFunction(script: string, name: string): string {
    const match = new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?\\n\\}\\n`, "m").exec(script);
    if (!match) throw new Error(`no function ${name}() in the script`);
    return match[0];
}

const tempDirs: string[] = [];
function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "picloud-hostscripts-"));
    tempDirs.push(dir);
    return dir;
}
afterEach(() => {
    for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory of stand-in commands (`name` → sh body), put first on PATH. */
function fakeCommands(commands: Record<string, string>): string {
    const dir = tempDir();
    for (const [name, body] of Object.entries(commands)) {
        writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
        chmodSync(join(dir, name), 0o755);
    }
    return dir;
}

function runScript(script: string, fakes: string, env: Record<string, string> = {}) {
    const file = join(tempDir(), "script.sh");
    writeFileSync(file, script);
    const r = spawnSync("bash", [file], {
        encoding: "utf8",
        env: { ...process.env, ...env, PATH: `${fakes}:${process.env.PATH}` },
        timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("every host script", () => {
    it.each(allScripts)("%s passes shellcheck -S style", (_, script) => {
        const result = shellcheck(script);
        expect(result.status, result.output).toBe(0);
        expect(result.output).toBe("");
    });

    it.each(allScripts)("%s is bash with set -euo pipefail before any command", (_, script) => {
        const lines = script.split("\n");
        expect(lines[0]).toBe("#!/usr/bin/env bash");
        const firstCommand = lines.slice(1).find((l) => l.trim() !== "" && !l.startsWith("#"));
        expect(firstCommand).toBe("set -euo pipefail");
    });
});

describe("renderBootstrapScript", () => {
    const hostile = "x'; rm -rf / #";
    const sneaky = "$(touch /tmp/picloud-pwned) `id` \"q\" \\";
    const hostileInput: BootstrapInput = { ...base, timezone: hostile, ntpServers: [sneaky, "b c"], sshUser: hostile };

    it("keeps hostile values inside their quoted variables", () => {
        const script = renderBootstrapScript(hostileInput);
        expect(script).toContain(`readonly PICLOUD_TIMEZONE='x'\\''; rm -rf / #'\n`);
        expect(script).toContain(`readonly PICLOUD_NTP_SERVERS=${shellQuote(`${sneaky} b c`)}\n`);
        const syntax = bashSyntax(script);
        expect(syntax.status, syntax.output).toBe(0);
        // The values occur only in their readonly lines: the logic only ever refers to the variables.
        expect(script.split(shellQuote(hostile)).length - 1).toBe(2); // timezone and ssh user
        expect(script).not.toContain(hostile);
        expect(script.split(sneaky).length - 1).toBe(1);
    });

    it("gives back the exact values when its variable block is evaluated", () => {
        const block = renderBootstrapScript(hostileInput)
            .split("\n")
            .filter((l) => l.startsWith("readonly PICLOUD_"))
            .join("\n");
        const r = spawnSync(
            "bash",
            ["-c", `${block}\nprintf '%s\\n' "$PICLOUD_TIMEZONE" "$PICLOUD_NTP_SERVERS" "$PICLOUD_SSH_USER" "$PICLOUD_HOSTNAME"`],
            { encoding: "utf8" },
        );
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe(`${hostile}\n${sneaky} b c\n${hostile}\ndev-1\n`);
    });

    it("runs the Pi 5 page-size step only for a Pi 5", () => {
        for (const storage of ["sd", "ssd"] as const) {
            const pi4 = renderBootstrapScript({ ...base, storage });
            const pi5 = renderBootstrapScript({ ...base, model: "pi5", storage });
            expect(pi5).toContain("kernel=kernel8.img");
            expect(pi5).toMatch(/^ {4}step_pi5_page_size$/m);
            expect(pi4).not.toContain("kernel8");
            expect(pi4).not.toContain("step_pi5_page_size");
        }
    });

    it("puts /var/log on tmpfs only for SD-card Pis", () => {
        const line = "tmpfs /var/log tmpfs defaults,noatime,nosuid,nodev,mode=0755,size=64m 0 0";
        for (const model of ["pi4", "pi5"] as const) {
            const sd = renderBootstrapScript({ ...base, model, storage: "sd" });
            const ssd = renderBootstrapScript({ ...base, model, storage: "ssd" });
            expect(sd).toContain(`readonly PICLOUD_VAR_LOG_TMPFS=${shellQuote(line)}`);
            expect(sd).toMatch(/^step_var_log_tmpfs$/m);
            expect(ssd).not.toContain("/var/log tmpfs");
            expect(ssd).not.toContain("step_var_log_tmpfs");
        }
    });

    it("edits the boot partition only on Pi hardware", () => {
        const script = renderBootstrapScript({ ...base, model: "pi5" });
        expect(script).toMatch(/^if \[\[ \$pi_hardware == yes \]\]; then\n {4}step_memory_cgroup\n {4}step_pi5_page_size\nfi$/m);
    });

    it("renders the journald and NTP settings from the input", () => {
        const script = renderBootstrapScript({ ...base, journalRuntimeMaxMb: 128, ntpServers: ["a.lan", "b.lan"] });
        expect(script).toContain("readonly PICLOUD_JOURNAL_MAX_MB='128'");
        expect(script).toContain("RuntimeMaxUse=${PICLOUD_JOURNAL_MAX_MB}M");
        expect(script).toContain("readonly PICLOUD_NTP_SERVERS='a.lan b.lan'");
        expect(script).toContain("NTP=$PICLOUD_NTP_SERVERS");
    });

    it("refuses a journal size that is not a whole number of MB", () => {
        expect(() => renderBootstrapScript({ ...base, journalRuntimeMaxMb: 64.5 })).toThrow(/journalRuntimeMaxMb/);
    });

    it("trusts Docker's apt key only by its exact fingerprint, and can skip Docker on test hosts", () => {
        const script = renderBootstrapScript(base);
        expect(DOCKER_APT_KEY_FINGERPRINT).toBe("9DC858229FC7DD38854AE2D88D81803C0EBFCD88");
        expect(script).toContain(`readonly DOCKER_KEY_FINGERPRINT='${DOCKER_APT_KEY_FINGERPRINT}'`);
        expect(script).toContain('if [[ $fingerprints != "$DOCKER_KEY_FINGERPRINT" ]]; then');
        expect(script).toContain('skip docker "PICLOUD_SKIP_DOCKER=1 (test host without a Docker engine)"');
    });

    it("prints the summary line, then reboots with sshd closed to new connections", () => {
        const script = renderBootstrapScript(base);
        const summary = script.indexOf('echo "picloud-bootstrap: changed=$changed reboot=$reboot"');
        const reboot = script.indexOf("systemd-run --collect --on-active=5 --unit=picloud-reboot systemctl reboot");
        const stopSsh = script.indexOf("systemctl stop ssh\n");
        expect(summary).toBeGreaterThan(0);
        expect(reboot).toBeGreaterThan(summary);
        expect(stopSsh).toBeGreaterThan(reboot);
        expect(script).toContain("systemd-run --collect --on-active=180 --unit=picloud-ssh-safety systemctl start ssh");
        expect("picloud-bootstrap: changed=3 reboot=required").toMatch(BOOTSTRAP_SUMMARY);
        expect("picloud-bootstrap: changed=0 reboot=no").toMatch(BOOTSTRAP_SUMMARY);
    });

    it("has write_if_changed and finish_step that report a second identical write as ok", () => {
        const script = renderBootstrapScript(base);
        const dir = tempDir();
        const file = join(dir, "sub", "picloud.conf");
        const harness = `set -euo pipefail
changed=0 step_changed=0 wrote=0
${shellFunction(script, "finish_step")}${shellFunction(script, "write_if_changed")}
write_if_changed ${shellQuote(file)} 644 "[Time]
NTP=a b"; echo "wrote=$wrote"; finish_step first "a note"
write_if_changed ${shellQuote(file)} 644 "[Time]
NTP=a b"; echo "wrote=$wrote"; finish_step second "a note"
chmod 600 ${shellQuote(file)}
write_if_changed ${shellQuote(file)} 644 "[Time]
NTP=a b"; echo "wrote=$wrote"; finish_step third
echo "changed=$changed"
`;
        const r = spawnSync("bash", ["-c", harness], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe(
            [
                "wrote=1",
                "picloud: changed first: a note",
                "wrote=0",
                "picloud: ok second",
                "wrote=1",
                "picloud: changed third",
                "changed=2",
                "",
            ].join("\n"),
        );
        expect(readFileSync(file, "utf8")).toBe("[Time]\nNTP=a b\n");
        expect(statSync(file).mode & 0o777).toBe(0o644);
    });
});

describe("renderReadinessScript", () => {
    /** A systemctl that answers from a list, one state per call, repeating the last one. */
    function bootingSystemctl(states: string[]): string {
        const counter = join(tempDir(), "calls");
        writeFileSync(counter, "0");
        const cases = states.map((s, i) => `${i}) echo ${s} ;;`).join(" ");
        return `n=$(/usr/bin/cat ${counter}); echo $((n + 1)) >${counter}
case $n in ${cases} *) echo ${states[states.length - 1]} ;; esac`;
    }
    const noSleep = "exit 0";
    const noSudo = "exit 1";

    it("waits through boot and accepts running", () => {
        const fakes = fakeCommands({ systemctl: bootingSystemctl(["", "starting", "running"]), sleep: noSleep, sudo: noSudo });
        const r = runScript(renderReadinessScript(), fakes);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe("picloud: booted (running)\n");
    });

    it("accepts degraded", () => {
        const fakes = fakeCommands({ systemctl: "echo degraded; exit 1", sleep: noSleep, sudo: noSudo });
        const r = runScript(renderReadinessScript(), fakes);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain("degraded");
    });

    it("asks systemd through sudo when D-Bus does not answer", () => {
        const fakes = fakeCommands({
            systemctl: 'echo "Failed to connect to bus" >&2; exit 1',
            sudo: '[ "$2" = true ] && exit 0; echo running',
            sleep: noSleep,
        });
        const r = runScript(renderReadinessScript(), fakes);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe("picloud: booted (running)\n");
    });

    it("fails at once in maintenance mode", () => {
        const fakes = fakeCommands({ systemctl: "echo maintenance; exit 1", sleep: noSleep, sudo: noSudo });
        const r = runScript(renderReadinessScript(), fakes);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/rescue\/emergency mode/);
    });

    it("gives up with a clear message when boot never finishes", () => {
        const script = renderReadinessScript();
        expect(script).toContain("readonly TIMEOUT_SECONDS=300\n");
        const fakes = fakeCommands({ systemctl: "echo starting; exit 1", sleep: "exec /bin/sleep 0.2", sudo: noSudo });
        const r = runScript(script.replace("TIMEOUT_SECONDS=300", "TIMEOUT_SECONDS=1"), fakes);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/has not finished booting after 1 s \(systemd state: starting\)/);
    });
});

describe("renderHostCheckScript", () => {
    /** Stand-ins for a healthy arm64 Pi; override one to break it. */
    function pi(overrides: Record<string, string> = {}): string {
        return fakeCommands({
            dpkg: "echo arm64",
            getconf: 'case $1 in LONG_BIT) echo 64 ;; PAGESIZE) echo 4096 ;; esac',
            // Only the cgroup controllers file is faked; everything else is the real cat.
            cat: '[ "$1" = /sys/fs/cgroup/cgroup.controllers ] && { echo "cpuset cpu io memory pids"; exit 0; }; exec /usr/bin/cat "$@"',
            docker: "echo 28.5.1",
            ...overrides,
        });
    }

    it("ends with the ready line when everything is in place", () => {
        const r = runScript(renderHostCheckScript(), pi());
        expect(r.status, r.stderr).toBe(0);
        const lines = r.stdout.trimEnd().split("\n");
        expect(lines[lines.length - 1]).toBe(DOCKER_READY_LINE);
        expect(DOCKER_READY_LINE).toBe("picloud-docker-ready=yes");
    });

    it("accepts a cgroup v1 (hybrid) system whose memory hierarchy the kernel enabled", () => {
        const r = runScript(
            renderHostCheckScript(),
            pi({ cat: '[ "$1" = /sys/fs/cgroup/cgroup.controllers ] && exit 1; exec /usr/bin/cat "$@"', awk: '[ "$#" -eq 2 ] && [ "$2" = /proc/cgroups ] && exit 0; exec /usr/bin/awk "$@"' }),
        );
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(DOCKER_READY_LINE);
    });

    it.each([
        ["a 32-bit userland", { dpkg: "echo armhf" }, /64-bit Raspberry Pi OS/],
        ["16 KB pages", { getconf: 'case $1 in LONG_BIT) echo 64 ;; PAGESIZE) echo 16384 ;; esac' }, /kernel=kernel8\.img/],
        [
            "no memory cgroup",
            { cat: '[ "$1" = /sys/fs/cgroup/cgroup.controllers ] && { echo "cpu io pids"; exit 0; }; exec /usr/bin/cat "$@"' },
            /cgroup_enable=memory/,
        ],
        [
            "a cgroup v1 system whose kernel has the memory controller off",
            { cat: '[ "$1" = /sys/fs/cgroup/cgroup.controllers ] && exit 1; exec /usr/bin/cat "$@"', awk: '[ "$#" -eq 2 ] && [ "$2" = /proc/cgroups ] && exit 1; exec /usr/bin/awk "$@"' },
            /cgroup_enable=memory/,
        ],
        [
            "docker refusing the user",
            { docker: 'echo "permission denied while trying to connect to the Docker daemon socket" >&2; exit 1' },
            /permission denied.*usermod -aG docker/,
        ],
    ])("fails on %s, saying how to fix it", (_, overrides, message) => {
        const r = runScript(renderHostCheckScript(), pi(overrides));
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(message);
        expect(r.stdout).not.toContain(DOCKER_READY_LINE);
    });
});

describe("shellQuote", () => {
    it.each(["plain", "with space", "it's", "'; rm -rf / #", "$(x) `y` \\z \"q\"", "line\nbreak", ""])(
        "round-trips %j through bash as one word",
        (value) => {
            const r = spawnSync("bash", ["-c", `set -- ${shellQuote(value)}; printf '%s|%s' "$#" "$1"`], { encoding: "utf8" });
            expect(r.stdout).toBe(`1|${value}`);
        },
    );
});
