/**
 * The database for real: Patroni at the version the image pins (from PyPI) with Debian's
 * PostgreSQL 15 (bookworm has no 17; the image runs 17), three members each in a network namespace
 * of its own on a bridge (a Pi each), beside a three-member etcd started with the flags picloud
 * renders (its DCS port on), every member on exactly the patroni.yml picloud renders for the dev
 * stack (its folders aside) with the passwords in its environment as the container gets them. The
 * cluster step, as rendered, applies the settings and makes the roles and databases; HAProxy runs
 * the dev stack's haproxy.cfg in a fourth namespace holding the virtual IP, and clients write
 * through its primary service.
 *
 * The primary's Pi dies (Patroni, PostgreSQL and etcd SIGKILLed): a standby is promoted, the load
 * balancer's primary service follows it, and no write the old primary acknowledged is lost
 * (synchronous mode). The time until writes succeed again is printed.
 *
 * Backups: Garage runs on the dev stack's blob nodes in the same namespaces; each member runs the
 * image's entrypoint as rendered (the TLS bridge, then Patroni), Debian's pgBackRest (2.45) on the
 * pgbackrest.conf picloud renders archives WAL through it, and the backup runner takes a backup
 * on the primary and skips on the standbys. The data is destroyed; the restore steps, as
 * rendered, take the whole cluster back to a moment before, and the standbys copy it again.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPlan } from "../components/plan/plan";
import { BACKUP_METRIC, BACKUP_SKIPPED, renderBackupRunner } from "../components/renderers/backupTimer";
import { GARAGE_WORKLOAD, blobEndpoint, garageWorkload } from "../components/tiers/blob/garage";
import { BACKUP_NAME, KEY_ENV, MemberAccess, STANZA, bridgeEnvironment, renderBackupCommand, renderMemberEntrypoint, renderPgbackrestConf, renderRestoreRejoin, renderRestoreReset, renderRestoreRun, renderRestoreStop, restoreId, s3Target } from "../components/tiers/database/pgbackrest";
import type { ReplicaIdentity } from "../components/runtime/workload";
import { replicaIdentities } from "../components/runtime/workload";
import { POSTGRES_WORKLOAD, SYSTEM_ROLES, postgresWorkload, renderClusterStep, renderPatroniYml, renderPostgresHandOff, renderRolesSql, scramVerifier } from "../components/tiers/database/postgres";
import { PATRONI_JOB, databaseSpec } from "../components/tiers/database/specs";
import { LOAD_BALANCER_DIRS, loadBalancerPis } from "../components/tiers/loadBalancer/specs";
import { dnsZone } from "../components/tiers/serviceRegistry/dns";
import { ETCD_WORKLOAD, etcdMemberFlags, etcdWorkload } from "../components/tiers/serviceRegistry/specs";
import { STACKS_DIR, exampleStack } from "./support/exampleStacks";
import { GarageLab, GarageNode, garageKey } from "./support/garageLab";
import { NetnsLab, sleep, waitFor } from "./support/netnsLab";
import { must, run, runAsync } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-pg-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const CLIENT = `${PREFIX}lb`;
const lab = new NetnsLab("picloud-patroni");

const dev = exampleStack("dev");
const options = dev.config.tiers.database!;
const registry = dev.config.tiers.registry!;
const lb = dev.config.tiers.loadBalancer!;
const address = new Map(dev.config.pis.map((p) => [p.name, p.address]));
const placed = (name: string, w: Parameters<typeof replicaIdentities>[0]) => replicaIdentities(w, dev.plan.placement.assignments.get(name)!, (pi) => address.get(pi)!);
const members: ReplicaIdentity[] = placed(POSTGRES_WORKLOAD, postgresWorkload(options, dev.config.pis));
const etcdMembers: ReplicaIdentity[] = placed(ETCD_WORKLOAD, etcdWorkload(registry, dev.config.pis, true));
const prefixLength = Number(dev.config.network!.subnet.split("/")[1]);
const PG_BIN = "/usr/lib/postgresql/15/bin";

// What picloud makes with @pulumi/random.
const password = () => randomBytes(16).toString("hex");
const SECRETS = { superuser: password(), replication: password(), rewind: password(), restApi: password(), monitor: password(), hello: password() };

/** A Pi: its namespace and folder, and what runs there. */
interface Host {
    readonly pi: string;
    readonly address: string;
    readonly ns: string;
    readonly dir: string;
    etcd?: ChildProcess;
    patroni?: ChildProcess;
}
const hosts: Host[] = dev.config.pis.map((p, i) => ({ pi: p.name, address: p.address, ns: `${PREFIX}${i}`, dir: path.join(lab.work, p.name) }));
const hostOf = (m: Pick<ReplicaIdentity, "pi">) => hosts.find((h) => h.pi === m.pi)!;
const pgDir = (m: ReplicaIdentity) => path.join(hostOf(m).dir, "postgres");
const pgPaths = (m: ReplicaIdentity) => ({ dataDir: path.join(pgDir(m), "pgdata"), binDir: PG_BIN, socketDir: path.join(pgDir(m), "run"), pgpass: path.join(pgDir(m), "pgpass") });
const etcdEndpoints = etcdMembers.map((e) => `${e.address}:${registry.dcsPort}`);
const ymlOf = (m: ReplicaIdentity) => path.join(pgDir(m), "patroni.yml");

