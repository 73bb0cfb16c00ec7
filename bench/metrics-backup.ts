// VictoriaMetrics' backup into blob storage: how long vmbackup takes and how much it uploads, the
// first time and the next, and how long vmrestore takes to rebuild the data folder. VictoriaMetrics,
// vmbackup and vmrestore are the validators' (built from VictoriaMetrics' Go module at the image's
// version), Garage the validators' too, one node, all in one network namespace at the prod stack's
// addresses; the tools run with the flags and credentials file picloud renders
// (components/tiers/monitoring/metricsBackup.ts), the data folder read-only for vmbackup as its
// container mounts it. Blob storage is reached by address here: name resolution is the real test's
// (test/monitoring.vmbackup.test.ts).
// The data: SERIES series of SAMPLES samples each, one a minute, random values with a decimal
// (which compress about as badly as real gauges), pushed as Prometheus text; then,
// as a night's growth, SAMPLES / 5 more samples of each series and SERIES / 10 new series; backed
// up after each. Prints each step's time and bytes, and the data folder's size.
// Needs root and the validators (bash test/support/install-validators.sh).
// Run: npx tsx bench/metrics-backup.ts [series] [samples]   (default 50000 and 240: 12 million samples)
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { replicaIdentities } from "../components/runtime/workload";
import { GARAGE_WORKLOAD, garageWorkload } from "../components/tiers/blob/garage";
import { metricsBackupDestination, renderS3Credentials, vmbackupFlags, vmrestoreFlags } from "../components/tiers/monitoring/metricsBackup";
import { VICTORIA_METRICS_PATHS, VICTORIA_METRICS_WORKLOAD, victoriaMetricsFlags } from "../components/tiers/monitoring/victoriaMetrics";
import { exampleStack } from "../test/support/exampleStacks";
import { GarageLab, type GarageNode, garageKey } from "../test/support/garageLab";
import { NetnsLab, waitFor } from "../test/support/netnsLab";
import { run, runAsync } from "../test/support/processes";
import { validator } from "../test/support/validators";

const SERIES = Number(process.argv[2] ?? 50_000);
const SAMPLES = Number(process.argv[3] ?? 240);
const PREFIX = `pcb-vmb-${process.pid}-`;
const PI = `${PREFIX}pi`;
const lab = new NetnsLab("picloud-bench-vmbackup");

const prod = exampleStack("prod");
const vm = prod.config.tiers.monitoring.victoriaMetrics!;
const backup = vm.backup!;
const blob = prod.config.tiers.blob!;
const address = new Map(prod.config.pis.map((p) => [p.name, p.address]));
const piAddress = address.get(prod.plan.placement.assignments.get(VICTORIA_METRICS_WORKLOAD)![0])!;
const prefixLength = Number(prod.config.network!.subnet.split("/")[1]);
const [garageIdentity] = replicaIdentities(garageWorkload(blob, prod.config.pis), prod.plan.placement.assignments.get(GARAGE_WORKLOAD)!, (pi) => address.get(pi)!);
const node: GarageNode = { identity: { ...garageIdentity, address: piAddress }, ns: PI, dir: path.join(lab.work, "garage") };
const garage = new GarageLab(lab, blob, [node]);
const KEY = garageKey(backup.key);
const store = { url: metricsBackupDestination(backup.bucket, "prod"), endpoint: `http://${piAddress}:${blob.s3Port}`, credentialsFile: path.join(lab.work, "s3-credentials") };
const vmBase = `http://${piAddress}:${vm.httpPort}`;

const inPi = (args: string[], input?: string) => run("ip", ["netns", "exec", PI, ...args], input);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const du = (dir: string) => Number(spawnSync("du", ["-sb", dir], { encoding: "utf8" }).stdout.split("\t")[0]);

/** Pushes `series` series from `first`, `samples` samples each, a minute apart, ending `endMs`; in parts, as apps push. */
function push(first: number, series: number, samples: number, endMs: number): void {
    for (let s = first; s < first + series; s += 2000) {
        const lines: string[] = [];
        for (let i = s; i < Math.min(s + 2000, first + series); i++) {
            for (let k = samples - 1; k >= 0; k--) lines.push(`bench_metric{series="s${i}"} ${(Math.random() * 1000).toFixed(1)} ${endMs - k * 60_000}`);
        }
        const r = inPi(["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-", `${vmBase}${VICTORIA_METRICS_PATHS.prometheusImport}`], `${lines.join("\n")}\n`);
        if (r.stdout !== "204") throw new Error(`import: ${r.stdout} ${r.stderr}`);
    }
}

/** The number of series VictoriaMetrics finds now. */
function count(): number {
    const r = inPi(["curl", "-sS", "--max-time", "30", "-G", `${vmBase}${VICTORIA_METRICS_PATHS.query}`, "--data-urlencode", "query=count(last_over_time(bench_metric[1d]))", "--data-urlencode", `time=${(Date.now() / 1000).toFixed(3)}`, "--data-urlencode", "nocache=1"]);
    const doc = JSON.parse(r.stdout || "{}") as { data?: { result: { value: [number, string] }[] } };
    return Number(doc.data?.result[0]?.value[1] ?? 0);
}

