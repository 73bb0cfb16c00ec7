import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { executable } from "./validators";
import * as path from "node:path";

/** Debian 12's sshd, ssh-audit and fail2ban, unpacked (never installed) by install-hardening-validators.sh. */
export interface HardeningTools {
    /** Where the packages are unpacked: `root/etc/fail2ban` is Debian's stock tree, and so on. */
    readonly root: string;
    readonly sshd: string;
    readonly sftpServer: string;
    readonly sshAudit: string;
    readonly fail2banClient: string;
    readonly fail2banRegex: string;
    /** Package name → Debian version, e.g. "openssh-server" → "1:9.2p1-2+deb12u10". */
    readonly versions: Readonly<Record<string, string>>;
}

const SCRIPT = path.resolve(__dirname, "install-hardening-validators.sh");

/** Where install-hardening-validators.sh unpacks, unless `$PICLOUD_HARDENING_VALIDATORS_DIR` says otherwise. */
export const HARDENING_VALIDATORS_DIR = process.env.PICLOUD_HARDENING_VALIDATORS_DIR || path.resolve(__dirname, "../../.cache/validators/hardening");


let cached: HardeningTools | undefined;

/** Runs the install script without blocking the test runner's worker; rejects with its output on failure. */
function install(): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [SCRIPT], { env: { ...process.env, PICLOUD_HARDENING_VALIDATORS_DIR: HARDENING_VALIDATORS_DIR }, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", reject);
        child.on("close", (status) => (status === 0 ? resolve() : reject(new Error(`${SCRIPT} failed (status ${status}):\n${output}`))));
    });
}

/**
 * The hardening validators, unpacked on first use by running install-hardening-validators.sh
 * (idempotent; needs Debian's package mirror the first time). Rejects with the script's output
 * when it fails, so a missing tool fails the test instead of skipping it.
 */
export async function hardeningTools(): Promise<HardeningTools> {
    if (cached) return cached;
    const bin = path.join(HARDENING_VALIDATORS_DIR, "bin");
    const names = ["sshd", "sftp-server", "ssh-audit", "fail2ban-client", "fail2ban-regex"] as const;
    if (!names.every((n) => executable(path.join(bin, n)))) await install();
    const versions = Object.fromEntries(
        readFileSync(path.join(HARDENING_VALIDATORS_DIR, "versions"), "utf8")
            .trim()
            .split("\n")
            .map((line) => line.split(" ") as [string, string]),
    );
    cached = {
        root: path.join(HARDENING_VALIDATORS_DIR, "root"),
        sshd: path.join(bin, "sshd"),
        sftpServer: path.join(bin, "sftp-server"),
        sshAudit: path.join(bin, "ssh-audit"),
        fail2banClient: path.join(bin, "fail2ban-client"),
        fail2banRegex: path.join(bin, "fail2ban-regex"),
        versions,
    };
    return cached;
}
