/**
 * The host test bed: Debian bookworm "Pis" booted with `systemd-nspawn -b`, each in a network
 * namespace of its own, on a bridge this machine can reach, so that picloud's host scripts run
 * for real over real SSH (DESIGN.md §6, "hosts for real").
 *
 * Each host boots an overlay over one shared, read-only rootfs (unpacked by prepare-hosts.sh from
 * its cached tarball), mounted inside a private mount namespace so no mount outlives its machine.
 * The hosts have no route out of the bridge; apt on them reads a local repository bind-mounted
 * at /srv/picloud-apt.
 *
 * Everything made here is recorded under /run/picloud-testbed before it is made (namespaces,
 * links, cgroups, processes, the work directory), so the next start can clear what a crashed run left and
 * nothing else. One test bed runs on a machine at a time; needs root.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { renderKnownHosts } from "../../components/renderers/knownHosts";

const execFileAsync = promisify(execFile);

/** What one command run over SSH gave back. */
export interface SshResult {
    /** The remote command's exit status; 255 when ssh itself failed (refused, key rejected …). */
    code: number;
    stdout: string;
    stderr: string;
}

/** One booted host. */
export interface TestHost {
    /** Name given to {@link startTestbed} (the host's hostname is Raspberry Pi OS' `raspberrypi`). */
    readonly name: string;
    /** IPv4 address on the test bed's bridge; sshd listens on port 22. */
    readonly address: string;
    /** The host's public ed25519 host key, `ssh-ed25519 AAAA…`, as a stack config pins it. */
    readonly hostKey: string;
    /**
     * Runs a shell command on the host as `user` (default the login user `pi`) with the real ssh
     * client, the test key and strict host key checking; `input` is fed to its stdin.
     */
    ssh(command: string, opts?: { user?: string; input?: string }): Promise<SshResult>;
}

/** The hosts of one test, and how to reach them. */
export interface Testbed {
    /** The hosts asked for, in the order asked. */
    readonly hosts: readonly TestHost[];
    /** An extra host no test configures (no firewall, no hardening), to test connections from. */
    readonly probe: TestHost;
    /** The login user on every host: passwordless sudo, the test key in its authorized_keys. */
    readonly user: string;
    /** The login user's password, for tests that prove password logins are refused. */
    readonly password: string;
    /** Private key (ed25519, no passphrase) the login user accepts on every host. */
    readonly privateKeyPath: string;
    /** known_hosts file pinning every host's ed25519 host key. */
    readonly knownHostsPath: string;
    /** This machine's address on the bridge. */
    readonly bridgeAddress: string;
    /** The bridge's subnet, CIDR. */
    readonly subnet: string;
    /**
     * Cuts a host's power and boots it again on the same disk: what lived in RAM (`/tmp`, loaded
     * rulesets, running processes) is gone, its files stay. Resolves once it takes SSH logins.
     */
    restart(host: TestHost): Promise<void>;
    /** Terminates the hosts and removes everything the test bed made. Safe to call twice. */
    stop(): Promise<void>;
}

/** A directory of this machine every host sees, read-only, at `target`. */
export interface TestbedBind {
    readonly source: string;
    readonly target: string;
}

/** Namespaces, links and machines made here are named `pct-…`, to be recognised by people. */
const PREFIX = "pct-";
const BRIDGE = `${PREFIX}br0`;
const SUBNET = "10.231.77.0/24";
const BRIDGE_ADDRESS = "10.231.77.1";
const PROBE = "probe";
const PROBE_ADDRESS = "10.231.77.10";
/** The first host's last octet; the others follow. */
const FIRST_HOST_OCTET = 11;
const USER = "pi";
/** Set by prepare-hosts.sh, which also documents why there is one. */
const PASSWORD = "raspberry";
/** Where the hosts' apt sources expect the local repository (prepare-hosts.sh). */
const HOST_APT_DIR = "/srv/picloud-apt";
/** Owner, kernel objects, machine processes and work directory of the running test bed, for crash recovery. */
const STATE_DIR = "/run/picloud-testbed";
/** `pct-` + name must fit a link name (15 characters). */
const HOST_NAME = /^[a-z][a-z0-9-]{0,9}$/;
const BOOT_TIMEOUT_MS = 60_000;
const PREPARE_SCRIPT = path.join(__dirname, "prepare-hosts.sh");
/** Where systemd-nspawn keeps its runtime state (it makes both on its first use). */
const NSPAWN_RUNTIME_DIRS = ["/run/systemd/nspawn", "/run/mount"];
/** What the test bed runs, by the Debian package that has it (prepare-hosts.sh checks its own). */
const REQUIRED_TOOLS: Record<string, string> = {
    "systemd-nspawn": "systemd-container",
    ssh: "openssh-client",
    "ssh-keygen": "openssh-client",
    setpriv: "util-linux",
    unshare: "util-linux",
    ip: "iproute2",
};

