// VictoriaMetrics' backup into blob storage: how long vmbackup takes and how much it uploads, the
// first time and the next, and how long vmrestore takes to rebuild the data folder. VictoriaMetrics,
// vmbackup and vmrestore are the validators' (built from VictoriaMetrics' Go module at the image's
// version), Garage the validators' too, one node, all in one network namespace at the prod stack's
// store's address (test/support/metricsBackupLab.ts, as the real test has them); the tools run with the flags and credentials file picloud renders
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
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { vmbackupFlags, vmrestoreFlags } from "../components/tiers/monitoring/metricsBackup";
import { MetricsBackupLab, backedUp } from "../test/support/metricsBackupLab";
import { waitFor } from "../test/support/netnsLab";
import { validator } from "../test/support/validators";

const SERIES = Number(process.argv[2] ?? 50_000);
const SAMPLES = Number(process.argv[3] ?? 240);
const pi = new MetricsBackupLab(`pcb-vmb-${process.pid}-`, "picloud-bench-vmbackup");
const work = pi.lab.work;
const store = { url: pi.destination, endpoint: `http://${pi.address}:${pi.blob.s3Port}`, credentialsFile: pi.credentialsFile };

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
        pi.push(`${lines.join("\n")}\n`);
    }
}

/** Waits until VictoriaMetrics finds `n` series. */
async function series(n: number, what: string): Promise<void> {
    const count = () => Number(pi.query("count(last_over_time(bench_metric[1d]))")[0]?.value[1] ?? 0);
    await waitFor(what, 120_000, () => count() === n || String(count()), { intervalMs: 1000 });
}

/** A tool's run, failing the benchmark when it fails; its time and, for vmbackup, what it uploaded. */
async function tool(name: "vmbackup" | "vmrestore", flags: string[], readOnly?: string) {
    const r = await pi.tool(name, flags, { readOnly });
    if (r.status !== 0) throw new Error(`${name} failed:\n${r.stdout}\n${r.stderr}`);
    return { ms: r.ms, ...(name === "vmbackup" ? backedUp(r.stdout) : { total: 0, uploaded: 0 }) };
}

async function main(): Promise<void> {
    await pi.start();
    const data = path.join(work, "victoria-metrics");
    const victoria = await pi.startVictoria(data);
    const now = Date.now();
    const more = Math.max(1, Math.round(SAMPLES / 5));
    push(0, SERIES, SAMPLES, now - more * 60_000);
    await series(SERIES, `${SERIES} series`);
    const flags = (sock: string) => vmbackupFlags({ storagePath: data, snapshotCreateUrl: `${pi.vmBase}/snapshot/create`, store, listen: path.join(work, sock) });
    const first = await tool("vmbackup", flags("first.sock"), data);
    const firstSize = du(data);

    const added = Math.round(SERIES / 10);
    push(0, SERIES, more, now);
    push(SERIES, added, more, now);
    await series(SERIES + added, `${SERIES + added} series`);
    const second = await tool("vmbackup", flags("second.sock"), data);
    const secondSize = du(data);
    await pi.lab.stop(victoria);

    const restored = path.join(work, "restored");
    mkdirSync(restored, { recursive: true });
    const restore = await tool("vmrestore", vmrestoreFlags({ storagePath: restored, store, listen: path.join(work, "restore.sock") }));
    const restoredSize = du(restored);
    await pi.startVictoria(restored);
    await series(SERIES + added, `${SERIES + added} series after the restore`);

    const version = spawnSync(validator("victoria-metrics"), ["-version"], { encoding: "utf8" }).stdout.trim();
    console.log(`${version}, its vmbackup and vmrestore, into one Garage node in the same namespace`);
    console.log(`first backup:  ${SERIES} series x ${SAMPLES} samples (data folder ${mb(firstSize)}): ${seconds(first.ms)}, uploaded ${mb(first.uploaded)} of ${mb(first.total)}`);
    console.log(`second backup: + ${more} samples per series and ${added} new series (data folder ${mb(secondSize)}): ${seconds(second.ms)}, uploaded ${mb(second.uploaded)} of ${mb(second.total)} (${((100 * second.uploaded) / second.total).toFixed(0)}%)`);
    console.log(`restore:       ${mb(restoredSize)} into an empty folder: ${seconds(restore.ms)}; every one of the ${SERIES + added} series back`);
}

main()
    .catch((e) => {
        console.error(e instanceof Error ? e.message : e);
        process.exitCode = 1;
    })
    .finally(() => pi.remove());
