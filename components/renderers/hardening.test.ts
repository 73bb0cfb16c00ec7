/**
 * The hardening files, each judged by the Debian 12 program that reads it: sshd (-t, -T, and a
 * throwaway sshd in namespaces, logged into, attacked and audited with ssh-audit), the kernel
 * (every key exists; per-network-namespace keys applied by systemd-sysctl in a namespace of the
 * test's own) and fail2ban (fail2ban-client -t/-d on Debian's stock tree, fail2ban-regex on the
 * lines that sshd wrote during the attacks). Needs root (namespaces).
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hardeningTools, type HardeningTools } from "../../test/support/hardeningValidators";
import { tempDirs } from "../../test/support/scripts";
import { type SshdSandbox, createSshdSandbox, runInSshdSandbox } from "../../test/support/sshdSandbox";
import {
    FAIL2BAN_JAIL_FILE,
    FAIL2BAN_SSHD_MODE,
    HARDENING_FILES,
    SSHD_HARDENING_FILE,
    SSH_CIPHERS,
    SSH_HOST_KEY_ALGORITHMS,
    SSH_KEX_ALGORITHMS,
    SSH_MACS,
    SSH_MODULI_MIN_SIZE_FIELD,
    SSH_RSA_HOST_KEY_BITS,
    SYSCTL_HARDENING,
    SYSCTL_HARDENING_FILE,
    renderFail2banJail,
    renderSshAuditPolicy,
    renderSshdHardening,
    renderSysctlHardening,
} from "./hardening";

const USER = "pi";
const DROP_IN = path.relative("/etc/ssh", SSHD_HARDENING_FILE.path);

let tools: HardeningTools;
let sandboxDir: string;
let sandbox: SshdSandbox;

beforeAll(async () => {
    tools = await hardeningTools();
    sandboxDir = mkdtempSync(path.join(tmpdir(), "picloud-sshd-"));
    sandbox = createSshdSandbox(sandboxDir, tools, { user: USER, rsaBits: SSH_RSA_HOST_KEY_BITS, moduliMinSizeField: SSH_MODULI_MIN_SIZE_FIELD });
}, 300_000);

afterAll(() => {
    if (sandboxDir) rmSync(sandboxDir, { recursive: true, force: true });
});

const tmp = tempDirs("picloud-hardening");

/** `sshd -T` as a map from keyword to its values (HostKey, AcceptEnv … repeat). */
function parseSshdT(output: string): Map<string, string[]> {
    const map = new Map<string, string[]>();
    for (const line of output.split("\n")) {
        const m = /^(\S+) (.*)$/.exec(line);
        if (!m) continue;
        map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
    }
    return map;
}

async function effectiveSshdConfig(files: Record<string, string>): Promise<Map<string, string[]>> {
    const r = await runInSshdSandbox(sandbox, files, "sshd -T\n");
    expect(r.status, r.stderr).toBe(0);
    return parseSshdT(r.stdout);
}

