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
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobEndpoint } from "../components/tiers/blob/garage";
import { METRICS_BACKUP_NAME, renderMetricsBackupResolver, vmbackupFlags, vmrestoreFlags } from "../components/tiers/monitoring/metricsBackup";
import { dnsZone } from "../components/tiers/serviceRegistry/dns";
import { tail } from "./support/garageLab";
import { MetricsBackupLab, backedUp } from "./support/metricsBackupLab";
import { waitFor } from "./support/netnsLab";
import { validator } from "./support/validators";

const pi = new MetricsBackupLab(`pct-vmb-${process.pid}-`, "picloud-vmbackup");
const { lab, garage, node, key, destination, vmBase } = pi;
// Blob storage by its name in the registry's zone, as prod's key gets it.
const endpoint = blobEndpoint(pi.blob, [node.identity], dnsZone(pi.registry, "prod"));
const store = { url: destination, endpoint, credentialsFile: pi.credentialsFile };
const resolverFile = path.join(lab.work, "resolv.conf");
const mounts = (readOnly?: string) => ({ resolver: resolverFile, readOnly });

/** Waits until `q` returns `value`, VictoriaMetrics' log (`<dir>.log`) in the failure. */
async function waitForValue(q: string, value: string, dir: string): Promise<void> {
    await waitFor(`${q} = ${value}`, 60_000, () => {
        try {
            const got = pi.query(q);
            return got.length === 1 && got[0].value[1] === value ? true : JSON.stringify(got);
        } catch (e) {
            return String(e);
        }
    }, { intervalMs: 500, context: () => tail(`${dir}.log`, 15) });
}

beforeAll(async () => {
    await pi.start();
    // The Pi's CoreDNS on its address, answering blob storage's registry name (the registry's etcd stands aside).
    const s3Name = new URL(endpoint).hostname;
    const corefile = path.join(lab.work, "Corefile");
    writeFileSync(corefile, `${s3Name.split(".").slice(2).join(".")}:53 {\n    bind ${pi.address}\n    hosts {\n        ${pi.address} ${s3Name}\n    }\n}\n`);
    lab.start(pi.ns, path.join(lab.work, "coredns.log"), [validator("coredns"), "-conf", corefile]);
    writeFileSync(resolverFile, renderMetricsBackupResolver(pi.address));
}, 180_000);

afterAll(() => pi.remove(), 60_000);

describe("VictoriaMetrics backups into blob storage, for real", () => {
    const data = path.join(lab.work, "victoria-metrics");
    const listen = (run: string) => path.join(lab.work, `${run}.sock`);
    const now = () => Date.now();

    it("backs up from a snapshot, read-only, then only what is new, and restores every series", async () => {
        const victoria = await pi.startVictoria(data);
        const lines = (metric: string, n: number, t: number) => Array.from({ length: n }, (_, i) => `${metric}{series="s${i}"} ${i} ${t}`).join("\n") + "\n";
        pi.push(lines("picloud_backup_first", 200, now()));
        await waitForValue("count(picloud_backup_first)", "200", data);

        const flags = (run: string) => vmbackupFlags({ storagePath: data, snapshotCreateUrl: `${vmBase}/snapshot/create`, store, listen: listen(run) });
        const first = await pi.tool("vmbackup", flags("first"), mounts(data));
        expect(first.status, `${first.stdout}\n${first.stderr}`).toBe(0);
        const full = backedUp(first.stdout);
        expect(full.uploaded).toBeGreaterThan(0);
        // The backup is complete (vmrestore refuses one without this marker), under the stack's folder.
        const marker = garage.s3(node, key, `${destination.slice("s3://".length)}/backup_complete.ignore`);
        expect(marker.code, marker.body + marker.stderr).toBe(200);
        expect(destination).toBe(`s3://${pi.backup.bucket}/prod/${METRICS_BACKUP_NAME}`);
        // Its snapshot is gone again: none pins the disk.
        expect(JSON.parse(pi.inPi(["curl", "-sS", "--max-time", "10", `${vmBase}/snapshot/list`]).stdout)).toEqual({ status: "ok", snapshots: [] });

        pi.push(lines("picloud_backup_second", 50, now()));
        await waitForValue("count(picloud_backup_second)", "50", data);
        const second = await pi.tool("vmbackup", flags("second"), mounts(data));
        expect(second.status, `${second.stdout}\n${second.stderr}`).toBe(0);
        const incremental = backedUp(second.stdout);
        // Incremental: the parts already there are not sent again.
        expect(incremental.total).toBeGreaterThan(full.total);
        expect(incremental.uploaded).toBeLessThan(incremental.total);

        // vmrestore into an empty folder, VictoriaMetrics stopped, then a fresh one on it.
        await lab.stop(victoria);
        const restored = path.join(lab.work, "victoria-metrics-restored");
        mkdirSync(restored, { recursive: true });
        const restore = await pi.tool("vmrestore", vmrestoreFlags({ storagePath: restored, store, listen: listen("restore") }), mounts());
        expect(restore.status, `${restore.stdout}\n${restore.stderr}`).toBe(0);
        await pi.startVictoria(restored);
        await waitForValue("count(picloud_backup_first)", "200", restored);
        await waitForValue("count(picloud_backup_second)", "50", restored);
        await waitForValue("sum(picloud_backup_first)", String((199 * 200) / 2), restored);
    }, 300_000);
});