/** One host to boot: its network namespace is `pct-<name>`, its files are under `dir`. */
interface Machine {
    readonly name: string;
    readonly address: string;
    readonly dir: string;
}

/**
 * Boots one host per name plus the {@link Testbed.probe}, in parallel, and resolves once sshd
 * answers on each. The first run on a machine builds the rootfs and the apt repository (about a
 * minute, needs deb.debian.org); later runs restore them from `.cache/hosts` in seconds. Leftovers
 * of a crashed run are removed first. On failure everything made so far is removed again.
 */
export async function startTestbed(opts: { hosts: readonly string[]; binds?: readonly TestbedBind[] }): Promise<Testbed> {
    checkPrerequisites(opts.hosts);
    claimMachine();
    const stop = teardownOnce();
    try {
        recordMissingRuntimeDirs();
        const images = await prepareHostImages();
        const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-testbed-"));
        fs.writeFileSync(path.join(STATE_DIR, "workdir"), workdir);

        const privateKeyPath = path.join(workdir, "id_ed25519");
        await Promise.all([
            run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "picloud-testbed", "-f", privateKeyPath]),
            createBridge(),
        ]);
        const authorizedKey = fs.readFileSync(`${privateKeyPath}.pub`, "utf8");

        const machines: Machine[] = [
            { name: PROBE, address: PROBE_ADDRESS },
            ...opts.hosts.map((name, i) => ({ name, address: `10.231.77.${FIRST_HOST_OCTET + i}` })),
        ].map((m) => ({ ...m, dir: path.join(workdir, m.name) }));
        const hostKeys = await Promise.all(machines.map((m) => prepareMachine(m, images.rootfs, authorizedKey)));
        const knownHostsPath = path.join(workdir, "known_hosts");
        fs.writeFileSync(knownHostsPath, renderKnownHosts(machines.map((m, i) => ({ address: m.address, sshPort: 22, hostKey: hostKeys[i] }))));
        const ssh = sshRunner(privateKeyPath, knownHostsPath);
        const hosts = machines.map((m, i): TestHost => {
            return { name: m.name, address: m.address, hostKey: hostKeys[i], ssh: (command, o) => ssh(m.address, command, o) };
        });
        const binds = opts.binds ?? [];
        await Promise.all(machines.map((m, i) => bootMachine(m, images, hosts[i], binds)));

        return {
            probe: hosts[0],
            hosts: hosts.slice(1),
            user: USER,
            password: PASSWORD,
            privateKeyPath,
            knownHostsPath,
            bridgeAddress: BRIDGE_ADDRESS,
            subnet: SUBNET,
            restart: async (host) => {
                const i = hosts.indexOf(host);
                if (i < 0) throw new Error(`${host.name} is not a host of this test bed`);
                const pidFile = `${machines[i].name}.pid`;
                const stamp = readState(pidFile);
                if (stamp) terminate(stamp);
                fs.rmSync(path.join(STATE_DIR, pidFile), { force: true });
                // Its systemd's cgroups went with it; the ones made for it are made anew.
                for (const dir of machineCgroups(machines[i].name)) removeCgroup(dir);
                await bootMachine(machines[i], images, host, binds);
            },
            stop: async () => stop(),
        };
    } catch (error) {
        stop();
        throw error;
    }
}

