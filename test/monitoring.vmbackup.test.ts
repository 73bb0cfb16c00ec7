/**
 * VictoriaMetrics' backups for real: VictoriaMetrics, vmbackup and vmrestore built from their Go
 * module at the image's version (test/support/build-victoria.sh), Garage from crates.io, all in one
 * namespaced "Pi" at the address placement gives the prod stack's store. vmbackup runs with the
 * flags and credentials file picloud renders, the data folder read-only as its container mounts
 * it, against blob storage by its registry name, resolved as on a Pi through the resolver file
 * picloud mounts over the container's (the Pi's own CoreDNS, built from its module, answering the
 * name from a hosts block here instead of the registry's etcd); a second backup after more samples uploads only
 * what is new; vmrestore, with picloud's flags, rebuilds a data folder from which a fresh
 * VictoriaMetrics answers with every series.
 */
import { type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replicaIdentities } from "../components/runtime/workload";
import { GARAGE_WORKLOAD, blobEndpoint, garageWorkload } from "../components/tiers/blob/garage";
import { METRICS_BACKUP_NAME, metricsBackupDestination, renderMetricsBackupResolver, renderS3Credentials, vmbackupFlags, vmrestoreFlags } from "../components/tiers/monitoring/metricsBackup";
import { VICTORIA_METRICS_PATHS, VICTORIA_METRICS_WORKLOAD, victoriaMetricsFlags } from "../components/tiers/monitoring/victoriaMetrics";
import { dnsZone } from "../components/tiers/serviceRegistry/dns";
import { exampleStack } from "./support/exampleStacks";
import { GarageLab, GarageNode, garageKey, tail } from "./support/garageLab";
import { NetnsLab, waitFor } from "./support/netnsLab";
import { run, runAsync } from "./support/processes";
import { validator } from "./support/validators";

const PREFIX = `pct-vmb-${process.pid}-`;
const SWITCH = `${PREFIX}sw`;
const PI = `${PREFIX}pi`;
const lab = new NetnsLab("picloud-vmbackup");

const prod = exampleStack("prod");
const vm = prod.config.tiers.monitoring.victoriaMetrics!;
const backup = vm.backup!;
const blob = prod.config.tiers.blob!;
const address = new Map(prod.config.pis.map((p) => [p.name, p.address]));
const storePi = prod.plan.placement.assignments.get(VICTORIA_METRICS_WORKLOAD)![0];
const piAddress = address.get(storePi)!;
const prefixLength = Number(prod.config.network!.subnet.split("/")[1]);
// One Garage node, in the store's Pi: the backup's path through S3 is the same with one or three.
const [garageIdentity] = replicaIdentities(garageWorkload(blob, prod.config.pis), prod.plan.placement.assignments.get(GARAGE_WORKLOAD)!, (pi) => address.get(pi)!);
const node: GarageNode = { identity: { ...garageIdentity, address: piAddress, pi: storePi }, ns: PI, dir: path.join(lab.work, "garage") };
const garage = new GarageLab(lab, blob, [node]);
const KEY = garageKey(backup.key);
const endpoint = blobEndpoint(blob, [node.identity], dnsZone(prod.config.tiers.registry!, "prod"));
const destination = metricsBackupDestination(backup.bucket, "prod");
const credentialsFile = path.join(lab.work, "s3-credentials");
const resolverFile = path.join(lab.work, "resolv.conf");
const store = { url: destination, endpoint, credentialsFile };
const vmBase = `http://${piAddress}:${vm.httpPort}`;

let victoria: ChildProcess | undefined;
const vmLog = (dir: string) => path.join(lab.work, `${path.basename(dir)}.log`);

function startVictoria(dir: string): void {
    mkdirSync(dir, { recursive: true });
    victoria = lab.start(PI, vmLog(dir), [validator("victoria-metrics"), ...victoriaMetricsFlags(vm, dir)]);
}

/** curl inside the Pi. */
function curl(args: string[], input?: string) {
    return run("ip", ["netns", "exec", PI, "curl", "-sS", "--max-time", "10", ...args], input);
}