describe("renderSshdHardening input", () => {
    it.each<[string, Parameters<typeof renderSshdHardening>[0], RegExp]>([
        ["an upper-case user", { sshUser: "Pi" }, /sshUser: expected a login user name.*got "Pi"/],
        ["root", { sshUser: "root" }, /sshUser: expected a non-root user/],
        ["port 0", { sshUser: USER, port: 0 }, /port: expected a TCP port \(a whole number from 1 to 65535\), got 0/],
        ["a fractional port", { sshUser: USER, port: 22.5 }, /port: expected a TCP port/],
        ["no authentication attempts", { sshUser: USER, maxAuthTries: 0 }, /maxAuthTries: expected attempts per connection/],
        ["a pinned ECDSA host key", { sshUser: USER, pinnedHostKey: "ecdsa-sha2-nistp256 AAAAE2VjZHNh" }, /pinnedHostKey: expected an ssh-ed25519 host key.*got "ecdsa-sha2-nistp256".*ssh_host_ed25519_key\.pub/],
    ])("refuses %s, naming the key", (_, input, message) => {
        expect(() => renderSshdHardening(input)).toThrow(message);
    });

    it("accepts a pinned Ed25519 or RSA host key, which the hardened sshd still serves", () => {
        expect(() => renderSshdHardening({ sshUser: USER, pinnedHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5" })).not.toThrow();
        expect(() => renderSshdHardening({ sshUser: USER, pinnedHostKey: "rsa-sha2-512 AAAAB3NzaC1yc2E" })).not.toThrow();
    });

    it("refuses an RSA host key size the policy could not describe", () => {
        expect(() => renderSshAuditPolicy({ rsaHostKeyBits: 2048 })).toThrow(/rsaHostKeyBits: expected RSA host key bits \(a whole number from 3072 to 16384\), got 2048/);
    });
});

describe("Debian 12's sshd reads the drop-in", () => {
    const dropIn = renderSshdHardening({ sshUser: USER });

    it("passes the check the bootstrap runs before reloading (sshd -t) and refuses a broken drop-in", async () => {
        const ok = await runInSshdSandbox(sandbox, { [DROP_IN]: dropIn }, `${SSHD_HARDENING_FILE.check}\n`);
        expect(ok.status, ok.stderr).toBe(0);
        const broken = await runInSshdSandbox(sandbox, { [DROP_IN]: dropIn.replace(/^Ciphers .*$/m, "$&,aes128-cbcx") }, `${SSHD_HARDENING_FILE.check}\n`);
        expect(broken.status).not.toBe(0);
        expect(broken.stderr).toMatch(/Bad SSH2 cipher spec 'chacha20.*aes128-cbcx'/);
    });

    it("makes every value it writes the effective one, over Debian's own sshd_config", async () => {
        const effective = await effectiveSshdConfig({ [DROP_IN]: dropIn });
        const written = dropIn
            .split("\n")
            .filter((l) => l && !l.startsWith("#"))
            .map((l) => /^(\S+) (.*)$/.exec(l)!.slice(1) as [string, string]);
        const hostKeys = written.filter(([k]) => k === "HostKey").map(([, v]) => v);
        expect(effective.get("hostkey")).toEqual(hostKeys);
        // sshd -T does not print DebianBanner (a Debian patch); the banner test below covers it.
        for (const [keyword, value] of written.filter(([k]) => k !== "HostKey" && k !== "DebianBanner")) {
            const expected = keyword === "LoginGraceTime" ? value.replace(/s$/, "") : value;
            expect(effective.get(keyword.toLowerCase()), keyword).toEqual([expected]);
        }
    });

    it("locks down what matters, keeping PAM sessions and SFTP (which @pulumi/command's CopyToRemote uses)", async () => {
        const effective = await effectiveSshdConfig({ [DROP_IN]: dropIn });
        const one = (k: string) => effective.get(k)?.join(" ");
        expect({
            permitrootlogin: one("permitrootlogin"),
            passwordauthentication: one("passwordauthentication"),
            kbdinteractiveauthentication: one("kbdinteractiveauthentication"),
            authenticationmethods: one("authenticationmethods"),
            allowusers: one("allowusers"),
            // Debian's sshd_config says yes; the drop-in is read first and wins.
            x11forwarding: one("x11forwarding"),
            allowtcpforwarding: one("allowtcpforwarding"),
            allowagentforwarding: one("allowagentforwarding"),
            loglevel: one("loglevel"),
            usepam: one("usepam"),
            subsystem: one("subsystem"),
        }).toEqual({
            permitrootlogin: "no",
            passwordauthentication: "no",
            kbdinteractiveauthentication: "no",
            authenticationmethods: "publickey",
            allowusers: USER,
            x11forwarding: "no",
            allowtcpforwarding: "no",
            allowagentforwarding: "no",
            loglevel: "VERBOSE",
            usepam: "yes",
            subsystem: "sftp /usr/lib/openssh/sftp-server",
        });
        expect(one("ciphers")).toBe(SSH_CIPHERS.join(","));
        expect(one("kexalgorithms")).toBe(SSH_KEX_ALGORITHMS.join(","));
        expect(one("macs")).toBe(SSH_MACS.join(","));
        expect(one("hostkeyalgorithms")).toBe(SSH_HOST_KEY_ALGORITHMS.join(","));
    });

    it("is not undone by a drop-in sorting after it that turns passwords on (as cloud-init writes)", async () => {
        const effective = await effectiveSshdConfig({ [DROP_IN]: dropIn, "sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\nPermitRootLogin yes\n" });
        expect(effective.get("passwordauthentication")).toEqual(["no"]);
        expect(effective.get("permitrootlogin")).toEqual(["no"]);
    });

    it("takes the port and the attempts per connection from its input", async () => {
        const effective = await effectiveSshdConfig({ [DROP_IN]: renderSshdHardening({ sshUser: "ops", port: 2222, maxAuthTries: 2 }) });
        expect(effective.get("port")).toEqual(["2222"]);
        expect(effective.get("maxauthtries")).toEqual(["2"]);
        expect(effective.get("allowusers")).toEqual(["ops"]);
    });
});

/** One client attempt of the session: its source address tells its log lines apart. */
interface Attempt {
    readonly name: string;
    readonly from: string;
    readonly ssh: string;
}

describe("a throwaway sshd on the drop-in, logged into, attacked and audited", () => {
    const attempts: Attempt[] = [
        { name: "operator", from: "127.0.0.10", ssh: `ssh $OPTS -i $SANDBOX/client_key ${USER}@127.0.0.1 'echo operator-in-as-$(id -un)'` },
        { name: "sftp", from: "127.0.0.11", ssh: `echo ls -la | sftp $OPTS -i $SANDBOX/client_key -b - ${USER}@127.0.0.1` },
        { name: "wrong-key", from: "127.0.0.12", ssh: `ssh $OPTS -i $SANDBOX/wrong_key ${USER}@127.0.0.1 true` },
        { name: "unknown-user", from: "127.0.0.13", ssh: `ssh $OPTS -i $SANDBOX/client_key admin@127.0.0.1 true` },
        { name: "root", from: "127.0.0.14", ssh: `ssh $OPTS -i $SANDBOX/client_key root@127.0.0.1 true` },
        { name: "password", from: "127.0.0.15", ssh: `ssh $OPTS -o BatchMode=no -o PreferredAuthentications=password,keyboard-interactive ${USER}@127.0.0.1 true </dev/null` },
        { name: "tcp-forwarding", from: "127.0.0.16", ssh: `ssh $OPTS -i $SANDBOX/client_key -W 127.0.0.1:22 ${USER}@127.0.0.1 </dev/null` },
        { name: "weak-cipher", from: "127.0.0.17", ssh: `ssh $OPTS -i $SANDBOX/client_key -o Ciphers=aes128-cbc ${USER}@127.0.0.1 true` },
    ];
    const results = new Map<string, { status: number; output: string }>();
    let sshdLog = "";
    let audit = { status: -1, output: "" };
    let banner = "";

    beforeAll(async () => {
        writeFileSync(path.join(sandboxDir, "policy.txt"), renderSshAuditPolicy());
        const script = [
            "set -uo pipefail",
            "log=$SANDBOX/sshd.log",
            ": >\"$log\"",
            '"$SSHD" -D -e 2>>"$log" &',
            "sshd_pid=$!",
            // Waits for a line in sshd's log, so that each connection's lines end before the next begins.
            'await_log() { for _ in $(seq 100); do grep -qE -- "$1" "$log" && return 0; kill -0 "$sshd_pid" 2>/dev/null || break; sleep 0.05; done; echo "no /$1/ in sshd log" >&2; return 1; }',
            "await_log 'Server listening on 0\\.0\\.0\\.0 port 22'",
            // Clients pin the sandbox's Ed25519 host key, as picloud pins each Pi's.
            'OPTS="-F /dev/null -o UserKnownHostsFile=$SANDBOX/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5"',
            "export HOME=$SANDBOX/client-home",
            ...attempts.flatMap((a) => [
                `out=$(${a.ssh.replace(/\$OPTS/, `$OPTS -o BindAddress=${a.from}`)} 2>&1); status=$?`,
                `printf 'attempt %s %s %s\\n' ${a.name} "$status" "$(printf %s "$out" | tr -d '\\r' | tr '\\n' ' ')"`,
                `await_log '(Connection closed by|Disconnected from|Unable to negotiate with) .*${a.from.replace(/\./g, "\\.")} port'`,
            ]),
            "exec 3<>/dev/tcp/127.0.0.1/22; IFS= read -r banner <&3; exec 3<&-",
            "printf 'banner %s\\n' \"${banner%$'\\r'}\"",
            "out=$(ssh-audit -n -P \"$SANDBOX/policy.txt\" 127.0.0.1 2>&1); status=$?",
            "printf 'audit %s %s\\n' \"$status\" \"$(printf %s \"$out\" | tr '\\n' ' ')\"",
            "sleep 0.5",
        ].join("\n");
        const r = await runInSshdSandbox(sandbox, { [DROP_IN]: renderSshdHardening({ sshUser: USER }) }, script);
        expect(r.stderr).not.toMatch(/no \/.*\/ in sshd log/);
        for (const line of r.stdout.split("\n")) {
            let m = /^attempt (\S+) (\d+) (.*)$/.exec(line);
            if (m) results.set(m[1]!, { status: Number(m[2]), output: m[3]! });
            m = /^audit (\d+) (.*)$/.exec(line);
            if (m) audit = { status: Number(m[1]), output: m[2]! };
            m = /^banner (.*)$/.exec(line);
            if (m) banner = m[1]!;
        }
        sshdLog = readFileSync(path.join(sandboxDir, "sshd.log"), "utf8");
    }, 120_000);

    it("passes the rendered ssh-audit policy", () => {
        expect(audit.output).toContain("Result: ✔ Passed");
        expect(audit.status).toBe(0);
    });

    it("lets the operator's key in, for commands (Docker's dial-stdio is one) and SFTP", () => {
        expect(results.get("operator")).toEqual({ status: 0, output: `operator-in-as-${USER}` });
        expect(results.get("sftp")?.status).toBe(0);
        expect(results.get("sftp")?.output).toMatch(/authorized_keys|\.ssh/);
    });

    it.each([
        ["wrong-key", /Permission denied \(publickey\)/],
        ["unknown-user", /Permission denied \(publickey\)/],
        ["root", /Permission denied \(publickey\)/],
        ["password", /Permission denied \(publickey\)/],
        ["tcp-forwarding", /administratively prohibited/],
        ["weak-cipher", /no matching cipher found/],
    ])("refuses %s", (name, message) => {
        const r = results.get(name);
        expect(r?.status, r?.output).not.toBe(0);
        expect(r?.output).toMatch(message);
    });

    it("does not name the distribution's patch level in its banner (DebianBanner no)", () => {
        expect(banner).toMatch(/^SSH-2\.0-OpenSSH_9\.2p1$/);
    });

    it("logs each stranger's attempt so that fail2ban's jail counts it, and never the operator's", () => {
        const counts = fail2banFailures(sshdLog, FAIL2BAN_SSHD_MODE);
        expect(counts.get("127.0.0.10") ?? 0).toBe(0);
        expect(counts.get("127.0.0.11") ?? 0).toBe(0);
        for (const name of ["wrong-key", "unknown-user", "root", "password", "weak-cipher"]) {
            const from = attempts.find((a) => a.name === name)!.from;
            expect(counts.get(from) ?? 0, `${name} from ${from}`).toBeGreaterThanOrEqual(1);
        }
        // ssh-audit's scan alone would get its address banned: the auditing host goes in ignoreip.
        expect(counts.get("127.0.0.1") ?? 0).toBeGreaterThanOrEqual(5);
    });

    it("needs the aggressive mode: fail2ban's default mode misses a wrong key for the real user", () => {
        const wrongKey = attempts.find((a) => a.name === "wrong-key")!.from;
        expect(fail2banFailures(sshdLog, "normal").get(wrongKey) ?? 0).toBe(0);
    });
});

/**
 * fail2ban-regex with the jail's filter on sshd's log lines, as the systemd backend sees them:
 * `<host> sshd[<pid>]: <MESSAGE>`. sshd -e prints no pid, so each connection (from its
 * "Connection from" line on) gets one, as each connection is one sshd process on a Pi.
 * Returns failures per address.
 */
function fail2banFailures(sshdLog: string, mode: string): Map<string, number> {
    const dir = tmp();
    let pid = 100;
    const lines = sshdLog
        .split("\n")
        .map((l) => l.replace(/\r$/, ""))
        .filter(Boolean)
        .map((message) => {
            if (message.startsWith("Connection from ")) pid++;
            return `2026-01-01 12:00:00 pi1 sshd[${pid}]: ${message}`;
        });
    writeFileSync(path.join(dir, "journal.log"), lines.join("\n") + "\n");
    const r = spawnSync(tools.fail2banRegex, ["--config", path.join(tools.root, "etc/fail2ban"), "--out", "row", path.join(dir, "journal.log"), `sshd[mode=${mode}]`], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const counts = new Map<string, number>();
    for (const m of r.stdout.matchAll(/^\['([0-9a-f.:]+)',/gm)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    return counts;
}

describe("the ssh-audit policy", () => {
    it("fails an sshd that offers one weak cipher more", async () => {
        writeFileSync(path.join(sandboxDir, "policy.txt"), renderSshAuditPolicy());
        const weak = renderSshdHardening({ sshUser: USER }).replace(/^Ciphers .*$/m, "$&,aes128-cbc");
        const r = await runInSshdSandbox(
            sandbox,
            { [DROP_IN]: weak },
            [
                '"$SSHD" -D -e 2>/dev/null &',
                "for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && break; sleep 0.05; done",
                'ssh-audit -n -P "$SANDBOX/policy.txt" 127.0.0.1',
            ].join("\n"),
        );
        expect(r.status).toBe(3);
        expect(r.stdout).toMatch(/Ciphers did not match[\s\S]*Actual:.*aes128-ctr, aes128-cbc/);
    });

    it("names the host keys in the order the drop-in loads them, sized as the guide regenerates RSA", () => {
        const policy = renderSshAuditPolicy();
        expect(policy).toMatch(/^host keys = ssh-ed25519, rsa-sha2-512, rsa-sha2-256$/m);
        expect(policy).toMatch(/^hostkey_size_rsa-sha2-512 = 4096$/m);
        expect(renderSshAuditPolicy({ rsaHostKeyBits: 3072 })).toMatch(/^hostkey_size_rsa-sha2-256 = 3072$/m);
    });
});

// ---------------------------------------------------------------------------------------------

/** `key = value` lines of a sysctl.d text; a leading `-` marks a key that may be missing. */
function parseSysctl(text: string): { key: string; value: string; optional: boolean }[] {
    return text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#") && !l.startsWith(";"))
        .map((l) => {
            const m = /^(-?)([^=\s]+)\s*=\s*(.*)$/.exec(l);
            if (!m) throw new Error(`not a sysctl line: ${l}`);
            return { optional: m[1] === "-", key: m[2]!, value: m[3]! };
        });
}

/** /proc/sys paths a key names, with `*` expanded over what exists (under `proc`). */
function procPaths(key: string, proc = "/proc/sys"): string[] {
    const parts = key.split(".");
    let paths = [proc];
    for (const part of parts) {
        paths = paths.flatMap((p) => (part === "*" ? (existsSync(p) ? readdirSync(p).map((e) => path.join(p, e)) : []) : [path.join(p, part)]));
    }
    return paths;
}

function globMatches(pattern: string, key: string): boolean {
    const re = new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]+")}$`);
    return re.test(key);
}

describe("renderSysctlHardening", () => {
    const text = renderSysctlHardening();
    const lines = parseSysctl(text);

    it("writes exactly SYSCTL_HARDENING, optional keys as -key", () => {
        expect(lines).toEqual(SYSCTL_HARDENING.map((s) => ({ key: s.key, value: s.value, optional: s.optional ?? false })));
    });

    it("keeps forwarding on for Docker and reverse-path filtering loose", () => {
        expect(lines).toContainEqual({ key: "net.ipv4.ip_forward", value: "1", optional: false });
        expect(lines).toContainEqual({ key: "net.ipv4.conf.*.rp_filter", value: "2", optional: false });
    });

    it("names only keys this kernel has, except the -keys (Yama and SysRq are not built into every kernel)", () => {
        for (const { key, optional } of lines) {
            if (optional) continue;
            const paths = procPaths(key);
            expect(paths.length, key).toBeGreaterThan(0);
            for (const p of paths) expect(existsSync(p), `${key}: ${p}`).toBe(true);
        }
    });

    it("is applied by systemd-sysctl: per-namespace network keys, in a namespace of the test's own", () => {
        const dir = tmp();
        /** The /proc/sys files a key sets in the namespace below: `*` is all, default and both test interfaces. */
        const files = (key: string) =>
            ["all", "default", "pc-br0", "pc-v0"].filter((i) => key.includes("*") || i === "all").map((i) => `/proc/sys/${key.replace("*", i).replace(/\./g, "/")}`);
        // Only keys the kernel keeps per network namespace show up in a new one; kernel.*, fs.*,
        // dev.* and net.core.bpf_jit_harden belong to the whole machine and are never written here.
        const probe = spawnSync("unshare", ["--net", "sh", "-c", lines.map((l) => `test -e ${files(l.key)[0]} && echo ${l.key}`).join("; ") + "; true"], { encoding: "utf8" });
        const perNamespace = new Set(probe.stdout.trim().split("\n"));
        const applied = lines.filter((l) => l.key.startsWith("net.") && perNamespace.has(l.key));
        expect(applied.map((l) => l.key)).toEqual(expect.arrayContaining(["net.ipv4.ip_forward", "net.ipv4.conf.*.rp_filter", "net.ipv4.conf.*.send_redirects", "net.ipv6.conf.*.accept_redirects"]));
        const file = path.join(dir, path.basename(SYSCTL_HARDENING_FILE.path));
        writeFileSync(file, applied.map((l) => `${l.key} = ${l.value}`).join("\n") + "\n");
        const script = [
            "set -eu",
            // A bridge exists before (like docker0), a veth pair comes after (like a container's).
            "ip link add pc-br0 type bridge",
            `/lib/systemd/systemd-sysctl ${file}`,
            "ip link add pc-v0 type veth peer name pc-v1",
            ...applied.flatMap((l) => files(l.key).map((f) => `printf '%s %s\\n' ${f} "$(cat ${f})"`)),
        ].join("\n");
        const r = spawnSync("unshare", ["--net", "bash", "-c", script], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe("");
        const read = new Map(r.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
        for (const l of applied) for (const f of files(l.key)) expect(read.get(f), f).toBe(l.value);
    });

    it("is not overridden by a Debian file applied after it (sysctl.d files apply in name order)", () => {
        const ours = path.basename(SYSCTL_HARDENING_FILE.path);
        const later = new Map<string, string>();
        for (const dir of ["/usr/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d"]) {
            if (!existsSync(dir)) continue;
            for (const name of readdirSync(dir)) if (name.endsWith(".conf") && name > ours) later.set(name, path.join(dir, name));
        }
        expect([...later.keys()]).toContain("99-protect-links.conf");
        for (const [name, file] of later) {
            for (const theirs of parseSysctl(readFileSync(file, "utf8"))) {
                for (const mine of lines) {
                    if (globMatches(mine.key, theirs.key) || globMatches(theirs.key, mine.key)) {
                        expect(`${name}: ${theirs.key} = ${theirs.value}`).toBe(`${name}: ${theirs.key} = ${mine.value}`);
                    }
                }
            }
        }
    });
});

// ---------------------------------------------------------------------------------------------

describe("renderFail2banJail input", () => {
    it.each<[string, Parameters<typeof renderFail2banJail>[0], RegExp]>([
        ["a host name", { ignoreIps: ["monitoring.lan"] }, /ignoreIps\[0\]: expected an IP address or CIDR network.*got "monitoring.lan": not an IP address/],
        ["a prefix too long", { ignoreIps: ["10.0.0.1", "10.0.0.0/33"] }, /ignoreIps\[1\]:.*the prefix length must be 0 to 32/],
        ["an IPv6 prefix too long", { ignoreIps: ["fd00::/129"] }, /ignoreIps\[0\]:.*0 to 128/],
        ["no retries", { ignoreIps: [], maxRetry: 0 }, /maxRetry: expected failures/],
        ["a ban shorter than a minute", { ignoreIps: [], banTimeSeconds: 5 }, /banTimeSeconds: expected seconds/],
        ["a longest ban shorter than the first", { ignoreIps: [], banTimeSeconds: 7200, maxBanTimeSeconds: 3600 }, /maxBanTimeSeconds: expected seconds, at least banTimeSeconds/],
    ])("refuses %s, naming the key", (_, input, message) => {
        expect(() => renderFail2banJail(input)).toThrow(message);
    });
});

describe("fail2ban reads the jail", () => {
    /** Debian's stock /etc/fail2ban with the jail added, as a Pi has it. */
    function confDir(jail: string): string {
        const dir = path.join(tmp(), "fail2ban");
        cpSync(path.join(tools.root, "etc/fail2ban"), dir, { recursive: true });
        writeFileSync(path.join(dir, "jail.d", path.basename(FAIL2BAN_JAIL_FILE.path)), jail);
        return dir;
    }

    function client(dir: string, ...args: string[]) {
        return spawnSync(tools.fail2banClient, ["-c", dir, ...args], { encoding: "utf8" });
    }

    it("passes the check the bootstrap runs (fail2ban-client -t) and refuses a jail naming a missing ban action", () => {
        const jail = renderFail2banJail({ ignoreIps: ["192.168.1.10", "fd00::/64"] });
        const ok = client(confDir(jail), "-t");
        expect(ok.status, ok.stderr).toBe(0);
        expect(ok.stdout).toContain("OK: configuration test is successful");
        const broken = client(confDir(jail.replace("nftables-multiport", "nftables-nonesuch")), "-t");
        expect(broken.status).not.toBe(0);
        expect(broken.stderr).toContain("Unable to read action 'nftables-nonesuch'");
    });

    it("turns into the sshd jail intended, over Debian's defaults-debian.conf", () => {
        const dump = client(confDir(renderFail2banJail({ ignoreIps: ["192.168.1.10", "10.0.0.0/24"], sshPort: 2222, maxRetry: 4 })), "-d");
        expect(dump.status, dump.stderr).toBe(0);
        for (const line of [
            "['add', 'sshd', 'systemd']",
            "['set', 'sshd', 'addjournalmatch', '_SYSTEMD_UNIT=ssh.service', '+', '_COMM=sshd']",
            "['set', 'sshd', 'maxretry', 4]",
            "['set', 'sshd', 'findtime', '600']",
            "['set', 'sshd', 'bantime', '3600']",
            "['set', 'sshd', 'bantime.increment', True]",
            "['set', 'sshd', 'bantime.maxtime', '604800']",
            "['set', 'sshd', 'addignoreip', '127.0.0.1/8', '::1', '192.168.1.10', '10.0.0.0/24']",
            "['set', 'sshd', 'addaction', 'nftables-multiport']",
            "['start', 'sshd']",
        ]) {
            expect(dump.stdout).toContain(line);
        }
        expect(dump.stdout).toContain("['port', '2222']");
        // The aggressive mode's own expressions are in the filter.
        expect(dump.stdout).toContain("^Did not receive identification string from <HOST>");
        expect(dump.stdout).toContain("^Unable to negotiate with <HOST>");
    });

    it("matches the unit Debian's sshd runs as, and its journal backend loads", () => {
        const unit = readFileSync(path.join(tools.root, "lib/systemd/system/ssh.service"), "utf8");
        expect(unit).toMatch(/^ExecStart=\/usr\/sbin\/sshd -D/m);
        const r = spawnSync("python3", ["-c", "import systemd.journal; from fail2ban.server.filtersystemd import FilterSystemd; print('ok')"], {
            encoding: "utf8",
            env: { ...process.env, PYTHONPATH: path.join(tools.root, "usr/lib/python3/dist-packages") },
        });
        expect(r.stdout.trim(), r.stderr).toBe("ok");
    });
});

describe("HARDENING_FILES", () => {
    it("puts each file where its program reads it, with a check or an apply command where one exists", () => {
        expect(Object.values(HARDENING_FILES).map((f) => f.path)).toEqual([
            "/etc/ssh/sshd_config.d/10-picloud.conf",
            "/etc/picloud/ssh-audit-policy.txt",
            "/etc/sysctl.d/60-picloud-hardening.conf",
            "/etc/fail2ban/jail.d/picloud.conf",
        ]);
        expect(tools.versions["openssh-server"]).toMatch(/^1:9\.2p1-2\+deb12u\d+$/);
        expect(tools.versions["fail2ban"]).toBe("1.0.2-2");
        expect(tools.versions["ssh-audit"]).toBe("2.5.0-1");
    });
});