function checkPrerequisites(names: readonly string[]): void {
    if (process.getuid?.() !== 0) throw new Error("the host test bed needs root (network namespaces, systemd-nspawn): run the host suite as root");
    const missing = Object.entries(REQUIRED_TOOLS).filter(([tool]) => !onPath(tool));
    if (missing.length > 0) {
        const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(" ");
        throw new Error(`the host test bed needs ${missing.map(([tool]) => tool).join(", ")}: apt-get install ${packages}`);
    }
    for (const name of names) {
        if (!HOST_NAME.test(name) || name === PROBE) {
            throw new Error(`test host name "${name}" must match ${HOST_NAME} and not be "${PROBE}" (it names a network namespace and a link)`);
        }
    }
    if (new Set(names).size !== names.length) throw new Error(`test host names must be distinct, got ${names.join(", ")}`);
    if (FIRST_HOST_OCTET + names.length > 255) throw new Error(`at most ${255 - FIRST_HOST_OCTET} test hosts fit the bridge's /24`);
}

function onPath(tool: string): boolean {
    return (process.env.PATH ?? "").split(path.delimiter).some((dir) => {
        try {
            fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
            return true;
        } catch {
            return false;
        }
    });
}

/** Runs a program to completion; a non-zero exit rejects with its stderr. */
async function run(file: string, args: readonly string[]): Promise<string> {
    try {
        return (await execFileAsync(file, args, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (error) {
        const e = error as { stderr?: string; message: string };
        throw new Error(`${file} ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
    }
}

/** Runs a program for teardown, which goes on whatever fails (such as deleting what is already gone). */
function runQuietly(file: string, args: readonly string[]): void {
    try {
        execFileSync(file, args, { stdio: "ignore" });
    } catch {
        // Nothing to do: teardown removes what it can.
    }
}

/** What prepare-hosts.sh gives: the rootfs every host's overlay shares read-only, and the apt repository. */
export interface HostImages {
    /** Directory of the unpacked rootfs. */
    readonly rootfs: string;
    /** Directory of the flat apt repository. */
    readonly aptRepo: string;
}

/**
 * The {@link HostImages}, from `.cache/hosts` or built by prepare-hosts.sh (about a minute, needs
 * root and deb.debian.org). {@link startTestbed} calls it; the suite's global setup calls it first
 * so that a cold build runs outside any test's timeout.
 */
export async function prepareHostImages(): Promise<HostImages> {
    // Its progress (a cold build takes about a minute) goes straight to this process' stderr.
    const child = spawn("bash", [PREPARE_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    const code = await new Promise<number | null>((resolve, reject) => child.on("error", reject).on("close", resolve));
    const value = (key: string) => new RegExp(`^${key}=(.+)$`, "m").exec(stdout)?.[1];
    const rootfs = value("rootfs");
    const aptRepo = value("apt_repo");
    if (code !== 0 || !rootfs || !aptRepo) throw new Error(`${PREPARE_SCRIPT} failed (exit ${code}); its messages are above`);
    return { rootfs, aptRepo };
}

/** Notes a namespace, link, cgroup or directory in the state directory before it is made, for {@link removeRecorded}. */
function record(kind: "netns" | "link" | "cgroup" | "dir", name: string): void {
    fs.appendFileSync(path.join(STATE_DIR, "objects"), `${kind} ${name}\n`);
}

/**
 * Records the runtime directories systemd-nspawn makes on its first use (empty once it is done)
 * that are not there yet, so that teardown takes them away again.
 */
function recordMissingRuntimeDirs(): void {
    for (const dir of NSPAWN_RUNTIME_DIRS) {
        let top = dir;
        while (!fs.existsSync(path.dirname(top))) top = path.dirname(top);
        if (!fs.existsSync(top)) record("dir", top);
    }
}

/** Removes a directory tree if it holds nothing but directories: what is in use stays. */
function removeEmptyTree(dir: string): void {
    try {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            if (entry.isDirectory()) removeEmptyTree(path.join(dir, entry.name));
        }
        fs.rmdirSync(dir);
    } catch {
        // Gone already, or not empty: someone else's now.
    }
}

async function createBridge(): Promise<void> {
    record("link", BRIDGE);
    await run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
    await run("ip", ["address", "add", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE]);
    await run("ip", ["link", "set", BRIDGE, "up"]);
}

/**
 * Gives a host its network namespace (eth0 with its address, on the bridge) and the files that
 * make it itself: its own host keys and the test key in the login user's authorized_keys. The
 * files go into the overlay's upper directory before it is mounted. Resolves to its ed25519 host key.
 */
async function prepareMachine(m: Machine, lower: string, authorizedKey: string): Promise<string> {
    const ns = `${PREFIX}${m.name}`;
    record("netns", ns);
    await run("ip", ["netns", "add", ns]);
    // Deleted by name too: the kernel takes a deleted namespace's veth pair away only later.
    record("link", ns);
    await run("ip", ["link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await run("ip", ["link", "set", ns, "master", BRIDGE, "up"]);
    await run("ip", ["-n", ns, "address", "add", `${m.address}/24`, "dev", "eth0"]);
    await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);

    const upper = path.join(m.dir, "upper");
    for (const sub of ["upper", "work", "merged"]) fs.mkdirSync(path.join(m.dir, sub), { recursive: true });
    mkdirLike(lower, upper, "etc/ssh");
    // -A makes every key type a fresh Debian install has: RSA, ECDSA and ed25519.
    await run("ssh-keygen", ["-q", "-A", "-f", upper]);
    const sshDir = mkdirLike(lower, upper, `home/${USER}/.ssh`);
    const authorizedKeys = path.join(sshDir, "authorized_keys");
    const owner = fs.statSync(sshDir);
    fs.writeFileSync(authorizedKeys, authorizedKey, { mode: 0o600 });
    fs.chownSync(authorizedKeys, owner.uid, owner.gid);
    const [type, blob] = fs.readFileSync(path.join(upper, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8").trim().split(/\s+/);
    return `${type} ${blob}`;
}

/**
 * Creates `rel` under `upper` with each directory's mode and owner taken from `lower`, as the
 * overlay itself would on a copy-up, so the merged tree looks untouched. Returns the new path.
 */
function mkdirLike(lower: string, upper: string, rel: string): string {
    let current = "";
    for (const part of rel.split("/")) {
        current = path.join(current, part);
        const target = path.join(upper, current);
        if (fs.existsSync(target)) continue;
        const like = fs.statSync(path.join(lower, current));
        fs.mkdirSync(target, { mode: like.mode & 0o7777 });
        fs.chmodSync(target, like.mode & 0o7777);
        fs.chownSync(target, like.uid, like.gid);
    }
    return path.join(upper, rel);
}

/**
 * Boots a host and resolves once it takes SSH logins. The process chain is
 * setpriv → unshare → sh → systemd-nspawn, one pid throughout: setpriv makes the kernel send
 * SIGTERM should this process die without tearing down; sh moves it into the machine's cgroups
 * and mounts the overlay in the mount namespace unshare gave it, which vanishes with the machine.
 */
async function bootMachine(m: Machine, images: HostImages, host: TestHost, binds: readonly TestbedBind[]): Promise<void> {
    const consoleLog = path.join(m.dir, "console.log");
    const out = fs.openSync(consoleLog, "w");
    const cgroups = machineCgroups(m.name);
    for (const dir of cgroups) {
        record("cgroup", dir);
        fs.mkdirSync(dir);
    }
    const enterCgroupsAndMount = [
        'for cgroup in $PCT_CGROUPS; do echo $$ >"$cgroup/cgroup.procs"; done',
        'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"',
        'shift 4 && exec "$@"',
    ].join(" && ");
    const args = [
        ...["--pdeathsig", "TERM", "unshare", "--mount", "--propagation", "private", "--"],
        ...["sh", "-c", enterCgroupsAndMount, "sh", images.rootfs, ...["upper", "work", "merged"].map((d) => path.join(m.dir, d))],
        "systemd-nspawn",
        "--quiet",
        "--boot",
        `--directory=${path.join(m.dir, "merged")}`,
        `--machine=${PREFIX}${m.name}`,
        // Not registered with systemd-machined, which the machine running the tests may not run.
        "--register=no",
        // Under systemd, nspawn puts the machine in a scope of its own; without it, nobody can, and
        // the machine stays in the cgroups made for it above.
        ...(systemdIsInit() ? [] : ["--keep-unit"]),
        `--network-namespace-path=/run/netns/${PREFIX}${m.name}`,
        // With a namespace path, only --private-network grants CAP_NET_ADMIN, which nft needs.
        "--private-network",
        // The host keeps its own time zone and resolv.conf, as the bootstrap expects of a Pi.
        "--timezone=off",
        "--resolv-conf=off",
        "--link-journal=no",
        "--console=read-only",
        `--bind-ro=${images.aptRepo}:${HOST_APT_DIR}`,
        ...binds.map((b) => `--bind-ro=${b.source}:${b.target}`),
        // Teardown wants the machine gone, not an orderly shutdown it might wait on.
        "--kill-signal=SIGKILL",
    ];
    const child = spawn("setpriv", args, { stdio: ["ignore", out, out], env: { ...process.env, PCT_CGROUPS: cgroups.join(" ") } });
    fs.closeSync(out);
    // setpriv's pid is systemd-nspawn's after the execs, and its start time stays that of the fork.
    const stamp = processStamp(child.pid!);
    if (stamp) fs.writeFileSync(path.join(STATE_DIR, `${m.name}.pid`), stamp);

    let exited: string | undefined;
    child.on("exit", (code, signal) => (exited = `systemd-nspawn exited (${signal ?? `code ${code}`})`));
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    let last = "sshd did not answer";
    while (Date.now() < deadline && !exited) {
        if (await portOpen(m.address, 22)) {
            const r = await host.ssh("true");
            if (r.code === 0) return;
            last = r.stderr.trim() || `ssh exited ${r.code}`;
        }
        await sleep(200);
    }
    const tail = fs.readFileSync(consoleLog, "utf8").split("\n").slice(-20).join("\n");
    throw new Error(`test host ${m.name} (${m.address}) did not take SSH logins: ${exited ?? `${last}, after ${BOOT_TIMEOUT_MS / 1000} s`}; its console:\n${tail}`);
}

/** Whether systemd runs this machine (sd_booted(3): the directory it creates at boot). */
function systemdIsInit(): boolean {
    return fs.existsSync("/run/systemd/system");
}

/**
 * Without systemd as init (as on many CI machines, containers and VMs), the cgroups a machine
 * gets, `pct-<name>` under this process' own in each hierarchy its systemd manages (cgroup2, and
 * v1 `name=systemd` on a hybrid setup); none under systemd, which gives each machine a scope.
 * Machines left in one shared cgroup would share their units' cgroups too: one machine's systemd
 * would then fail to start units (status 219/CGROUP) or kill another machine's processes.
 */
function machineCgroups(name: string): string[] {
    if (systemdIsInit()) return [];
    const own = new Map<string, string>();
    for (const line of fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\n")) {
        // "0::/path" for cgroup2, "9:name=systemd:/path" for the v1 systemd hierarchy.
        const [, controllers, ...rest] = line.split(":");
        own.set(controllers, rest.join(":"));
    }
    const dirs: string[] = [];
    for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").trim().split("\n")) {
        const [mountFields, fsFields] = line.split(" - ");
        const [fstype, , options] = fsFields.split(" ");
        const hierarchy = fstype === "cgroup2" ? "" : fstype === "cgroup" && options.split(",").includes("name=systemd") ? "name=systemd" : undefined;
        const current = hierarchy === undefined ? undefined : own.get(hierarchy);
        if (current !== undefined) dirs.push(path.join(mountFields.split(" ")[4], current, `${PREFIX}${name}`));
    }
    return dirs;
}

/** Removes a cgroup and the ones its machine's systemd made inside it, deepest first. */
function removeCgroup(dir: string): void {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) removeCgroup(path.join(dir, entry.name));
    }
    // A cgroup goes with rmdir, its control files with it.
    fs.rmdirSync(dir);
}

function portOpen(address: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: address, port, timeout: 1000 });
        const done = (open: boolean) => {
            socket.destroy();
            resolve(open);
        };
        socket.once("connect", () => done(true));
        socket.once("error", () => done(false));
        socket.once("timeout", () => done(false));
    });
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

function sleepSync(ms: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs commands over ssh with the test key, trusting nothing but the known_hosts file. */
function sshRunner(privateKeyPath: string, knownHostsPath: string) {
    const options = [
        // No ~/.ssh/config or system-wide known hosts of the machine running the tests.
        ...["-F", "/dev/null", "-o", "GlobalKnownHostsFile=/dev/null"],
        ...["-o", `UserKnownHostsFile=${knownHostsPath}`, "-o", "StrictHostKeyChecking=yes"],
        ...["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", privateKeyPath],
        ...["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"],
    ];
    return (address: string, command: string, opts: { user?: string; input?: string } = {}): Promise<SshResult> =>
        new Promise((resolve, reject) => {
            const child = spawn("ssh", [...options, `${opts.user ?? USER}@${address}`, "--", command], { stdio: "pipe" });
            let stdout = "";
            let stderr = "";
            child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
            child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
            child.on("error", reject);
            child.on("close", (code) => resolve({ code: code ?? 255, stdout, stderr }));
            child.stdin.end(opts.input ?? "");
        });
}

/**
 * `pid:starttime` of a live process, or undefined when it is gone (or a zombie, as a machine
 * this process has not reaped yet is). The start time tells a process apart from a later one
 * that got the same pid.
 */
function processStamp(pid: number): string | undefined {
    let stat: string;
    try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
        return undefined;
    }
    // Fields after the command name, which may hold spaces, start with the state (field 3).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : `${pid}:${fields[19]}`;
}

function readState(file: string): string | undefined {
    try {
        return fs.readFileSync(path.join(STATE_DIR, file), "utf8").trim();
    } catch {
        return undefined;
    }
}

/** Terminates the systemd-nspawn with this stamp (if still that process) and waits for it. */
function terminate(stamp: string): void {
    const pid = Number(stamp.split(":")[0]);
    if (processStamp(pid) !== stamp) return;
    process.kill(pid, "SIGTERM");
    // SIGTERM makes systemd-nspawn kill the machine (--kill-signal) and exit.
    for (let waited = 0; waited < 10_000 && processStamp(pid) === stamp; waited += 50) sleepSync(50);
    if (processStamp(pid) === stamp) process.kill(pid, "SIGKILL");
}

/**
 * Makes this process the machine's only test bed: refuses while another live one owns it, and
 * otherwise removes what a crashed one recorded.
 */
function claimMachine(): void {
    const owner = readState("owner");
    if (owner && processStamp(Number(owner.split(":")[0])) === owner) {
        throw new Error(`another host test bed (process ${owner.split(":")[0]}) is running on this machine; wait for it or stop it`);
    }
    removeRecorded();
    fs.mkdirSync(STATE_DIR, { recursive: true });
    fs.writeFileSync(path.join(STATE_DIR, "owner"), processStamp(process.pid)!);
}

/** Removes everything recorded in the state directory, machines first, then the directory itself. */
function removeRecorded(): void {
    if (!fs.existsSync(STATE_DIR)) return;
    for (const file of fs.readdirSync(STATE_DIR).filter((f) => f.endsWith(".pid"))) terminate(readState(file)!);
    for (const line of (readState("objects") ?? "").split("\n").filter(Boolean)) {
        const [kind, name] = line.split(" ");
        if (kind === "cgroup") removeCgroup(name);
        else if (kind === "dir") removeEmptyTree(name);
        else runQuietly("ip", kind === "netns" ? ["netns", "delete", name] : ["link", "delete", name]);
    }
    const workdir = readState("workdir");
    if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
    fs.rmSync(STATE_DIR, { recursive: true, force: true });
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Returns the test bed's teardown, which runs {@link removeRecorded} once: when called (stop(),
 * a failed start) or else when this process exits or is interrupted. Synchronous, as an exit
 * hook must be.
 */
function teardownOnce(): () => void {
    let done = false;
    const teardown = () => {
        if (done) return;
        done = true;
        process.off("exit", teardown);
        for (const sig of SIGNALS) process.off(sig, onSignal);
        removeRecorded();
    };
    const onSignal = (sig: NodeJS.Signals) => {
        teardown();
        // With the handler gone, the signal does what it would have done: end the process.
        process.kill(process.pid, sig);
    };
    process.on("exit", teardown);
    for (const sig of SIGNALS) process.on(sig, onSignal);
    return teardown;
}