/** An instant query of `query` now, past the latency offset (see test/monitoring.victoria.test.ts). */
function query(q: string): { metric: Record<string, string>; value: [number, string] }[] {
    const r = curl(["-G", `${vmBase}${VICTORIA_METRICS_PATHS.query}`, "--data-urlencode", `query=${q}`, "--data-urlencode", `time=${(Date.now() / 1000).toFixed(3)}`, "--data-urlencode", "nocache=1"]);
    const doc = JSON.parse(r.stdout || "{}") as { status?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (doc.status !== "success") throw new Error(`${q}: ${r.stdout}${r.stderr}`);
    return doc.data!.result;
}

/** Pushes `series` (Prometheus text) as apps do; VictoriaMetrics answers 204. */
function push(text: string): void {
    const r = curl(["-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-", `${vmBase}${VICTORIA_METRICS_PATHS.prometheusImport}`], text);
    expect(r.stdout, r.stderr).toBe("204");
}

/** Waits until `q` returns `value` for series `name`. */
async function waitForValue(q: string, value: string, dir: string): Promise<void> {
    await waitFor(`${q} = ${value}`, 60_000, () => {
        try {
            const got = query(q);
            return got.length === 1 && got[0].value[1] === value ? true : JSON.stringify(got);
        } catch (e) {
            return String(e);
        }
    }, { intervalMs: 500, context: () => tail(vmLog(dir), 15) });
}

/**
 * A tool in the Pi, as its container runs it: in a mount namespace of its own, the resolver file
 * over /etc/resolv.conf, and `readOnly` remounted read-only at the same path.
 */
function tool(name: "vmbackup" | "vmrestore", flags: string[], readOnly?: string) {
    const mounts = ['mount --bind "$RESOLVER" /etc/resolv.conf', ...(readOnly === undefined ? [] : ['mount --bind "$DATA" "$DATA"', 'mount -o remount,bind,ro "$DATA"'])];
    const script = [...mounts, `exec ${validator(name)} "$@"`].join(" && ");
    return runAsync("ip", ["netns", "exec", PI, "unshare", "-m", "--propagation", "private", "bash", "-c", script, name, ...flags], undefined, { AWS_REGION: blob.region, RESOLVER: resolverFile, ...(readOnly === undefined ? {} : { DATA: readOnly }) });
}

/** What a vmbackup run logs at its end: bytes in the backup and bytes uploaded this time. */
function backedUp(stdout: string): { total: number; uploaded: number } {
    const m = /backed up (\d+) bytes .*uploaded (\d+) bytes/.exec(stdout);
    if (!m) throw new Error(`vmbackup did not report what it backed up:\n${stdout}`);
    return { total: Number(m[1]), uploaded: Number(m[2]) };
}

beforeAll(async () => {
    lab.addSwitch(SWITCH);
    lab.addHost(PI, SWITCH, "p0", `${piAddress}/${prefixLength}`);
    // The Pi's CoreDNS on its address, answering blob storage's registry name (the registry's etcd stands aside).
    const s3Name = new URL(endpoint).hostname;
    const corefile = path.join(lab.work, "Corefile");
    writeFileSync(corefile, `${s3Name.split(".").slice(2).join(".")}:53 {\n    bind ${piAddress}\n    hosts {\n        ${piAddress} ${s3Name}\n    }\n}\n`);
    lab.start(PI, path.join(lab.work, "coredns.log"), [validator("coredns"), "-conf", corefile]);
    writeFileSync(resolverFile, renderMetricsBackupResolver(piAddress));
    garage.start(node);
    const init = await garage.initStep([KEY]);
    expect(init.status, `${init.stdout}\n${init.stderr}\n${garage.logs()}`).toBe(0);
    writeFileSync(credentialsFile, renderS3Credentials(KEY.id, KEY.secret), { mode: 0o600 });
}, 180_000);

afterAll(async () => {
    await lab.stopAll();
    lab.remove();
}, 60_000);

describe("VictoriaMetrics backups into blob storage, for real", () => {
    const data = path.join(lab.work, "victoria-metrics");
    const listen = (run: string) => path.join(lab.work, `${run}.sock`);
    const now = () => Date.now();

    it("backs up from a snapshot, read-only, then only what is new, and restores every series", async () => {
        startVictoria(data);
        await waitFor("VictoriaMetrics is healthy", 60_000, () => curl([`${vmBase}/health`]).stdout === "OK", { intervalMs: 500, context: () => tail(vmLog(data)) });
        const lines = (metric: string, n: number, t: number) => Array.from({ length: n }, (_, i) => `${metric}{series="s${i}"} ${i} ${t}`).join("\n") + "\n";
        push(lines("picloud_backup_first", 200, now()));
        await waitForValue('count(picloud_backup_first)', "200", data);

        const flags = vmbackupFlags({ storagePath: data, snapshotCreateUrl: `${vmBase}/snapshot/create`, store, listen: listen("first") });
        const first = await tool("vmbackup", flags, data);
        expect(first.status, `${first.stdout}\n${first.stderr}`).toBe(0);
        const full = backedUp(first.stdout);
        expect(full.uploaded).toBeGreaterThan(0);
        // The backup is complete (vmrestore refuses one without this marker), under the stack's folder.
        const marker = garage.s3(node, KEY, `${destination.slice("s3://".length)}/backup_complete.ignore`);
        expect(marker.code, marker.body + marker.stderr).toBe(200);
        expect(destination).toBe(`s3://${backup.bucket}/prod/${METRICS_BACKUP_NAME}`);
        // Its snapshot is gone again: none pins the disk.
        expect(JSON.parse(curl([`${vmBase}/snapshot/list`]).stdout)).toEqual({ status: "ok", snapshots: [] });

        push(lines("picloud_backup_second", 50, now()));
        await waitForValue('count(picloud_backup_second)', "50", data);
        const second = await tool("vmbackup", flags.map((f) => (f.startsWith("-httpListenAddr=") ? `-httpListenAddr=unix:${listen("second")}` : f)), data);
        expect(second.status, `${second.stdout}\n${second.stderr}`).toBe(0);
        const incremental = backedUp(second.stdout);
        // Incremental: the parts already there are not sent again.
        expect(incremental.total).toBeGreaterThan(full.total);
        expect(incremental.uploaded).toBeLessThan(incremental.total);

        // vmrestore into an empty folder, VictoriaMetrics stopped, then a fresh one on it.
        await lab.stop(victoria);
        const restored = path.join(lab.work, "victoria-metrics-restored");
        mkdirSync(restored, { recursive: true });
        const restore = await tool("vmrestore", vmrestoreFlags({ storagePath: restored, store, listen: listen("restore") }));
        expect(restore.status, `${restore.stdout}\n${restore.stderr}`).toBe(0);
        startVictoria(restored);
        await waitFor("the restored VictoriaMetrics is healthy", 60_000, () => curl([`${vmBase}/health`]).stdout === "OK", { intervalMs: 500, context: () => tail(vmLog(restored)) });
        await waitForValue('count(picloud_backup_first)', "200", restored);
        await waitForValue('count(picloud_backup_second)', "50", restored);
        await waitForValue('sum(picloud_backup_first)', String((199 * 200) / 2), restored);
    }, 300_000);
});
