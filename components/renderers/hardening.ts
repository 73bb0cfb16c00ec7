/**
 * Host hardening files a Pi gets, as pure functions of typed input: an sshd drop-in, the
 * ssh-audit policy that sshd must pass, kernel sysctls and fail2ban's sshd jail. Each setting
 * names its source: a control of dev-sec's ssh-baseline (`sshd-NN`) or linux-baseline
 * (`sysctl-NN`), a step of ssh-audit's Debian 12 (Bookworm) server hardening guide, lynis's
 * KRNL-6000 expectations, or the Kernel Self Protection Project's recommended settings (KSPP);
 * where picloud deviates, the comment says why.
 *
 * Where the bootstrap puts each file and how it checks and applies it: {@link HARDENING_FILES}.
 */
import { isIP } from "node:net";

/** One file the bootstrap puts on a Pi. Commands run as root, in the order check, apply. */
export interface HardeningFile {
    /** Absolute path on the Pi. */
    readonly path: string;
    /** Octal mode, e.g. "600". */
    readonly mode: string;
    /** What the file does, in one line. */
    readonly description: string;
    /** Exits non-zero when the file (with everything it joins) is unusable: restore the previous file then. */
    readonly check?: string;
    /** Makes the file take effect; safe to run again. */
    readonly apply?: string;
}

/** The sshd drop-in of {@link renderSshdHardening}. */
export const SSHD_HARDENING_FILE: HardeningFile = {
    path: "/etc/ssh/sshd_config.d/10-picloud.conf",
    // sshd-05 wants sshd_config readable by root only; the drop-in is part of it.
    mode: "600",
    description: "sshd drop-in: public keys only, only the SSH user, no forwarding, ssh-audit's Debian 12 algorithms",
    check: "sshd -t",
    // Reload, not restart: existing sessions (the bootstrap's own) survive. Debian's ssh.service
    // runs `sshd -t` again before it signals sshd.
    apply: "systemctl reload ssh",
};

/** The ssh-audit policy of {@link renderSshAuditPolicy}: not read by any service, only by the audit. */
export const SSH_AUDIT_POLICY_FILE: HardeningFile = {
    path: "/etc/picloud/ssh-audit-policy.txt",
    mode: "644",
    description: "ssh-audit policy: the exact algorithms, host keys and key sizes the hardened sshd offers (ssh-audit -P)",
};

/** The sysctl file of {@link renderSysctlHardening}. */
export const SYSCTL_HARDENING_FILE: HardeningFile = {
    path: "/etc/sysctl.d/60-picloud-hardening.conf",
    mode: "644",
    description: "kernel and network sysctls per dev-sec linux-baseline, lynis and KSPP, keeping what Docker and keepalived need",
    // systemd-sysctl is what applies sysctl.d at boot: restarting it applies every file in boot
    // order (a later file wins), understands `-key` and `*` in keys, and ignores keys this
    // kernel lacks. procps' `sysctl -p` fails on `-key` lines, so it must not be used here.
    apply: "systemctl restart systemd-sysctl",
};

/** fail2ban's sshd jail of {@link renderFail2banJail}. */
export const FAIL2BAN_JAIL_FILE: HardeningFile = {
    path: "/etc/fail2ban/jail.d/picloud.conf",
    mode: "644",
    description: "fail2ban sshd jail: sshd's journal lines, aggressive mode, bans in nftables, never the monitoring/management addresses",
    check: "fail2ban-client -t",
    apply: "systemctl reload-or-restart fail2ban",
};

/** Every hardening file, by what it configures. */
export const HARDENING_FILES = {
    sshd: SSHD_HARDENING_FILE,
    sshAuditPolicy: SSH_AUDIT_POLICY_FILE,
    sysctl: SYSCTL_HARDENING_FILE,
    fail2ban: FAIL2BAN_JAIL_FILE,
} as const;

/** Debian packages the hardening needs on a Pi; python3-systemd is what fail2ban's journal backend imports. */
export const HARDENING_PACKAGES: readonly string[] = ["fail2ban", "python3-systemd", "nftables"];