// Blob storage on the dev stack's nodes, in the same namespaced Pis, and the database's key.
const blob = dev.config.tiers.blob!;
const backup = options.backup!;
const garageNodes: GarageNode[] = placed(GARAGE_WORKLOAD, garageWorkload(blob, dev.config.pis)).map((identity) => ({ identity, ns: hostOf(identity).ns, dir: path.join(hostOf(identity).dir, "garage") }));
const garage = new GarageLab(lab, blob, garageNodes);
const DB_KEY = garageKey(backup.key);
const s3 = s3Target(blobEndpoint(blob, garageNodes.map((n) => n.identity), dnsZone(registry, "dev")), blob.region);
/** What a member's container gets with backups: the bridge's settings and the key, and where this host keeps pgBackRest's files. */
const backupEnv = (m: ReplicaIdentity): Record<string, string> => ({
    ...bridgeEnvironment(backup, s3),
    [KEY_ENV.id]: DB_KEY.id,
    [KEY_ENV.secret]: DB_KEY.secret,
    PGBACKREST_CONFIG: path.join(pgDir(m), "pgbackrest.conf"),
    PGBACKREST_LOCK_PATH: path.join(pgDir(m), "lock"),
});

function tail(file: string, lines = 8): string {
    try {
        return readFileSync(file, "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}
const logs = () => members.map((m) => `${m.pi}:\n${tail(path.join(pgDir(m), "patroni.log"))}`).join("\n");

function startEtcd(h: Host): void {
    const self = etcdMembers.find((m) => m.pi === h.pi)!;
    h.etcd = lab.start(h.ns, path.join(h.dir, "etcd.log"), [validator("etcd"), ...etcdMemberFlags(self, etcdMembers, registry, path.join(h.dir, "etcd"), true)]);
}

/** The member as its container runs it: the image's entrypoint (the TLS bridge, then Patroni) as the postgres user. */
const memberCommand = (m: ReplicaIdentity) => ["runuser", "-u", "postgres", "--", "sh", path.join(pgDir(m), "entrypoint.sh"), ymlOf(m)];

function startPatroni(m: ReplicaIdentity): void {
    // Patroni runs PostgreSQL as its own user, as the image's postgres user.
    hostOf(m).patroni = lab.start(hostOf(m).ns, path.join(pgDir(m), "patroni.log"), memberCommand(m), backupEnv(m));
}

/** How the restore steps reach a member here: as the container's stop and start do, with the member's processes instead of docker. */
function memberAccess(m: ReplicaIdentity): MemberAccess {
    const find = `pgrep -o -f ${JSON.stringify(`patroni ${ymlOf(m)}`)}`;
    const pidFile = path.join(pgPaths(m).dataDir, "postmaster.pid");
    return {
        exec: ["runuser", "-u", "postgres", "--"],
        // As docker stop does: SIGTERM to Patroni alone, which stops PostgreSQL and exits; then the rest of
        // the member (the bridge) goes, as a container's processes go with its first.
        stop: [
            `if pid=$(${find}); then pgid=$(ps -o pgid= -p "$pid" | tr -d ' '); kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done; kill -KILL -- "-$pgid" 2>/dev/null || true; fi`,
            `while [ -e ${pidFile} ] && kill -0 "$(head -n 1 ${pidFile})" 2>/dev/null; do sleep 0.5; done`,
        ].join("\n"),
        start: `setsid ${memberCommand(m).join(" ")} >>${path.join(pgDir(m), "patroni.log")} 2>&1 </dev/null &`,
        running: `${find} >/dev/null`,
        socketDir: pgPaths(m).socketDir,
    };
}

/** The member's Patroni REST API answer for `route` (its status code). */
function rest(m: Pick<ReplicaIdentity, "address">, route: string): number {
    const r = run("ip", ["netns", "exec", CLIENT, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", `http://${m.address}:${options.restApiPort}${route}`]);
    return Number(r.stdout);
}
/** Fails at once, with its log, when a member's Patroni has exited. */
function running(): true {
    for (const m of members) {
        const p = hostOf(m).patroni;
        if (p && (p.exitCode !== null || p.signalCode !== null)) throw new Error(`Patroni on ${m.pi} exited:\n${readFileSync(path.join(pgDir(m), "patroni.log"), "utf8").split("\n").filter((l) => /ERROR|FATAL|WARNING|error/.test(l)).slice(0, 15).join("\n")}`);
    }
    return true;
}
const primaries = () => members.filter((m) => hostOf(m).patroni && rest(m, "/primary") === 200);

/** psql from the client namespace, asynchronously, with the password in its environment. */
function psql(target: { host: string; port: number }, user: string, secret: string, db: string, sql: string) {
    const args = ["netns", "exec", CLIENT, "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", target.host, "-p", String(target.port), "-U", user, "-d", db, "-c", sql];
    return runAsync("ip", args, undefined, { PGPASSWORD: secret, PGCONNECT_TIMEOUT: "3" }).then((r) => ({ ...r, stdout: r.stdout.trim() }));
}
const LB = { host: lb.virtualIp!, port: options.loadBalancer.primaryPort };

/** HAProxy's count of servers up in `proxy`, from its own metrics. */
function activeServers(proxy: string): number {
    const text = run("ip", ["netns", "exec", CLIENT, "curl", "-s", "--max-time", "2", `http://${LB.host}:${lb.statsPort}/metrics`]).stdout;
    const m = new RegExp(`^haproxy_backend_active_servers\\{proxy="${proxy}"\\} (\\d+)$`, "m").exec(text);
    return m ? Number(m[1]) : -1;
}
const asHello = (sql: string, target = LB) => psql(target, "hello", SECRETS.hello, "hello", sql);

/** The cluster step as the component renders it, psql and curl on the first member's host instead of `docker exec`. */
function clusterStep() {
    const script = path.join(lab.work, "cluster.sh");
    writeFileSync(script, renderClusterStep({ exec: [], members, options, waitSeconds: 120 }));
    const roles = [
        { role: "hello", verifier: scramVerifier("hello", SECRETS.hello) },
        { role: SYSTEM_ROLES.monitor, verifier: scramVerifier(SYSTEM_ROLES.monitor, SECRETS.monitor), grants: ["pg_monitor"] },
    ];
    const stdin = `${SECRETS.restApi}\n${SECRETS.superuser}\n${renderRolesSql(roles, options.databases)}`;
    return runAsync("ip", ["netns", "exec", hostOf(members[0]).ns, "bash", script], stdin);
}

beforeAll(async () => {
    expect(members).toHaveLength(3);
    expect(options.synchronousMode ?? true).toBe(true);
    Object.assign(process.env, {
        PATRONI_SUPERUSER_PASSWORD: SECRETS.superuser,
        PATRONI_REPLICATION_PASSWORD: SECRETS.replication,
        PATRONI_REWIND_PASSWORD: SECRETS.rewind,
        PATRONI_RESTAPI_USERNAME: SYSTEM_ROLES.restApi,
        PATRONI_RESTAPI_PASSWORD: SECRETS.restApi,
    });
    chmodSync(lab.work, 0o755);
    lab.addSwitch(SWITCH);
    hosts.forEach((h, i) => {
        lab.addHost(h.ns, SWITCH, `port${i}`, `${h.address}/${prefixLength}`);
        mkdirSync(h.dir, { recursive: true });
        chmodSync(h.dir, 0o755);
    });
    lab.addHost(CLIENT, SWITCH, "portlb", `${lb.virtualIp}/${prefixLength}`);
    // Blob storage's registry name, as each Pi resolves it.
    for (const h of hosts) lab.setHosts(h.ns, { [s3.host]: garageNodes[0].identity.address });
    garageNodes.forEach((n) => garage.start(n));
    for (const m of members) {
        const dir = pgDir(m);
        mkdirSync(path.join(dir, "run"), { recursive: true });
        writeFileSync(ymlOf(m), renderPatroniYml(m, members, options, { scope: "dev", etcd: etcdEndpoints, paths: pgPaths(m) }));
        writeFileSync(path.join(dir, "pgbackrest.conf"), renderPgbackrestConf(backup, { scope: "dev", s3, port: options.port, paths: pgPaths(m) }));
        writeFileSync(path.join(dir, "entrypoint.sh"), renderMemberEntrypoint(validator("patroni")));
        for (const f of [dir, path.join(dir, "run"), ymlOf(m), path.join(dir, "pgbackrest.conf"), path.join(dir, "entrypoint.sh")]) chownSync(f, 101, 104);
        chmodSync(dir, 0o700);
    }
    const keys = [DB_KEY, ...Object.keys(blob.keys).filter((k) => k !== DB_KEY.name).map(garageKey)];
    const init = await garage.initStep(keys);
    expect(init.status, `${init.stdout}\n${init.stderr}\n${garage.logs()}`).toBe(0);
    expect(init.stdout).toContain(`created bucket ${backup.bucket}`);
    for (const h of hosts) startEtcd(h);
    // As the component orders it: the members start once etcd's do (and the cluster has formed).
    await waitFor("etcd's cluster answers on its DCS port", 60_000, () => run("ip", ["netns", "exec", CLIENT, "curl", "-fsS", "--max-time", "2", `http://${etcdMembers[0].address}:${registry.dcsPort}/version`]).stdout.includes('"etcdcluster":"3.'), { intervalMs: 500 });
    for (const m of members) startPatroni(m);
    await waitFor("a primary and two streaming standbys", 180_000, () => running() && primaries().length === 1 && members.filter((m) => rest(m, "/replica") === 200).length === 2, { intervalMs: 1000, context: logs });

    const step = await clusterStep();
    expect(step.status, `${step.stdout}\n${step.stderr}\n${logs()}`).toBe(0);
    expect(step.stdout).toContain("applied the cluster settings");

    // HAProxy on the dev stack's shipped haproxy.cfg, in the namespace holding the virtual IP.
    const outDir = path.join(lab.work, "plan");
    const plan = await runPlan({ stack: "dev", source: { file: path.join(STACKS_DIR, "Pulumi.dev.yaml") }, outDir });
    if (!plan.ok) throw new Error(plan.error);
    const cfg = path.join(outDir, loadBalancerPis(dev.plan.placement, dev.config.pis)[0].name, LOAD_BALANCER_DIRS.config, "haproxy.cfg");
    lab.start(CLIENT, path.join(lab.work, "haproxy.log"), [validator("haproxy"), "-db", "-f", cfg]);
    // HAProxy counts a server up until its first checks fail: ready once the primary service has exactly the one.
    await waitFor("the load balancer's primary service has one server, the primary", 60_000, () => activeServers("database-primary") === 1 && activeServers("database-replicas") === 2, {
        intervalMs: 500,
        context: () => tail(path.join(lab.work, "haproxy.log")),
    });
    const made = await asHello("CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())");
    expect(made.status, made.stderr).toBe(0);
}, 400_000);

afterAll(async () => {
    // Members the restore steps started are not the lab's children: their process groups go by their patroni.yml.
    for (const m of members) {
        const pid = run("pgrep", ["-o", "-f", `patroni ${ymlOf(m)}`]).stdout.trim();
        const pgid = pid ? run("ps", ["-o", "pgid=", "-p", pid]).stdout.trim() : "";
        if (pgid) run("kill", ["-KILL", "--", `-${pgid}`]);
    }
    await lab.stopAll();
    // Patroni starts PostgreSQL in a session of its own: stop what is left of it by its data folder.
    for (const m of members) run("runuser", ["-u", "postgres", "--", `${PG_BIN}/pg_ctl`, "-D", path.join(pgDir(m), "pgdata"), "-m", "immediate", "stop"]);
    lab.remove();
    for (const k of ["PATRONI_SUPERUSER_PASSWORD", "PATRONI_REPLICATION_PASSWORD", "PATRONI_REWIND_PASSWORD", "PATRONI_RESTAPI_USERNAME", "PATRONI_RESTAPI_PASSWORD"]) delete process.env[k];
}, 60_000);

describe("PostgreSQL with Patroni on picloud's patroni.yml, three members on three namespaced Pis", () => {
    it("applies the dynamic settings and keeps the declared roles and databases; a second run changes nothing", async () => {
        const config = run("ip", ["netns", "exec", CLIENT, "curl", "-fsS", `http://${members[0].address}:${options.restApiPort}/config`]);
        expect(JSON.parse(config.stdout)).toMatchObject({ synchronous_mode: true, failsafe_mode: true, ttl: options.leaderTtlSeconds });
        // The role logs in with the password whose verifier the step set, through the load balancer.
        const who = await asHello("SELECT current_user || ' ' || current_database()");
        expect(who.stdout).toBe("hello hello");
        // The superuser may not log in from outside the members.
        const superuser = await psql(LB, SYSTEM_ROLES.superuser, SECRETS.superuser, "postgres", "SELECT 1");
        expect(superuser.status).not.toBe(0);
        expect(superuser.stderr).toMatch(/pg_hba\.conf rejects/);
        const again = await clusterStep();
        expect(again.status, again.stderr).toBe(0);
        expect((await asHello("SELECT count(*) FROM pg_roles WHERE rolname = 'hello'")).stdout).toBe("1");
    });

    it("serves every Patroni metric its alerts and dashboard read", () => {
        const spec = databaseSpec(options, members, []);
        const text = run("ip", ["netns", "exec", CLIENT, "curl", "-fsS", `http://${members[0].address}:${options.restApiPort}/metrics`]).stdout;
        const used = new Set([...spec.alertRules.map((r) => r.expr), ...spec.dashboard.panels.map((p) => p.expr)].flatMap((e) => [...e.matchAll(/\b(patroni_[a-z_]+)\{/g)].map((m) => m[1])));
        expect(used.size).toBeGreaterThan(3);
        for (const metric of used) expect(text, metric).toMatch(new RegExp(`^${metric}\\{`, "m"));
        expect(spec.scrapeTargets.find((t) => t.job === PATRONI_JOB)!.targets).toContain(`${members[0].address}:${options.restApiPort}`);
    });

    it("has one synchronous standby: a commit waits until it has the commit too", async () => {
        await waitFor("a synchronous standby", 30_000, () => members.filter((m) => rest(m, "/sync") === 200).length === 1, { intervalMs: 500, context: logs });
        const [primary] = primaries();
        // As the exporters read it: the monitoring role sees replication's state.
        const r = await psql({ host: primary.address, port: options.port }, SYSTEM_ROLES.monitor, SECRETS.monitor, "postgres", "SELECT sync_state FROM pg_stat_replication ORDER BY 1");
        expect(r.stdout.split("\n")).toEqual(["async", "sync"]);
    });

    it("reads a changed patroni.yml on SIGHUP, as the reload step sends it: a member added is let in without a restart", async () => {
        const m = members[1];
        const file = path.join(pgDir(m), "patroni.yml");
        const original = readFileSync(file, "utf8");
        const newcomer = { index: 3, pi: "dev-4", address: "192.168.10.14" };
        const etcd = etcdMembers.map((e) => `${e.address}:${registry.dcsPort}`);
        const paths = { dataDir: path.join(pgDir(m), "pgdata"), binDir: PG_BIN, socketDir: path.join(pgDir(m), "run"), pgpass: path.join(pgDir(m), "pgpass") };
        const hup = () => must("pkill", ["-HUP", "-u", "postgres", "-f", `bin/patroni ${file}`]);
        // The superuser, over the member's own address, from its own Pi: what pg_hba allows.
        const rules = () => runAsync("ip", ["netns", "exec", hostOf(m).ns, "psql", "-X", "-t", "-A", "-h", m.address, "-U", SYSTEM_ROLES.superuser, "-d", "postgres", "-c", "SELECT count(*) FROM pg_hba_file_rules WHERE address = '192.168.10.14'"], undefined, { PGPASSWORD: SECRETS.superuser });
        expect((await rules()).stdout.trim()).toBe("0");
        writeFileSync(file, renderPatroniYml(m, [...members, newcomer], options, { scope: "dev", etcd, paths }));
        hup();
        const start = Date.now();
        let seen = "";
        while (Date.now() - start < 30_000 && seen !== "2") {
            seen = (await rules()).stdout.trim();
            await sleep(500);
        }
        // Replication and the superuser's line, for the newcomer.
        expect(seen).toBe("2");
        writeFileSync(file, original);
        hup();
    });

    it("hands the primary over as a leader-last update does before changing it, and a standby's hand-off does nothing", async () => {
        const [old] = primaries();
        const handOff = (m: ReplicaIdentity) => {
            const access = { running: "true", patronictl: ["runuser", "-u", "postgres", "--", validator("patronictl"), "-c", path.join(pgDir(m), "patroni.yml")] };
            return runAsync("ip", ["netns", "exec", hostOf(m).ns, "bash", "-c", `set -euo pipefail\n${renderPostgresHandOff(m, members, options, access)}`]);
        };
        const standby = members.find((m) => m.pi !== old.pi)!;
        const quiet = await handOff(standby);
        expect(quiet.stdout).toContain("is not the primary");
        const r = await handOff(old);
        expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
        expect(r.stdout).toContain("handed the primary over");
        await waitFor("a new primary", 30_000, () => primaries().length === 1 && primaries()[0].pi !== old.pi, { intervalMs: 500, context: logs });
        // The old one follows the new primary, and the load balancer takes writes on it.
        await waitFor("the old primary streams from the new one", 60_000, () => rest(old, "/replica") === 200, { intervalMs: 500, context: logs });
        const [now] = primaries();
        let served = "";
        const start = Date.now();
        while (Date.now() - start < 30_000 && served !== now.address) served = (await asHello("INSERT INTO acked (id) VALUES (0) ON CONFLICT (id) DO UPDATE SET written_at = now() RETURNING host(inet_server_addr())")).stdout;
        expect(served).toBe(now.address);
    }, 120_000);

    it("loses the primary's Pi: a standby takes over (the goal: within 30 s), the load balancer follows it, and every acknowledged write is there", async () => {
        const acked: number[] = [];
        let next = 1;
        let killedAt = 0;
        let backAt = 0;
        let stop = false;
        // Writes one at a time through the load balancer; a write counts once PostgreSQL has acknowledged it.
        const writer = (async () => {
            while (!stop) {
                const id = next++;
                const started = Date.now();
                const r = await asHello(`INSERT INTO acked (id) VALUES (${id}) RETURNING id`);
                if (r.status === 0 && r.stdout === String(id)) {
                    acked.push(id);
                    // Writing again means a write begun after the kill.
                    if (killedAt && started > killedAt && !backAt) backAt = Date.now();
                } else await sleep(100);
            }
        })();
        await waitFor("a hundred acknowledged writes", 60_000, () => acked.length >= 100, { intervalMs: 200 });
        const [old] = primaries();
        const before = acked.length;
        // The Pi dies: everything on it at once.
        const host = hostOf(old);
        const postmaster = Number(readFileSync(path.join(pgDir(old), "pgdata", "postmaster.pid"), "utf8").split("\n")[0]);
        killedAt = Date.now();
        for (const p of [host.patroni!, host.etcd!]) process.kill(-p.pid!, "SIGKILL");
        process.kill(postmaster, "SIGKILL");
        host.patroni = undefined;
        await waitFor("writes succeed again through the load balancer", 60_000, () => backAt > 0, { intervalMs: 200, context: logs });
        const failover = (backAt - killedAt) / 1000;
        await waitFor("more writes on the new primary", 30_000, () => acked.length >= before + 50, { intervalMs: 200 });
        stop = true;
        await writer;

        const [now] = primaries();
        expect(now.pi).not.toBe(old.pi);
        const where = await asHello("SELECT host(inet_server_addr())");
        expect(where.stdout).toBe(now.address);
        const rows = await asHello("SELECT id FROM acked ORDER BY id");
        const present = new Set(rows.stdout.split("\n").map(Number));
        const lost = acked.filter((id) => !present.has(id));
        console.log(
            `database failover: writes through the load balancer again ${failover.toFixed(1)} s after the primary's Pi died (leader lock ttl ${options.leaderTtlSeconds} s); ` +
                `${acked.length} writes acknowledged (${before} before the kill), ${lost.length} lost`,
        );
        expect(lost).toEqual([]);
        // The goal is 30 s. The worst case, the dead Pi holding etcd's leader too, is the lock's
        // 20 s after etcd elects a new leader and extends every lease by its election timeout
        // (2.5 s): about 27 s on an idle machine. 5 s more for a busy one.
        expect(failover).toBeLessThan(35);

        // The old Pi comes back: its member rejoins as a standby of the new primary.
        startEtcd(host);
        startPatroni(old);
        await waitFor("the old primary streams from the new one", 120_000, () => rest(old, "/replica") === 200, { intervalMs: 1000, context: logs });
        expect(primaries().map((m) => m.pi)).toEqual([now.pi]);
    }, 300_000);

    it("backs up into blob storage through the bridge, and restores the whole cluster to a moment before its data was destroyed", async () => {
        const [primary] = primaries();
        const asMember = (m: ReplicaIdentity, script: string) => runAsync("ip", ["netns", "exec", hostOf(m).ns, "bash", "-c", script], undefined, backupEnv(m));
        const superuserSql = (m: ReplicaIdentity, sql: string) => asMember(m, `runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -h ${pgPaths(m).socketDir} -d postgres -c ${JSON.stringify(sql)}`);
        const textfile = (m: ReplicaIdentity) => path.join(hostOf(m).dir, "textfile");
        // One run on each member's Pi, as the timer runs it: the primary backs up, the standbys skip.
        const runner = (m: ReplicaIdentity) =>
            renderBackupRunner({ name: BACKUP_NAME, onCalendar: backup.onCalendar, command: renderBackupCommand(options, backup, memberAccess(m).exec, BACKUP_SKIPPED), textfileDir: textfile(m) });
        const runs = await Promise.all(
            members.map((m) => {
                mkdirSync(textfile(m), { recursive: true });
                return asMember(m, runner(m));
            }),
        );
        members.forEach((m, i) => {
            expect(runs[i].status, `${m.pi}: ${runs[i].stdout}\n${runs[i].stderr}\n${logs()}`).toBe(0);
            const metric = path.join(textfile(m), `backup-${BACKUP_NAME}.prom`);
            if (m.pi === primary.pi) {
                expect(readFileSync(metric, "utf8")).toContain(`${BACKUP_METRIC}{backup="${BACKUP_NAME}"}`);
            } else {
                expect(runs[i].stdout).toContain("nothing to back up on this Pi now");
                expect(existsSync(metric)).toBe(false);
            }
        });
        const info = async () => JSON.parse((await asMember(primary, `runuser -u postgres -- pgbackrest --stanza=${STANZA} --output=json info`)).stdout)[0];
        const first = await info();
        expect(first.status.message).toBe("ok");
        expect(first.backup.map((b: { type: string }) => b.type)).toEqual(["full"]);
        // In the bucket, under the stack's path: what pgBackRest wrote through the bridge.
        const stored = garage.s3(garageNodes[1], DB_KEY, `${backup.bucket}/dev/backup/${STANZA}/backup.info`);
        expect(stored.code, stored.body).toBe(200);
        expect(stored.body).toContain(first.backup[0].label);

        // Rows that are kept, the moment, rows after it; then the data is destroyed.
        expect((await asHello("CREATE TABLE ledger (id int PRIMARY KEY)")).status).toBe(0);
        expect((await asHello("INSERT INTO ledger SELECT generate_series(1, 100)")).status).toBe(0);
        const acked = Number((await asHello("SELECT count(*) FROM acked")).stdout);
        await sleep(1500);
        const moment = (await asHello(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)).stdout;
        await sleep(1500);
        expect((await asHello("INSERT INTO ledger SELECT generate_series(101, 150)")).status).toBe(0);
        expect((await asHello("DROP TABLE acked")).status).toBe(0);
        expect((await asHello("TRUNCATE ledger")).status).toBe(0);
        // Everything up to now in the archive: the segment switched and archived.
        const segment = (await superuserSql(primary, "SELECT pg_walfile_name(pg_switch_wal())")).stdout.trim();
        let archived = "";
        for (const until = Date.now() + 60_000; Date.now() < until && !(archived >= segment); await sleep(500)) archived = (await superuserSql(primary, "SELECT last_archived_wal FROM pg_stat_archiver")).stdout.trim();
        expect(archived >= segment, `archived ${archived}, switched ${segment}\n${logs()}`).toBe(true);

        // The restore as the component runs it once restore.to is set: the changed patroni.yml on every member, then the steps.
        const restoring = { ...options, restore: { to: moment } };
        for (const m of members) writeFileSync(ymlOf(m), renderPatroniYml(m, members, restoring, { scope: "dev", etcd: etcdEndpoints, paths: pgPaths(m) }));
        const target = (m: ReplicaIdentity) => ({ to: moment, markersDir: path.join(hostOf(m).dir, "restore-markers") });
        const step = async (m: ReplicaIdentity, script: string) => {
            const r = await asMember(m, script);
            expect(r.status, `${m.pi}: ${r.stdout}\n${r.stderr}\n${logs()}`).toBe(0);
            return r.stdout;
        };
        const started = Date.now();
        await Promise.all(members.map((m) => step(m, renderRestoreStop(m, target(m), memberAccess(m), pgPaths(m).dataDir))));
        for (const h of hosts) h.patroni = undefined;
        expect(await step(members[0], renderRestoreReset("dev", etcdEndpoints, target(members[0])))).toContain("reset");
        expect(await step(members[0], renderRestoreRun(options, target(members[0]), memberAccess(members[0]), 300))).toContain(`restored to ${moment}`);
        await Promise.all(members.slice(1).map((m) => step(m, renderRestoreRejoin(m, options, target(m), memberAccess(m), 300))));
        console.log(`database restore: the cluster is back at ${moment} with its standbys streaming ${((Date.now() - started) / 1000).toFixed(1)} s after the restore began`);

        // What was there at the moment is there; what came after is not.
        const restored = members[0];
        expect(rest(restored, "/primary")).toBe(200);
        let ids = "";
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && ids !== "100 1 100") {
            ids = (await asHello("SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM ledger")).stdout;
            if (ids !== "100 1 100") await sleep(500);
        }
        expect(ids).toBe("100 1 100");
        expect(Number((await asHello("SELECT count(*) FROM acked")).stdout)).toBe(acked);
        // The restore's moment is in no member's settings files: no restart, no standby ever stops there again. The old data waits beside the new.
        for (const m of members) expect((await superuserSql(m, "SELECT count(*) FROM pg_file_settings WHERE name LIKE 'recovery_target%' AND setting NOT IN ('', 'latest', 'on', 'true')")).stdout.trim(), m.pi).toBe("0");
        for (const m of members) expect(existsSync(`${pgPaths(m).dataDir}.before-restore-${restoreId(moment)}`), m.pi).toBe(true);
        expect(members.filter((m) => rest(m, "/replica") === 200)).toHaveLength(2);
        // The restored cluster's first full backup, on its new timeline.
        expect((await info()).backup.filter((b: { type: string }) => b.type === "full")).toHaveLength(2);
        // Steps that run again (an up that resumes) restore nothing twice.
        expect(await step(members[0], renderRestoreRun(options, target(members[0]), memberAccess(members[0]), 300))).toContain("already done");
        expect(await step(members[1], renderRestoreStop(members[1], target(members[1]), memberAccess(members[1]), pgPaths(members[1]).dataDir))).toContain("already done");
        expect(rest(members[1], "/replica")).toBe(200);
        expect(readdirSync(path.join(hostOf(members[0]).dir, "restore-markers")).sort()).toEqual(["reset", "restored", "stopped"].map((s) => `${restoreId(moment)}.${s}`));
    }, 400_000);
});