/** Runs a tool as its container does (its own mount namespace, `readOnly` read-only); its time, and what vmbackup says it backed up and uploaded. */
async function tool(name: "vmbackup" | "vmrestore", flags: string[], readOnly?: string) {
    const script = [...(readOnly === undefined ? [] : ['mount --bind "$DATA" "$DATA"', 'mount -o remount,bind,ro "$DATA"']), `exec ${validator(name)} "$@"`].join(" && ");
    const started = Date.now();
    const r = await runAsync("ip", ["netns", "exec", PI, "unshare", "-m", "--propagation", "private", "bash", "-c", script, name, ...flags], undefined, { AWS_REGION: blob.region, ...(readOnly === undefined ? {} : { DATA: readOnly }) });
    const ms = Date.now() - started;
    if (r.status !== 0) throw new Error(`${name} failed:\n${r.stdout}\n${r.stderr}`);
    const m = /backed up (\d+) bytes .*uploaded (\d+) bytes/.exec(r.stdout);
    return { ms, total: m ? Number(m[1]) : 0, uploaded: m ? Number(m[2]) : 0 };
}

async function startVictoria(dir: string) {
    mkdirSync(dir, { recursive: true });
    const child = lab.start(PI, `${dir}.log`, [validator("victoria-metrics"), ...victoriaMetricsFlags(vm, dir)]);
    await waitFor("VictoriaMetrics is healthy", 60_000, () => inPi(["curl", "-sS", "--max-time", "2", `${vmBase}/health`]).stdout === "OK", { intervalMs: 500 });
    return child;
}

async function main(): Promise<void> {
    lab.addSwitch(`${PREFIX}sw`);
    lab.addHost(PI, `${PREFIX}sw`, "p0", `${piAddress}/${prefixLength}`);
    garage.start(node);
    const init = await garage.initStep([KEY]);
    if (init.status !== 0) throw new Error(`garage init: ${init.stdout}\n${init.stderr}`);
    writeFileSync(store.credentialsFile, renderS3Credentials(KEY.id, KEY.secret), { mode: 0o600 });

    const data = path.join(lab.work, "victoria-metrics");
    const victoria = await startVictoria(data);
    const now = Date.now();
    const more = Math.max(1, Math.round(SAMPLES / 5));
    push(0, SERIES, SAMPLES, now - more * 60_000);
    await waitFor(`${SERIES} series`, 120_000, () => count() === SERIES || String(count()), { intervalMs: 1000 });
    const flags = (sock: string) => vmbackupFlags({ storagePath: data, snapshotCreateUrl: `${vmBase}/snapshot/create`, store, listen: path.join(lab.work, sock) });
    const first = await tool("vmbackup", flags("first.sock"), data);
    const firstSize = du(data);

    push(0, SERIES, more, now);
    push(SERIES, Math.round(SERIES / 10), more, now);
    const total = SERIES + Math.round(SERIES / 10);
    await waitFor(`${total} series`, 120_000, () => count() === total || String(count()), { intervalMs: 1000 });
    const second = await tool("vmbackup", flags("second.sock"), data);
    const secondSize = du(data);
    await lab.stop(victoria);

    const restored = path.join(lab.work, "restored");
    mkdirSync(restored, { recursive: true });
    const restore = await tool("vmrestore", vmrestoreFlags({ storagePath: restored, store, listen: path.join(lab.work, "restore.sock") }));
    const restoredSize = du(restored);
    const restoredVictoria = await startVictoria(restored);
    await waitFor(`${total} series after the restore`, 120_000, () => count() === total || String(count()), { intervalMs: 1000 });
    await lab.stop(restoredVictoria);

    const version = spawnSync(validator("victoria-metrics"), ["-version"], { encoding: "utf8" }).stdout.trim();
    console.log(`${version}, its vmbackup and vmrestore, into one Garage node in the same namespace`);
    console.log(`first backup:  ${SERIES} series x ${SAMPLES} samples (data folder ${mb(firstSize)}): ${seconds(first.ms)}, uploaded ${mb(first.uploaded)} of ${mb(first.total)}`);
    console.log(`second backup: + ${more} samples per series and ${total - SERIES} new series (data folder ${mb(secondSize)}): ${seconds(second.ms)}, uploaded ${mb(second.uploaded)} of ${mb(second.total)} (${((100 * second.uploaded) / second.total).toFixed(0)}%)`);
    console.log(`restore:       ${mb(restoredSize)} into an empty folder: ${seconds(restore.ms)}; every one of the ${total} series back`);
}

main()
    .catch((e) => {
        console.error(e instanceof Error ? e.message : e);
        process.exitCode = 1;
    })
    .finally(async () => {
        await lab.stopAll();
        lab.remove();
    });
