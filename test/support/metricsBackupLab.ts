/**
 * VictoriaMetrics' backup on one namespaced "Pi" at the address placement gives the prod stack's
 * store: blob storage as one Garage node beside it (the backup's path through S3 is the same with
 * one or three), the key's credentials file as picloud renders it, VictoriaMetrics on picloud's
 * flags, and vmbackup and vmrestore run as their container runs them. Shared by the real test
 * (test/monitoring.vmbackup.test.ts) and the benchmark (bench/metrics-backup.ts).
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { replicaIdentities } from "../../components/runtime/workload";
import { GARAGE_WORKLOAD, garageWorkload } from "../../components/tiers/blob/garage";
import { metricsBackupDestination, renderS3Credentials } from "../../components/tiers/monitoring/metricsBackup";
import { VICTORIA_METRICS_PATHS, VICTORIA_METRICS_WORKLOAD, victoriaMetricsFlags } from "../../components/tiers/monitoring/victoriaMetrics";
import { exampleStack } from "./exampleStacks";
import { GarageLab, type GarageNode, garageKey } from "./garageLab";
import { NetnsLab, waitFor } from "./netnsLab";
import { run, runAsync } from "./processes";
import { validator } from "./validators";

export class MetricsBackupLab {
    readonly lab: NetnsLab;
    /** The Pi's namespace. */
    readonly ns: string;
    private readonly prod = exampleStack("prod");
    readonly victoriaMetrics = this.prod.config.tiers.monitoring.victoriaMetrics!;
    readonly backup = this.victoriaMetrics.backup!;
    readonly blob = this.prod.config.tiers.blob!;
    readonly registry = this.prod.config.tiers.registry!;
    /** The store's Pi's address: VictoriaMetrics, Garage and the tools all run there. */
    readonly address: string;
    readonly node: GarageNode;
    readonly garage: GarageLab;
    readonly key = garageKey(this.backup.key);
    /** Where prod's backup goes. */
    readonly destination = metricsBackupDestination(this.backup.bucket, "prod");
    readonly credentialsFile: string;
    /** VictoriaMetrics' HTTP API on the Pi. */
    readonly vmBase: string;

    constructor(
        private readonly prefix: string,
        workPrefix: string,
    ) {
        this.lab = new NetnsLab(workPrefix);
        this.ns = `${prefix}pi`;
        const address = new Map(this.prod.config.pis.map((p) => [p.name, p.address]));
        const storePi = this.prod.plan.placement.assignments.get(VICTORIA_METRICS_WORKLOAD)![0];
        this.address = address.get(storePi)!;
        const [garageIdentity] = replicaIdentities(garageWorkload(this.blob, this.prod.config.pis), this.prod.plan.placement.assignments.get(GARAGE_WORKLOAD)!, (pi) => address.get(pi)!);
        this.node = { identity: { ...garageIdentity, address: this.address, pi: storePi }, ns: this.ns, dir: path.join(this.lab.work, "garage") };
        this.garage = new GarageLab(this.lab, this.blob, [this.node]);
        this.credentialsFile = path.join(this.lab.work, "s3-credentials");
        this.vmBase = `http://${this.address}:${this.victoriaMetrics.httpPort}`;
    }

    /** The Pi on its switch, Garage started with the bucket and the key, and the key's credentials file. */
    async start(): Promise<void> {
        const prefixLength = Number(this.prod.config.network!.subnet.split("/")[1]);
        this.lab.addSwitch(`${this.prefix}sw`);
        this.lab.addHost(this.ns, `${this.prefix}sw`, "p0", `${this.address}/${prefixLength}`);
        this.garage.start(this.node);
        const init = await this.garage.initStep([this.key]);
        if (init.status !== 0) throw new Error(`Garage's init step failed:\n${init.stdout}\n${init.stderr}\n${this.garage.logs()}`);
        writeFileSync(this.credentialsFile, renderS3Credentials(this.key.id, this.key.secret), { mode: 0o600 });
    }

    /** A command inside the Pi. */
    inPi(args: string[], input?: string) {
        return run("ip", ["netns", "exec", this.ns, ...args], input);
    }

    /** VictoriaMetrics on picloud's flags with its data in `dir`, once healthy; its log is `<dir>.log`. */
    async startVictoria(dir: string): Promise<ChildProcess> {
        mkdirSync(dir, { recursive: true });
        const child = this.lab.start(this.ns, `${dir}.log`, [validator("victoria-metrics"), ...victoriaMetricsFlags(this.victoriaMetrics, dir)]);
        await waitFor("VictoriaMetrics is healthy", 60_000, () => this.inPi(["curl", "-sS", "--max-time", "2", `${this.vmBase}/health`]).stdout === "OK", { intervalMs: 500 });
        return child;
    }

    /** Prometheus text pushed as apps push it; throws unless VictoriaMetrics answers 204. */
    push(text: string): void {
        const r = this.inPi(["curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-", `${this.vmBase}${VICTORIA_METRICS_PATHS.prometheusImport}`], text);
        if (r.stdout !== "204") throw new Error(`VictoriaMetrics refused the push: ${r.stdout} ${r.stderr}`);
    }

    /** An instant query now, past the latency offset (see test/monitoring.victoria.test.ts). */
    query(q: string): { metric: Record<string, string>; value: [number, string] }[] {
        const r = this.inPi(["curl", "-sS", "--max-time", "30", "-G", `${this.vmBase}${VICTORIA_METRICS_PATHS.query}`, "--data-urlencode", `query=${q}`, "--data-urlencode", `time=${(Date.now() / 1000).toFixed(3)}`, "--data-urlencode", "nocache=1"]);
        const doc = JSON.parse(r.stdout || "{}") as { status?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
        if (doc.status !== "success") throw new Error(`${q}: ${r.stdout}${r.stderr}`);
        return doc.data!.result;
    }

    /**
     * A tool in the Pi as its container runs it: in a mount namespace of its own, `resolver` (a
     * file) bound over /etc/resolv.conf, `readOnly` (a folder) remounted read-only at its path.
     * Its exit, output and time.
     */
    async tool(name: "vmbackup" | "vmrestore", flags: string[], mounts: { readonly resolver?: string; readonly readOnly?: string } = {}) {
        const steps = [
            ...(mounts.resolver === undefined ? [] : ['mount --bind "$RESOLVER" /etc/resolv.conf']),
            ...(mounts.readOnly === undefined ? [] : ['mount --bind "$DATA" "$DATA"', 'mount -o remount,bind,ro "$DATA"']),
            `exec ${validator(name)} "$@"`,
        ];
        const env = { AWS_REGION: this.blob.region, ...(mounts.resolver === undefined ? {} : { RESOLVER: mounts.resolver }), ...(mounts.readOnly === undefined ? {} : { DATA: mounts.readOnly }) };
        const started = Date.now();
        const r = await runAsync("ip", ["netns", "exec", this.ns, "unshare", "-m", "--propagation", "private", "bash", "-c", steps.join(" && "), name, ...flags], undefined, env);
        return { ...r, ms: Date.now() - started };
    }

    async remove(): Promise<void> {
        await this.lab.stopAll();
        this.lab.remove();
    }
}

/** What a vmbackup run logs at its end: the bytes in the backup and those uploaded this time. */
export function backedUp(stdout: string): { total: number; uploaded: number } {
    const m = /backed up (\d+) bytes .*uploaded (\d+) bytes/.exec(stdout);
    if (!m) throw new Error(`vmbackup did not report what it backed up:\n${stdout}`);
    return { total: Number(m[1]), uploaded: Number(m[2]) };
}
