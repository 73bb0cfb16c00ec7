/**
 * The bootstrap's hardening on a real host, attacked and audited from the probe (DESIGN.md §6,
 * hosts for real): ssh-audit with the policy the bootstrap installed, logins sshd must refuse
 * (each beside the same attempt against the probe's stock Debian sshd, which lets it in), fail2ban
 * banning an address after repeated failures, and lynis's hardening index before and after.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SSH_AUDIT_POLICY_FILE, SSH_CIPHERS, SSH_KEX_ALGORITHMS, SSH_MACS } from "../../components/renderers/hardening";
import { BOOTSTRAP_SUMMARY } from "../../components/renderers/hostScripts";
import { shellQuote } from "../../components/renderers/shellSteps";
import { piHostCommands, runBootstrap, runFirewall, shipBootstrap, sshOnlyNetwork, testPi } from "./piHostCommands";
import { SshResult, startTestbed, Testbed, TestHost } from "./testbed";

/** Where the probe keeps what it attacks with: the test key, the pinned host keys, an askpass. */
const PROBE_DIR = "/tmp/picloud-probe";
const ASKPASS_MARKER = `${PROBE_DIR}/askpass-asked`;
/** Last octet of the probe's second address on the bridge, which the attacks that must be banned come from. */
const ATTACKER_OCTET = 250;

/** What a command run on the probe gave back; `code` is the command's own (ssh's 255 on a refused login), not the probe's ssh's. */
async function onProbe(bed: Testbed, command: string): Promise<SshResult> {
    const r = await bed.probe.ssh(`${command}\necho "[exit $?]" >&2`);
    const m = /\[exit (\d+)\]\n?$/.exec(r.stderr);
    if (!m) throw new Error(`could not run on the probe (ssh exited ${r.code}): ${r.stderr}`);
    return { code: Number(m[1]), stdout: r.stdout, stderr: r.stderr.slice(0, m.index) };
}

/** One attempt from the probe, by the real ssh client, pinning host keys. `options` come first: for ssh the first value given wins. */
interface Attempt {
    readonly to: string;
    readonly user: string;
    readonly options?: string;
    /** The source address on the probe; default its own. */
    readonly from?: string;
    /** Environment for ssh, e.g. an askpass. */
    readonly env?: string;
    /** Private key; default the test key every host accepts for the login user. */
    readonly key?: string;
}

function sshCommand(a: Attempt): string {
    return [
        a.env ?? "",
        "ssh",
        a.options ?? "",
        `-F /dev/null -o GlobalKnownHostsFile=/dev/null -o UserKnownHostsFile=${PROBE_DIR}/known_hosts -o StrictHostKeyChecking=yes`,
        `-o BatchMode=yes -o IdentitiesOnly=yes -i ${a.key ?? `${PROBE_DIR}/key`} -o ConnectTimeout=5`,
        a.from ? `-b ${a.from}` : "",
        `${a.user}@${a.to}`,
        shellQuote('echo "in as $(id -un)"'),
        "</dev/null",
    ]
        .filter(Boolean)
        .join(" ");
}

