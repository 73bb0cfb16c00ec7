/**
 * A throwaway "Pi" for Debian 12's real sshd: a bash script run as root in fresh PID, mount and
 * network namespaces, where /etc/ssh holds what a Pi's would (Debian's stock sshd_config, moduli
 * filtered as ssh-audit's guide says, test host keys, the drop-ins under test), /etc/passwd knows
 * sshd's privilege-separation user and a login user, and only a loopback interface exists. The
 * machine's own /etc/ssh, /run and network are never touched: every mount lives in the namespace,
 * and when the script ends (or is killed) the kernel ends every process in it, sshd included.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { HardeningTools } from "./hardeningValidators";

/**
 * Keys, users and files of one sandbox; make one per test file with {@link createSshdSandbox}.
 * `known_hosts` in `dir` pins its Ed25519 host key for 127.0.0.1.
 */
export interface SshdSandbox {
    readonly dir: string;
    /** The login user (in the sandbox's /etc/passwd, with a home under `dir`). */
    readonly user: string;
    /** Private key whose public half is in the user's authorized_keys. */
    readonly clientKey: string;
    /** A private key the user has not authorized. */
    readonly wrongKey: string;
}

/** What a sandboxed script printed and how it ended. */
export interface SandboxRun {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

function freeId(taken: Set<number>, from: number): number {
    let id = from;
    while (taken.has(id)) id++;
    return id;
}

function keygen(file: string, type: "ed25519" | "rsa", bits?: number): void {
    const args = ["-q", "-t", type, ...(bits ? ["-b", String(bits)] : []), "-N", "", "-C", "", "-f", file];
    const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(" ")} failed: ${r.stderr}`);
}

/**
 * Prepares a sandbox in `dir` (which must be on a filesystem the namespaces share, e.g. under
 * /tmp): an Ed25519 and a `rsaBits` RSA host key, the login user's home with an authorized key,
 * passwd/shadow copies, Debian's moduli filtered to `$5 >= moduliMinSizeField`, and the
 * sftp-server that Debian's sshd_config names. Takes a few seconds (the RSA key).
 */
export function createSshdSandbox(dir: string, tools: HardeningTools, opts: { user: string; rsaBits: number; moduliMinSizeField: number }): SshdSandbox {
    // sshd checks every directory up to the user's authorized_keys as that user.
    chmodSync(dir, 0o755);
    const etcSsh = path.join(dir, "etc-ssh");
    mkdirSync(path.join(etcSsh, "sshd_config.d"), { recursive: true });
    keygen(path.join(etcSsh, "ssh_host_ed25519_key"), "ed25519");
    keygen(path.join(etcSsh, "ssh_host_rsa_key"), "rsa", opts.rsaBits);
    // Clients pin the Ed25519 key only, as picloud does.
    writeFileSync(path.join(dir, "known_hosts"), `127.0.0.1 ${readFileSync(path.join(etcSsh, "ssh_host_ed25519_key.pub"), "utf8")}`);
    copyFileSync(path.join(tools.root, "usr/share/openssh/sshd_config"), path.join(etcSsh, "sshd_config"));
    const moduli = readFileSync(path.join(tools.root, "etc/ssh/moduli"), "utf8")
        .split("\n")
        .filter((line) => {
            const size = line.split(/\s+/)[4];
            return size !== undefined && /^\d+$/.test(size) && Number(size) >= opts.moduliMinSizeField;
        });
    writeFileSync(path.join(etcSsh, "moduli"), moduli.join("\n") + "\n");

    const passwd = readFileSync("/etc/passwd", "utf8");
    const taken = new Set(passwd.split("\n").map((l) => Number(l.split(":")[2])).filter(Number.isInteger));
    const privsepUid = freeId(taken, 4100);
    taken.add(privsepUid);
    const uid = freeId(taken, 4200);
    const home = path.join(dir, "home", opts.user);
    const lines = passwd.trimEnd().split("\n").filter((l) => !l.startsWith("sshd:") && !l.startsWith(`${opts.user}:`));
    lines.push(`sshd:x:${privsepUid}:65534::/run/sshd:/usr/sbin/nologin`, `${opts.user}:x:${uid}:65534::${home}:/bin/sh`);
    writeFileSync(path.join(dir, "passwd"), lines.join("\n") + "\n");
    const shadow = readFileSync("/etc/shadow", "utf8").trimEnd().split("\n").filter((l) => !l.startsWith(`${opts.user}:`));
    // `*`: no password can ever match; the account itself is usable (pam_unix's account check).
    shadow.push(`${opts.user}:*:19000:0:99999:7:::`);
    writeFileSync(path.join(dir, "shadow"), shadow.join("\n") + "\n", { mode: 0o640 });

    const clientKey = path.join(dir, "client_key");
    const wrongKey = path.join(dir, "wrong_key");
    keygen(clientKey, "ed25519");
    keygen(wrongKey, "ed25519");
    mkdirSync(path.join(home, ".ssh"), { recursive: true });
    writeFileSync(path.join(home, ".ssh/authorized_keys"), readFileSync(`${clientKey}.pub`));
    for (const p of [home, path.join(home, ".ssh"), path.join(home, ".ssh/authorized_keys")]) chownSync(p, uid, 65534);
    chmodSync(path.join(home, ".ssh"), 0o700);
    mkdirSync(path.join(dir, "client-home"));

    const openssh = path.join(dir, "usr-lib-openssh");
    mkdirSync(openssh);
    copyFileSync(tools.sftpServer, path.join(openssh, "sftp-server"));
    chmodSync(path.join(openssh, "sftp-server"), 0o755);

    writeFileSync(
        path.join(dir, "enter.sh"),
        `set -euo pipefail
sandbox=$1
script=$2
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
mount --bind "$sandbox/passwd" /etc/passwd
mount --bind "$sandbox/shadow" /etc/shadow
mount -t tmpfs -o mode=0755 tmpfs /etc/ssh
cp -a "$sandbox/etc-ssh/." /etc/ssh/
mount --bind "$sandbox/usr-lib-openssh" /usr/lib/openssh
ip link set lo up
cd "$sandbox"
# sshd re-executes itself for each connection, which needs its absolute path: run "$SSHD".
export SANDBOX=$sandbox SSHD=${tools.sshd} PATH=${path.dirname(tools.sshd)}:$PATH
exec bash "$script"
`,
    );
    return { dir, user: opts.user, clientKey, wrongKey };
}

/**
 * Runs `script` with bash as root inside the sandbox, after `files` (paths relative to /etc/ssh,
 * e.g. `sshd_config.d/10-picloud.conf`) are written into its /etc/ssh. The script sees
 * `$SANDBOX` (the sandbox directory, also its working directory) and `$SSHD` (sshd's absolute
 * path, which `sshd -D` needs), and finds `sshd`, `ssh-audit` and the fail2ban tools on PATH. Every process it started ends with it.
 */
export async function runInSshdSandbox(sandbox: SshdSandbox, files: Readonly<Record<string, string>>, script: string, timeoutMs = 60_000): Promise<SandboxRun> {
    const etcSsh = path.join(sandbox.dir, "etc-ssh");
    for (const [rel, text] of Object.entries(files)) {
        const file = path.join(etcSsh, rel);
        if (!file.startsWith(etcSsh + path.sep)) throw new Error(`runInSshdSandbox: ${rel} is outside /etc/ssh`);
        if (existsSync(file)) throw new Error(`runInSshdSandbox: /etc/ssh/${rel} is part of the sandbox; write drop-ins beside it instead`);
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, text, { mode: 0o600 });
    }
    const scriptFile = path.join(sandbox.dir, "script.sh");
    writeFileSync(scriptFile, script);
    try {
        // Asynchronous, so the test runner's worker stays responsive while sshd runs.
        const child = spawn(
            "unshare",
            ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount", "--propagation", "private", "bash", path.join(sandbox.dir, "enter.sh"), sandbox.dir, scriptFile],
            { stdio: ["ignore", "pipe", "pipe"] },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        // Killing unshare kills the namespace's first process (--kill-child), and with it every other.
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        const status = await new Promise<number | null>((resolve, reject) => {
            child.on("error", reject);
            child.on("close", (code) => resolve(code));
        }).finally(() => clearTimeout(timer));
        if (status === null) throw new Error(`the sshd sandbox did not finish within ${timeoutMs} ms:\n${stdout}${stderr}`);
        return { status, stdout, stderr };
    } finally {
        for (const rel of Object.keys(files)) rmSync(path.join(etcSsh, rel));
    }
}