// ---------------------------------------------------------------------------------------------
// sshd

/**
 * Key exchanges of ssh-audit's Debian 12 server guide, in its order, without its two GSSAPI
 * entries (`gss-curve25519-sha256-`, `gss-group16-sha512-`): picloud turns GSSAPI off (sshd-33).
 */
export const SSH_KEX_ALGORITHMS: readonly string[] = [
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
];

/** Ciphers of ssh-audit's Debian 12 server guide (sshd-01), in its order. */
export const SSH_CIPHERS: readonly string[] = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes128-ctr",
];

/** MACs of ssh-audit's Debian 12 server guide (sshd-03), in its order: encrypt-then-MAC only. */
export const SSH_MACS: readonly string[] = ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"];

/** Host key signature algorithms of ssh-audit's Debian 12 server guide: Ed25519 and RSA with SHA-2, no ECDSA. */
export const SSH_HOST_KEY_ALGORITHMS: readonly string[] = [
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/** CA signature algorithms of ssh-audit's Debian 12 server guide. */
export const SSH_CA_SIGNATURE_ALGORITHMS: readonly string[] = ["sk-ssh-ed25519@openssh.com", "ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"];

/**
 * User (and host-based) key algorithms of ssh-audit's Debian 12 server guide: the operator's key
 * must be Ed25519 (or a FIDO Ed25519 key) or RSA of at least {@link SSH_MIN_RSA_KEY_BITS} bits;
 * ECDSA keys are refused.
 */
export const SSH_PUBKEY_ALGORITHMS: readonly string[] = SSH_HOST_KEY_ALGORITHMS;

/** RequiredRSASize of ssh-audit's Debian 12 server guide (OpenSSH 9.1+): smaller RSA user keys are refused. */
export const SSH_MIN_RSA_KEY_BITS = 3072;

/** Size of the RSA host key ssh-audit's guide regenerates (`ssh-keygen -t rsa -b 4096`). */
export const SSH_RSA_HOST_KEY_BITS = 4096;

/**
 * The smallest Diffie-Hellman group exchange prime the guide keeps in /etc/ssh/moduli, as that
 * file's fifth column writes it (bits minus one): `awk '$5 >= 3071'`, i.e. 3072-bit primes and up.
 */
export const SSH_MODULI_MIN_SIZE_FIELD = 3071;

/**
 * The host keys the hardened sshd serves, in the order it offers them (its HostKey lines). The
 * Ed25519 key comes first and is never regenerated: it is the key picloud pins. The RSA key is
 * the one the guide regenerates at {@link SSH_RSA_HOST_KEY_BITS} bits. ECDSA keys are not served.
 */
export const SSH_HOST_KEYS: readonly { readonly type: "ssh-ed25519" | "ssh-rsa"; readonly path: string; readonly algorithms: readonly string[] }[] = [
    { type: "ssh-ed25519", path: "/etc/ssh/ssh_host_ed25519_key", algorithms: ["ssh-ed25519"] },
    { type: "ssh-rsa", path: "/etc/ssh/ssh_host_rsa_key", algorithms: ["rsa-sha2-512", "rsa-sha2-256"] },
];

/** What {@link renderSshdHardening} needs. */
export interface SshdHardeningInput {
    /** The one user allowed to log in (AllowUsers): picloud's SSH user, never root. */
    readonly sshUser: string;
    /** Port sshd listens on; default 22. */
    readonly port?: number;
    /**
     * Authentication attempts per connection; default 3. Each key a client offers is one attempt,
     * so an agent holding more keys than this needs `IdentitiesOnly` on the client.
     */
    readonly maxAuthTries?: number;
    /** The host key line picloud pins for this Pi, if known: it must be one the hardened sshd still serves. */
    readonly pinnedHostKey?: string;
}

const SSH_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

function checkInteger(fn: string, key: string, value: number, min: number, max: number, what: string): void {
    if (!Number.isInteger(value) || value < min || value > max) {
        throw new RangeError(`${fn}: ${key}: expected ${what} (a whole number from ${min} to ${max}), got ${JSON.stringify(value)}`);
    }
}

function checkSshUser(fn: string, user: string): void {
    if (typeof user !== "string" || !SSH_USER.test(user)) {
        throw new Error(`${fn}: sshUser: expected a login user name (lowercase, e.g. 'pi'), got ${JSON.stringify(user)}`);
    }
    if (user === "root") throw new Error(`${fn}: sshUser: expected a non-root user with sudo, got "root": the hardened sshd refuses root logins`);
}

/** One sshd_config line and why it is there. */
interface SshdSetting {
    readonly why: string;
    readonly keyword: string;
    readonly value: string;
}

/**
 * `/etc/ssh/sshd_config.d/10-picloud.conf`. Debian's sshd_config includes `sshd_config.d/*.conf`
 * on its first line and sshd keeps the first value it reads of each keyword, so these values win
 * over the main file and over drop-ins that sort after `10-` (e.g. Raspberry Pi OS's
 * `rename_user.conf`). HostKey lines accumulate instead: the main file has none, so these two are
 * all sshd loads. Throws on an invalid user, port or retry count, or on a pinned host key of a
 * type the hardened sshd no longer serves.
 */
export function renderSshdHardening(input: SshdHardeningInput): string {
    const fn = "renderSshdHardening";
    checkSshUser(fn, input.sshUser);
    const port = input.port ?? 22;
    checkInteger(fn, "port", port, 1, 65535, "a TCP port");
    const maxAuthTries = input.maxAuthTries ?? 3;
    checkInteger(fn, "maxAuthTries", maxAuthTries, 1, 6, "attempts per connection");
    if (input.pinnedHostKey !== undefined) {
        const type = input.pinnedHostKey.trim().split(/\s+/)[0] ?? "";
        const served = new Set(SSH_HOST_KEYS.flatMap((k) => [k.type, ...k.algorithms]));
        if (!served.has(type)) {
            throw new Error(
                `${fn}: pinnedHostKey: expected an ssh-ed25519 host key (or RSA), got ${JSON.stringify(type)}: the hardened sshd serves only ` +
                    `${SSH_HOST_KEYS.map((k) => k.type).join(" and ")} host keys, so pin the Pi's /etc/ssh/ssh_host_ed25519_key.pub`,
            );
        }
    }
    const settings: SshdSetting[] = [
        { why: "sshd-07: the port is explicit", keyword: "Port", value: String(port) },
        { why: "sshd-08", keyword: "AddressFamily", value: "any" },
        ...SSH_HOST_KEYS.map((k) => ({ why: `sshd-14, ssh-audit guide: ${k.type} host key`, keyword: "HostKey", value: k.path })),
        { why: "ssh-audit Debian 12 guide (sshd-02), without GSSAPI key exchange", keyword: "KexAlgorithms", value: SSH_KEX_ALGORITHMS.join(",") },
        { why: "ssh-audit Debian 12 guide (sshd-01)", keyword: "Ciphers", value: SSH_CIPHERS.join(",") },
        { why: "ssh-audit Debian 12 guide (sshd-03)", keyword: "MACs", value: SSH_MACS.join(",") },
        { why: "ssh-audit Debian 12 guide", keyword: "HostKeyAlgorithms", value: SSH_HOST_KEY_ALGORITHMS.join(",") },
        { why: "ssh-audit Debian 12 guide", keyword: "CASignatureAlgorithms", value: SSH_CA_SIGNATURE_ALGORITHMS.join(",") },
        { why: "ssh-audit Debian 12 guide", keyword: "HostbasedAcceptedAlgorithms", value: SSH_PUBKEY_ALGORITHMS.join(",") },
        { why: "ssh-audit Debian 12 guide: no ECDSA or SHA-1 RSA user keys", keyword: "PubkeyAcceptedAlgorithms", value: SSH_PUBKEY_ALGORITHMS.join(",") },
        { why: "ssh-audit Debian 12 guide: RSA user keys of 3072 bits or more", keyword: "RequiredRSASize", value: String(SSH_MIN_RSA_KEY_BITS) },
        { why: "sshd-12", keyword: "SyslogFacility", value: "AUTH" },
        { why: "sshd-13: key fingerprints in the log, and the lines fail2ban reads", keyword: "LogLevel", value: "VERBOSE" },
        { why: "sshd-06: root never logs in over SSH; the SSH user has sudo", keyword: "PermitRootLogin", value: "no" },
        { why: "only picloud's SSH user logs in", keyword: "AllowUsers", value: input.sshUser },
        { why: "public keys only, whatever another drop-in says about other methods", keyword: "AuthenticationMethods", value: "publickey" },
        { why: "sshd-22", keyword: "PubkeyAuthentication", value: "yes" },
        { why: "sshd-27", keyword: "PasswordAuthentication", value: "no" },
        { why: "sshd-28", keyword: "PermitEmptyPasswords", value: "no" },
        { why: "sshd-29 (ChallengeResponseAuthentication is its old name)", keyword: "KbdInteractiveAuthentication", value: "no" },
        { why: "sshd-25", keyword: "HostbasedAuthentication", value: "no" },
        { why: "sshd-23", keyword: "IgnoreRhosts", value: "yes" },
        { why: "sshd-24", keyword: "IgnoreUserKnownHosts", value: "yes" },
        { why: "sshd-30", keyword: "KerberosAuthentication", value: "no" },
        { why: "sshd-31", keyword: "KerberosOrLocalPasswd", value: "no" },
        { why: "sshd-32", keyword: "KerberosTicketCleanup", value: "yes" },
        { why: "sshd-33", keyword: "GSSAPIAuthentication", value: "no" },
        { why: "sshd-34", keyword: "GSSAPICleanupCredentials", value: "yes" },
        { why: "sshd-11", keyword: "StrictModes", value: "yes" },
        { why: "sshd-18", keyword: "LoginGraceTime", value: "30s" },
        { why: "sshd-19 (ssh-baseline's default is 2; 3 leaves room for one stray agent key)", keyword: "MaxAuthTries", value: String(maxAuthTries) },
        { why: "sshd-20", keyword: "MaxSessions", value: "10" },
        { why: "sshd-21: OpenSSH's default, stated", keyword: "MaxStartups", value: "10:30:100" },
        { why: "sshd-35: liveness through the encrypted channel instead", keyword: "TCPKeepAlive", value: "no" },
        { why: "sshd-36", keyword: "ClientAliveInterval", value: "300" },
        { why: "sshd-37", keyword: "ClientAliveCountMax", value: "3" },
        { why: "sshd-17", keyword: "PermitUserEnvironment", value: "no" },
        // Docker's ssh:// transport runs `docker system dial-stdio` as a command on a session
        // channel and @pulumi/command uses exec and SFTP sessions: none of them forwards anything.
        { why: "sshd-38", keyword: "PermitTunnel", value: "no" },
        { why: "sshd-39: no port forwarding, so no ProxyJump through a Pi either", keyword: "AllowTcpForwarding", value: "no" },
        { why: "no Unix-socket forwarding (it would reach /var/run/docker.sock)", keyword: "AllowStreamLocalForwarding", value: "no" },
        { why: "sshd-40", keyword: "AllowAgentForwarding", value: "no" },
        { why: "sshd-41", keyword: "GatewayPorts", value: "no" },
        { why: "sshd-42", keyword: "X11Forwarding", value: "no" },
        { why: "sshd-43", keyword: "X11UseLocalhost", value: "yes" },
        { why: "every kind of forwarding off, including any added later", keyword: "DisableForwarding", value: "yes" },
        { why: "no reverse lookups of clients", keyword: "UseDNS", value: "no" },
        { why: "no compression before authentication or after", keyword: "Compression", value: "no" },
        { why: "sshd-44", keyword: "PrintMotd", value: "no" },
        { why: "sshd-45", keyword: "PrintLastLog", value: "no" },
        { why: "sshd-46", keyword: "Banner", value: "none" },
        { why: "sshd-47: the version string does not name the distribution's patch level", keyword: "DebianBanner", value: "no" },
    ];
    return [
        "# Written by picloud: sshd hardening per dev-sec ssh-baseline (sshd-NN) and ssh-audit's",
        "# Debian 12 server guide. Debian's sshd_config includes this directory first and sshd keeps",
        "# the first value it reads, so these values win over the main file.",
        ...settings.flatMap((s) => ["", `# ${s.why}`, `${s.keyword} ${s.value}`]),
        "",
    ].join("\n");
}

/** What {@link renderSshAuditPolicy} needs about the Pi's host keys. */
export interface SshAuditPolicyInput {
    /**
     * Size of the Pi's RSA host key; default {@link SSH_RSA_HOST_KEY_BITS}, what the bootstrap
     * regenerates it to. Only a Pi whose pinned key is its RSA key keeps its original one.
     */
    readonly rsaHostKeyBits?: number;
}

/**
 * Key exchange that Debian 12's OpenSSH appends to whatever KexAlgorithms says since its fix for
 * Terrapin (CVE-2023-48795): ssh-audit sees it, so the policy must list it last.
 */
export const SSH_STRICT_KEX_MARKER = "kex-strict-s-v00@openssh.com";

/**
 * The smallest group-exchange prime ssh-audit 2.5.0 measures on the hardened sshd. Asked for at
 * most 2048 bits, sshd finds no such prime in the filtered moduli and falls back to its built-in
 * 2048-bit group (RFC 3526 group 14), so 2048 it is, with or without the moduli step; the check
 * still catches a moduli file with smaller primes.
 */
export const SSH_AUDIT_MIN_DH_MODULUS_BITS = 2048;

/**
 * An ssh-audit policy (`ssh-audit -P <file> [-p <port>] <address>`; exit 0 = passed, 3 = failed)
 * for the sshd that {@link renderSshdHardening} configures: exactly its key exchanges, ciphers,
 * MACs and host keys, in order, no compression, and the RSA host key size. Written for
 * ssh-audit 2.5.0 (Debian 12), whose built-in policies stop at OpenSSH 8.7.
 */
export function renderSshAuditPolicy(input: SshAuditPolicyInput = {}): string {
    const rsaBits = input.rsaHostKeyBits ?? SSH_RSA_HOST_KEY_BITS;
    checkInteger("renderSshAuditPolicy", "rsaHostKeyBits", rsaBits, SSH_MIN_RSA_KEY_BITS, 16384, "RSA host key bits");
    const rsaAlgorithms = SSH_HOST_KEYS.find((k) => k.type === "ssh-rsa")!.algorithms;
    return [
        "# Written by picloud: what the sshd configured by 10-picloud.conf must offer, exactly and in order.",
        "# Check: ssh-audit -P <this file> [-p <port>] <address>   (exit 0: passed)",
        'name = "picloud hardened OpenSSH 9.2 (Debian 12)"',
        "version = 1",
        "",
        "# Compression no.",
        "compressions = none",
        "",
        "# In HostKey order; no ECDSA.",
        `host keys = ${SSH_HOST_KEYS.flatMap((k) => k.algorithms).join(", ")}`,
        ...rsaAlgorithms.map((a) => `hostkey_size_${a} = ${rsaBits}`),
        "",
        "# OpenSSH falls back to its 2048-bit group when a client asks for at most 2048 bits.",
        `dh_modulus_size_diffie-hellman-group-exchange-sha256 = ${SSH_AUDIT_MIN_DH_MODULUS_BITS}`,
        "",
        `# KexAlgorithms, then the strict-kex marker Debian's sshd appends (Terrapin fix).`,
        `key exchanges = ${[...SSH_KEX_ALGORITHMS, SSH_STRICT_KEX_MARKER].join(", ")}`,
        `ciphers = ${SSH_CIPHERS.join(", ")}`,
        `macs = ${SSH_MACS.join(", ")}`,
        "",
    ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// sysctl

/** One kernel setting of {@link renderSysctlHardening}. */
export interface SysctlSetting {
    /**
     * The sysctl key; `*` stands for every existing interface plus `all` and `default`, for
     * settings the kernel reads per interface (systemd-sysctl expands it, and udev's
     * 99-systemd.rules applies it to each interface that appears later).
     */
    readonly key: string;
    readonly value: string;
    /** Source and, where picloud deviates from it, why. */
    readonly why: string;
    /** Written as `-key`: a kernel without it (Yama, magic SysRq) is no error. */
    readonly optional?: boolean;
}

/**
 * The settings of {@link renderSysctlHardening}, in file order. A bootstrap can verify them after
 * applying: every non-optional key must read back its value (`sysctl -n`), each interface's for
 * `*` keys.
 */
export const SYSCTL_HARDENING: readonly SysctlSetting[] = [
    { key: "kernel.kptr_restrict", value: "2", why: "lynis KRNL-6000, KSPP: kernel pointers hidden even from root" },
    { key: "kernel.dmesg_restrict", value: "1", why: "lynis KRNL-6000, KSPP" },
    { key: "kernel.unprivileged_bpf_disabled", value: "1", why: "lynis KRNL-6000, KSPP (1 cannot be undone without a reboot)" },
    { key: "net.core.bpf_jit_harden", value: "2", why: "lynis KRNL-6000, KSPP" },
    { key: "kernel.yama.ptrace_scope", value: "1", why: "lynis KRNL-6000, KSPP: processes trace only their descendants", optional: true },
    { key: "kernel.sysrq", value: "0", why: "sysctl-30, lynis KRNL-6000", optional: true },
    { key: "kernel.randomize_va_space", value: "2", why: "sysctl-32, lynis KRNL-6000" },
    { key: "fs.suid_dumpable", value: "0", why: "sysctl-31a, lynis KRNL-6000" },
    { key: "fs.protected_hardlinks", value: "1", why: "sysctl-34, lynis KRNL-6000" },
    { key: "fs.protected_symlinks", value: "1", why: "sysctl-34, lynis KRNL-6000" },
    { key: "fs.protected_regular", value: "2", why: "sysctl-34, lynis KRNL-6000" },
    // procps' /usr/lib/sysctl.d/99-protect-links.conf sorts after this file and sets 1: lynis's 2
    // would be overridden at every boot.
    { key: "fs.protected_fifos", value: "1", why: "sysctl-34 (1 or 2; 1 as Debian's procps sets it after this file)" },
    { key: "dev.tty.ldisc_autoload", value: "0", why: "lynis KRNL-6000, KSPP" },
    // Docker routes between its bridges and the LAN; it would turn this on itself, this keeps it so.
    { key: "net.ipv4.ip_forward", value: "1", why: "deviates from sysctl-01: Docker needs forwarding" },
    // Loose mode (2) still drops sources no interface routes back to, but unlike strict mode (1)
    // it does not drop asymmetric traffic: a Pi on Ethernet and Wi-Fi, Docker bridges, the
    // keepalived VIP moving between Pis.
    { key: "net.ipv4.conf.*.rp_filter", value: "2", why: "deviates from sysctl-02 (1): loose reverse-path filtering" },
    { key: "net.ipv4.conf.*.accept_redirects", value: "0", why: "sysctl-14, lynis KRNL-6000" },
    { key: "net.ipv4.conf.*.secure_redirects", value: "0", why: "sysctl-15" },
    { key: "net.ipv4.conf.*.send_redirects", value: "0", why: "sysctl-16, lynis KRNL-6000" },
    { key: "net.ipv4.conf.*.accept_source_route", value: "0", why: "sysctl-13, lynis KRNL-6000" },
    { key: "net.ipv4.conf.*.log_martians", value: "1", why: "sysctl-17, lynis KRNL-6000 (rate-limited, to the RAM journal)" },
    // The VRRP VIP sits on the interface it is asked for, so keepalived's ARP is unaffected.
    { key: "net.ipv4.conf.all.arp_ignore", value: "1", why: "sysctl-08: answer ARP only on the interface that has the address" },
    { key: "net.ipv4.conf.all.arp_announce", value: "2", why: "sysctl-09" },
    { key: "net.ipv4.icmp_echo_ignore_broadcasts", value: "1", why: "sysctl-04, lynis KRNL-6000" },
    { key: "net.ipv4.icmp_ignore_bogus_error_responses", value: "1", why: "sysctl-03, lynis KRNL-6000" },
    { key: "net.ipv4.tcp_syncookies", value: "1", why: "sysctl-11, lynis KRNL-6000" },
    { key: "net.ipv4.tcp_rfc1337", value: "1", why: "sysctl-10" },
    { key: "net.ipv6.conf.*.accept_redirects", value: "0", why: "sysctl-20, lynis KRNL-6000" },
    { key: "net.ipv6.conf.*.accept_source_route", value: "0", why: "sysctl-13, lynis KRNL-6000" },
];

/** Baseline settings kept as the kernel has them, and why; listed in the file's header. */
const SYSCTL_LEFT_ALONE: readonly string[] = [
    "kernel.modules_disabled (sysctl-29): Docker and keepalived load modules on demand",
    "IPv6 router advertisements and autoconfiguration (sysctl-21 to 28): a Pi takes its IPv6 address from the LAN",
    "net.ipv4.tcp_timestamps (sysctl-07): random per connection since Linux 4.10, so no uptime leak; PAWS needs them",
    "net.ipv4.icmp_ratelimit, icmp_ratemask (sysctl-05/06) and shared_media (sysctl-12): kernel defaults",
];

/**
 * `/etc/sysctl.d/60-picloud-hardening.conf`: {@link SYSCTL_HARDENING} as a sysctl.d file.
 * Leaves net.ipv4.ip_forward on (Docker) and rp_filter loose (asymmetric routes, keepalived).
 * Keys a Pi's kernel may lack are written `-key` (systemd-sysctl semantics).
 */
export function renderSysctlHardening(): string {
    return [
        "# Written by picloud: kernel and network hardening per dev-sec linux-baseline (sysctl-NN),",
        "# lynis KRNL-6000 and KSPP, keeping forwarding for Docker and loose rp_filter for",
        "# asymmetric routes. `*` means every interface; `-key` may be missing from the kernel.",
        "# Left as the kernel has them:",
        ...SYSCTL_LEFT_ALONE.map((s) => `#   ${s}`),
        ...SYSCTL_HARDENING.flatMap((s) => ["", `# ${s.why}`, `${s.optional ? "-" : ""}${s.key} = ${s.value}`]),
        "",
    ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// fail2ban

/**
 * The sshd filter mode of picloud's jail. With public keys only, a stranger's attempt ends in
 * `Connection closed by authenticating user … [preauth]`, which only the ddos/aggressive modes
 * count; aggressive also counts scanners and clients offering only weak algorithms.
 */
export const FAIL2BAN_SSHD_MODE = "aggressive";

/**
 * fail2ban's journal filter for sshd: Debian's unit is ssh.service (the filter's stock
 * journalmatch names sshd.service, which Debian does not have).
 */
export const FAIL2BAN_SSHD_JOURNALMATCH = "_SYSTEMD_UNIT=ssh.service + _COMM=sshd";

/** What {@link renderFail2banJail} needs. */
export interface Fail2banJailInput {
    /**
     * Addresses or CIDR networks never banned, IPv4 or IPv6: the monitoring Pi (and anything
     * running ssh-audit against the Pis), the management network. Loopback is always added.
     */
    readonly ignoreIps: readonly string[];
    /** Port sshd listens on, banned for offenders; default 22. */
    readonly sshPort?: number;
    /** Failures within findTime that ban an address; default 5. */
    readonly maxRetry?: number;
    /** Seconds over which failures count; default 600. */
    readonly findTimeSeconds?: number;
    /** Seconds of a first ban; default 3600. Each repeat ban lasts longer, up to maxBanTimeSeconds. */
    readonly banTimeSeconds?: number;
    /** Longest ban in seconds; default 604800 (a week). */
    readonly maxBanTimeSeconds?: number;
}

/** An IPv4/IPv6 address, or one with a /prefix; returns what is wrong with it, or undefined. */
function addressProblem(entry: string): string | undefined {
    const [address, prefix, extra] = entry.split("/");
    const family = isIP(address ?? "");
    if (family === 0 || extra !== undefined) return "not an IP address or CIDR network";
    if (prefix === undefined) return undefined;
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `the prefix length must be 0 to ${max}`;
    return undefined;
}

/**
 * `/etc/fail2ban/jail.d/picloud.conf`: the sshd jail on the systemd journal (Debian 12 has no
 * /var/log/auth.log without rsyslog), in {@link FAIL2BAN_SSHD_MODE} mode, banning into nftables
 * (`inet f2b-table`, hooked before picloud's own table) on the SSH port only, with longer bans
 * for repeat offenders. jail.d files are read after Debian's defaults-debian.conf and in name
 * order, so these values win. Throws, naming the key, on an invalid address or number.
 */
export function renderFail2banJail(input: Fail2banJailInput): string {
    const fn = "renderFail2banJail";
    if (!Array.isArray(input.ignoreIps)) throw new Error(`${fn}: ignoreIps: expected a list of IP addresses or CIDR networks, got ${JSON.stringify(input.ignoreIps)}`);
    input.ignoreIps.forEach((entry, i) => {
        const problem = typeof entry === "string" ? addressProblem(entry) : "not a string";
        if (problem) throw new Error(`${fn}: ignoreIps[${i}]: expected an IP address or CIDR network (e.g. "192.168.1.10" or "10.0.0.0/24"), got ${JSON.stringify(entry)}: ${problem}`);
    });
    const sshPort = input.sshPort ?? 22;
    checkInteger(fn, "sshPort", sshPort, 1, 65535, "a TCP port");
    const maxRetry = input.maxRetry ?? 5;
    checkInteger(fn, "maxRetry", maxRetry, 1, 100, "failures");
    const findTime = input.findTimeSeconds ?? 600;
    checkInteger(fn, "findTimeSeconds", findTime, 1, 604800, "seconds");
    const banTime = input.banTimeSeconds ?? 3600;
    checkInteger(fn, "banTimeSeconds", banTime, 60, 31536000, "seconds");
    const maxBanTime = input.maxBanTimeSeconds ?? 604800;
    checkInteger(fn, "maxBanTimeSeconds", maxBanTime, banTime, 31536000, "seconds, at least banTimeSeconds");
    const ignore = [...new Set(["127.0.0.1/8", "::1", ...input.ignoreIps])];
    return [
        "# Written by picloud: fail2ban's sshd jail. sshd logs to the systemd journal only (Debian 12",
        "# has no auth.log without rsyslog), as ssh.service.",
        "[sshd]",
        "enabled = true",
        "backend = systemd",
        `journalmatch = ${FAIL2BAN_SSHD_JOURNALMATCH}`,
        "# Keys only: a stranger's failed attempt is a connection closed before authentication, which",
        "# only the aggressive mode (normal + ddos + extra) counts.",
        `mode = ${FAIL2BAN_SSHD_MODE}`,
        `port = ${sshPort}`,
        `maxretry = ${maxRetry}`,
        `findtime = ${findTime}`,
        `bantime = ${banTime}`,
        "# Repeat offenders stay out longer, up to bantime.maxtime.",
        "bantime.increment = true",
        `bantime.maxtime = ${maxBanTime}`,
        "# Bans go into nftables (table inet f2b-table, input hook, priority -1), beside picloud's table.",
        "banaction = nftables-multiport",
        "# Never banned: loopback, the monitoring and management addresses.",
        `ignoreip = ${ignore.join(" ")}`,
        "",
    ].join("\n");
}