describe("a host hardened by the bootstrap, attacked and audited from the probe", () => {
    let bed: Testbed;
    let host: TestHost;
    /** Never bootstrapped: the baseline for lynis and for the policy's teeth. */
    let fresh: TestHost;
    let attacker: string;

    beforeAll(async () => {
        bed = await startTestbed({ hosts: ["hardened", "fresh"] });
        [host, fresh] = bed.hosts;
        attacker = bed.subnet.replace(/\.0\/\d+$/, `.${ATTACKER_OCTET}`);
        const pi = testPi(bed, host, { name: "lab-hardened", model: "pi4", storage: "sd" });
        // The operator never gets banned; nor does the probe's own address, from which ssh-audit
        // audits (one audit alone fails four logins): the jail's doc says auditing hosts go in
        // ignoreip. What must be banned comes from the probe's second address.
        const bootstrap = { timezone: "Etc/UTC", ntpServers: ["0.debian.pool.ntp.org"], journalRuntimeMaxMb: 64, fail2banIgnore: [bed.bridgeAddress, bed.probe.address] };
        const commands = (await piHostCommands([{ pi, bootstrap }], sshOnlyNetwork(bed, [pi]))).get(pi.name)!;
        await shipBootstrap(host, commands);
        const [run] = await Promise.all([runBootstrap(host, commands), prepareProbe()]);
        expect(run.code, run.stderr).toBe(0);
        expect(BOOTSTRAP_SUMMARY.exec(run.stdout)?.[2]).toBe("no");
        // Then the firewall and its confirmation, as PiHost runs them after its host check.
        const firewall = await runFirewall(host, commands);
        expect(firewall.code, firewall.stderr).toBe(0);
        const confirm = await host.ssh(commands.firewall.confirm);
        expect(confirm.code, confirm.stderr).toBe(0);
    });
    afterAll(() => bed?.stop());

    /** ssh-audit and a second address on the probe; the test key, known_hosts and an askpass in PROBE_DIR; root's key on the probe. */
    async function prepareProbe(): Promise<void> {
        const put = async (file: string, content: string) => {
            const r = await onProbe(bed, `install -D -m 600 /dev/stdin ${PROBE_DIR}/${file} <<'EOF'\n${content.trimEnd()}\nEOF`);
            expect(r.code, r.stderr).toBe(0);
        };
        await put("key", fs.readFileSync(bed.privateKeyPath, "utf8"));
        await put("known_hosts", fs.readFileSync(bed.knownHostsPath, "utf8"));
        await put("askpass", `#!/bin/sh\ntouch ${ASKPASS_MARKER}\necho ${shellQuote(bed.password)}`);
        const setup = await onProbe(
            bed,
            [
                `chmod 700 ${PROBE_DIR}/askpass`,
                `ssh-keygen -q -t ed25519 -N '' -C wrong -f ${PROBE_DIR}/wrong_key`,
                `sudo -n ip address add ${attacker}/${bed.subnet.split("/")[1]} dev eth0`,
                // Root may log in with a key on stock Debian (PermitRootLogin prohibit-password).
                "sudo -n install -d -m 700 /root/.ssh && sudo -n cp ~/.ssh/authorized_keys /root/.ssh/",
                "sudo -n apt-get -q update >&2 && sudo -n DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends ssh-audit >&2",
            ].join(" && "),
        );
        expect(setup.code, setup.stderr).toBe(0);
    }

    it("passes ssh-audit with the policy the bootstrap installed, which the stock sshd of a fresh host fails", async () => {
        const policy = await host.ssh(`cat ${SSH_AUDIT_POLICY_FILE.path}`);
        expect(policy.code, policy.stderr).toBe(0);
        expect((await onProbe(bed, `cat > ${PROBE_DIR}/policy.txt <<'EOF'\n${policy.stdout.trimEnd()}\nEOF`)).code).toBe(0);
        const audit = (address: string) => onProbe(bed, `ssh-audit -n -P ${PROBE_DIR}/policy.txt ${address}`);
        const [hardened, stock] = await Promise.all([audit(host.address), audit(fresh.address)]);
        expect(hardened.stdout).toContain("Result: ✔ Passed");
        expect(hardened.code).toBe(0);
        expect(stock.stdout).toContain("Result: ❌ Failed!");
        expect(stock.code).toBe(3);
    });

    describe("refuses what the probe's stock Debian sshd lets in", () => {
        it.each<[string, Omit<Attempt, "to">, RegExp]>([
            ["a password login (the right password)", { user: "pi", options: "-o BatchMode=no -o PubkeyAuthentication=no -o PreferredAuthentications=password", env: `SSH_ASKPASS=${PROBE_DIR}/askpass SSH_ASKPASS_REQUIRE=force` }, /Permission denied \(publickey\)/],
            ["a SHA-1 MAC (with a cipher that uses one)", { user: "pi", options: "-c aes256-ctr -m hmac-sha1" }, new RegExp(`no matching MAC found\\. Their offer: ${SSH_MACS.join(",")}$`, "m")],
            ["a NIST curve key exchange", { user: "pi", options: "-o KexAlgorithms=ecdh-sha2-nistp256" }, new RegExp(`no matching key exchange method found\\. Their offer: ${SSH_KEX_ALGORITHMS.join(",")},`)],
        ])("%s", async (_, attempt, refusal) => {
            // Prints "asked" after the login's output when ssh asked for a password.
            const tryOn = (to: string) => onProbe(bed, `rm -f ${ASKPASS_MARKER}; ${sshCommand({ ...attempt, to })}; status=$?; [ ! -e ${ASKPASS_MARKER} ] || echo asked; (exit $status)`);
            const stock = await tryOn(bed.probe.address);
            expect(stock, "the same attempt against the stock sshd").toMatchObject({ code: 0 });
            expect(stock.stdout).toBe(attempt.env ? "in as pi\nasked\n" : "in as pi\n");
            const r = await tryOn(host.address);
            expect(r.code, r.stdout).toBe(255);
            expect(r.stderr).toMatch(refusal);
            // Nothing ran, and no password was asked for: sshd offers public keys only.
            expect(r.stdout).toBe("");
        });

        it("root, even with a key root's authorized_keys holds", async () => {
            const install = await host.ssh("sudo -n install -d -m 700 /root/.ssh && sudo -n cp ~/.ssh/authorized_keys /root/.ssh/");
            expect(install.code, install.stderr).toBe(0);
            try {
                const stock = await onProbe(bed, sshCommand({ user: "root", to: bed.probe.address }));
                expect(stock, "root against the stock sshd").toMatchObject({ code: 0, stdout: "in as root\n" });
                const r = await onProbe(bed, sshCommand({ user: "root", to: host.address }));
                expect(r.code).toBe(255);
                expect(r.stderr).toContain(`root@${host.address}: Permission denied (publickey).`);
            } finally {
                await host.ssh("sudo -n rm -r /root/.ssh");
            }
        });

        it("a CBC cipher (which Debian's stock sshd does not offer either)", async () => {
            const r = await onProbe(bed, sshCommand({ user: "pi", to: host.address, options: "-c aes128-cbc" }));
            expect(r.code).toBe(255);
            expect(r.stderr).toContain(`no matching cipher found. Their offer: ${SSH_CIPHERS.join(",")}`);
        });
    });

    it("bans an address after maxretry failed logins in nftables, while the operator and the auditing address still get in", async () => {
        const maxRetry = Number((await host.ssh("sudo -n fail2ban-client get sshd maxretry")).stdout.trim());
        expect(maxRetry).toBeGreaterThan(0);
        // A user the host does not have counts twice (its "Invalid user" line and its closed
        // connection), a key it does not know once: together they make maxretry failures.
        const attempts: Omit<Attempt, "to">[] = [{ user: "admin" }, ...Array.from({ length: maxRetry - 2 }, () => ({ user: "pi", key: `${PROBE_DIR}/wrong_key` }))];
        for (const [i, attempt] of attempts.entries()) {
            const r = await onProbe(bed, sshCommand({ ...attempt, to: host.address, from: attacker }));
            expect(r.code, `attempt ${i + 1}`).toBe(255);
            expect(r.stderr, `attempt ${i + 1}`).toContain(`${attempt.user}@${host.address}: Permission denied (publickey).`);
        }
        let status = "";
        for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
            status = (await host.ssh("sudo -n fail2ban-client status sshd")).stdout;
            if (status.includes(attacker)) break;
        }
        expect(status).toMatch(new RegExp(`Banned IP list:\\s+${attacker.replace(/\./g, "\\.")}\\s*$`, "m"));
        // The ban is a reject in fail2ban's own table: the next TCP connection from that address fails.
        const banned = await onProbe(bed, sshCommand({ user: "pi", to: host.address, from: attacker }));
        expect(banned.code).toBe(255);
        expect(banned.stderr).toContain(`connect to host ${host.address} port 22: Connection refused`);
        const set = await host.ssh("sudo -n nft list set inet f2b-table addr-set-sshd");
        expect(set.stdout).toMatch(new RegExp(`elements = \\{ ${attacker.replace(/\./g, "\\.")} \\}`));
        // The same key from the probe's own address, and the operator, still get in.
        expect(await onProbe(bed, sshCommand({ user: "pi", to: host.address }))).toMatchObject({ code: 0, stdout: "in as pi\n" });
        expect(await host.ssh("echo in")).toMatchObject({ code: 0, stdout: "in\n" });
    });

    it("raises lynis's hardening index over a fresh Debian host's", async () => {
        const index = async (h: TestHost) => {
            const install = await h.ssh("sudo -n apt-get -q update >&2 && sudo -n DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends lynis >&2");
            expect(install.code, install.stderr).toBe(0);
            const audit = await h.ssh("sudo -n lynis audit system --quick --no-colors");
            expect(audit.code, audit.stderr).toBe(0);
            const m = /Hardening index : (\d+)/.exec(audit.stdout);
            if (!m) throw new Error(`no "Hardening index" in lynis's output on ${h.name}:\n${audit.stdout.slice(-2000)}`);
            return Number(m[1]);
        };
        const [before, after] = await Promise.all([index(fresh), index(host)]);
        console.log(`lynis hardening index: fresh Debian bookworm ${before} → bootstrapped ${after}`);
        expect(after).toBeGreaterThan(before);
    });
});
