import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { LIVENESS } from "../../components/monitoring/contract";
import { renderAlertmanagerConfig } from "../../components/monitoring/renderers";
import { monitoringSchema } from "../../components/tiers/monitoring/config";
import { alertmanagerClusterFlags, alertmanagerConfigInput } from "../../components/tiers/monitoring/specs";
import { eventually } from "./eventually";
import { validator } from "./validators";

/**
 * Real Alertmanagers (Debian's 0.25, the validators') on loopback, clustered with the flags picloud
 * gives its monitoring replicas and loaded with the alertmanager.yml it renders, the webhook
 * pointed at a recorder in the calling process: what the cluster test and the failover bench run.
 * It imports nothing of vitest, so a bench can use it as it is.
 */

/** The critical route's group_wait, as picloud renders it: when a new group's first notification is due. */
export const GROUP_WAIT_S = Number(/^(\d+)s$/.exec(LIVENESS.criticalGroupWait)![1]);
/** Debian's Alertmanager reads its notification templates from this folder, compiled in; install-validators.sh puts them there. */
export const ALERTMANAGER_TEMPLATES = "/usr/share/prometheus/alertmanager/email.tmpl";

/** One webhook POST, as Alertmanager 0.25 sends it. */
export interface Notification {
    /** When it arrived, on the monotonic clock (ms). */
    readonly at: number;
    readonly status: string;
    /** The sending peer's --web.external-url. */
    readonly externalURL: string;
    readonly groupLabels: Record<string, string>;
    readonly alerts: readonly { status: string; labels: Record<string, string> }[];
}

export interface Peer {
    readonly name: string;
    /** Its API, http://127.0.0.1:<port>. */
    readonly url: string;
    /** host:port of its cluster listener, as its peers reach it. */
    readonly cluster: string;
    readonly log: string;
    /** The arguments it was started with. */
    readonly args: readonly string[];
    readonly process: ChildProcess;
}

export interface ClusterStatus {
    cluster: { name: string; status: string; peers: { name: string; address: string }[] | null };
}

export const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

export function tail(file: string, lines = 20): string {
    try {
        return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
        return "(no log)";
    }
}

const listen = (server: http.Server) => new Promise<number>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));

/** A TCP port free on 127.0.0.1 right now, the kernel's pick. */
export async function freePort(): Promise<number> {
    const s = http.createServer();
    const port = await listen(s);
    await new Promise((r) => s.close(r));
    return port;
}

export async function getJson<T>(url: string): Promise<T> {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
    return (await r.json()) as T;
}

/** The first line of `alertmanager --version`, e.g. "alertmanager, version 0.25.0 (branch: debian/sid, …)". */
export function alertmanagerVersion(): string {
    const r = spawnSync(validator("alertmanager"), ["--version"], { encoding: "utf8" });
    return `${r.stdout}${r.stderr}`.split("\n")[0].trim();
}

/**
 * An alert as a Prometheus replica sends it to Alertmanager's API v2, critical (so on the route
 * whose group_wait is {@link GROUP_WAIT_S}); `component` and `sentBy` say which test or bench sent it.
 */
export function alert(alertname: string, startsAt: Date, origin: { component: string; sentBy: string }) {
    return {
        labels: { alertname, severity: "critical", component: origin.component },
        annotations: { summary: `${alertname} fired`, description: `Sent by ${origin.sentBy}.` },
        startsAt: startsAt.toISOString(),
        // Prometheus sets endsAt a few evaluation intervals ahead and resends while the alert holds.
        endsAt: new Date(startsAt.getTime() + 10 * 60_000).toISOString(),
        generatorURL: "http://127.0.0.1:9090/graph",
    };
}

/** POSTs `alerts` to the peer's /api/v2/alerts; throws with the answer unless it is accepted. */
export async function postAlerts(peer: Peer, alerts: unknown[]): Promise<void> {
    const r = await fetch(`${peer.url}/api/v2/alerts`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(alerts), signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`POST ${peer.url}/api/v2/alerts: HTTP ${r.status}: ${await r.text()}`);
}

/** Stops a peer with SIGTERM and waits until its process is gone. */
export async function stop(peer: Peer, timeoutMs = 20_000): Promise<void> {
    if (exited(peer.process)) return;
    const gone = new Promise<void>((resolve) => peer.process.once("exit", () => resolve()));
    peer.process.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${peer.name} still runs ${timeoutMs} ms after SIGTERM:\n${tail(peer.log)}`)), timeoutMs)))]);
    clearTimeout(timer);
}

/** Kills a peer with SIGKILL, as a Pi that dies at once (no graceful leave from the cluster), and waits until its process is gone. */
export async function kill(peer: Peer): Promise<void> {
    if (exited(peer.process)) return;
    const gone = new Promise<void>((resolve) => peer.process.once("exit", () => resolve()));
    peer.process.kill("SIGKILL");
    await gone;
}

/**
 * The peer that sends first: Alertmanager orders a cluster's members by name (memberlist's, random
 * per start) and each waits its position × peer-timeout before sending. `status` is one peer's
 * /api/v2/status; the first member's cluster address, and the one of `peers` listening there
 * (undefined when none is).
 */
export function firstRanked(status: ClusterStatus, peers: readonly Peer[]): { address: string | undefined; peer: Peer | undefined } {
    const members = status.cluster.peers ?? [];
    const firstName = members.map((p) => p.name).sort()[0];
    const address = members.find((p) => p.name === firstName)?.address;
    return { address, peer: peers.find((p) => p.cluster === address) };
}

/** Records the webhook POSTs Alertmanager sends, on a port of 127.0.0.1 of the kernel's pick. */
export class WebhookRecorder {
    readonly notifications: Notification[] = [];
    private readonly server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            res.end();
            if (req.method === "POST") this.notifications.push({ ...(JSON.parse(body) as Omit<Notification, "at">), at: performance.now() });
        });
    });

    async listen(): Promise<void> {
        await listen(this.server);
    }

    /** Where Alertmanager should send: http://127.0.0.1:<port>/hook. */
    get url(): string {
        return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    }

    /** The firing notifications of the group of `alertname`. */
    firing(alertname: string): Notification[] {
        return this.notifications.filter((n) => n.status === "firing" && n.groupLabels.alertname === alertname);
    }

    /** Every notification so far, one clause each, timed from the first. */
    describe(): string {
        const n0 = this.notifications[0];
        return this.notifications.map((n) => `${n.status} ${n.groupLabels.alertname} from ${n.externalURL} at +${((n.at - n0.at) / 1000).toFixed(2)} s`).join("; ") || "none";
    }

    close(): Promise<void> {
        return new Promise((r) => this.server.close(() => r()));
    }
}

/**
 * Starts clusters of two Alertmanagers and remembers every peer it started, so that whoever uses
 * it can kill what is left however it ends ({@link killAll}, or {@link killAllSync} from an exit
 * handler). `tmp` makes a fresh folder (one for the config, one per peer); `peerTimeoutS`, when
 * given, is passed as --cluster.peer-timeout, otherwise Alertmanager's default (15 s) holds, as in
 * production; `extraArgs`, when given, are passed to every peer after the others (e.g.
 * --log.level=debug).
 */
export class AlertmanagerLab {
    /** Every peer started and not yet killed by {@link killAll}. */
    readonly peers: Peer[] = [];

    constructor(private readonly opts: { tmp: () => string; peerTimeoutS?: number; extraArgs?: readonly string[] }) {}

    /** Starts both peers, each told of the other, on fresh ports; throws with the logs when either does not come up. */
    private async startPeers(webhookUrl: string, started: Peer[]): Promise<void> {
        const configFile = path.join(this.opts.tmp(), "alertmanager.yml");
        const options = monitoringSchema.parse({ alerting: { webhookUrls: [webhookUrl] } });
        fs.writeFileSync(configFile, renderAlertmanagerConfig(alertmanagerConfigInput(options)));
        const web = [await freePort(), await freePort()];
        const cluster = [await freePort(), await freePort()].map((p) => `127.0.0.1:${p}`);
        for (const i of [0, 1]) {
            const dir = this.opts.tmp();
            const log = path.join(dir, "alertmanager.log");
            const out = fs.openSync(log, "w");
            const url = `http://127.0.0.1:${web[i]}`;
            const args = [
                `--config.file=${configFile}`,
                `--storage.path=${path.join(dir, "data")}`,
                `--web.listen-address=127.0.0.1:${web[i]}`,
                // Names the sender in each notification's externalURL.
                `--web.external-url=${url}`,
                ...alertmanagerClusterFlags(cluster[i], cluster, cluster[i]),
                ...(this.opts.peerTimeoutS === undefined ? [] : [`--cluster.peer-timeout=${this.opts.peerTimeoutS}s`]),
                ...(this.opts.extraArgs ?? []),
            ];
            const child = spawn(validator("alertmanager"), args, { stdio: ["ignore", out, out] });
            fs.closeSync(out);
            const peer: Peer = { name: `peer ${i} (${url}, cluster ${cluster[i]})`, url, cluster: cluster[i], log, args, process: child };
            started.push(peer);
            this.peers.push(peer);
        }
        for (const p of started) {
            await eventually(`${p.name} ready`, async () => {
                if (exited(p.process)) return `exited ${p.process.exitCode ?? p.process.signalCode}`;
                return (await fetch(`${p.url}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok ? "ready" : undefined;
            }, { timeoutMs: 30_000, intervalMs: 200 }).then((state) => {
                if (state !== "ready") throw new Error(`${p.name} ${state}:\n${tail(p.log)}`);
            });
        }
    }

    /**
     * A fresh two-peer cluster notifying `webhookUrl`: both peers up, each seeing both members
     * and reporting its cluster ready (a peer sends nothing before it settled).
     */
    async startCluster(webhookUrl: string): Promise<Peer[]> {
        if (!fs.existsSync(ALERTMANAGER_TEMPLATES)) throw new Error(`${ALERTMANAGER_TEMPLATES} is missing: Debian's Alertmanager cannot start without it; run bash test/support/install-validators.sh`);
        let peers: Peer[] = [];
        // Ports are picked free and then bound by Alertmanager: another process may take one between; then start over.
        for (let attempt = 1; ; attempt++) {
            try {
                await this.startPeers(webhookUrl, peers);
                break;
            } catch (e) {
                const inUse = peers.some((p) => /address already in use/.test(tail(p.log)));
                await Promise.all(peers.map((p) => stop(p)));
                peers = [];
                if (attempt >= 3 || !inUse) throw e;
            }
        }
        await clusterReady(peers);
        return peers;
    }

    /** Kills every peer still running and waits until they are gone. */
    async killAll(): Promise<void> {
        const peers = this.peers.splice(0);
        for (const p of peers) if (!exited(p.process)) p.process.kill("SIGKILL");
        await Promise.all(peers.filter((p) => !exited(p.process)).map((p) => new Promise((r) => p.process.once("exit", r))));
    }

    /** Sends SIGKILL to every peer still running, without waiting: for a process "exit" handler. */
    killAllSync(): void {
        for (const p of this.peers) if (!exited(p.process)) p.process.kill("SIGKILL");
    }
}

/** Waits until each of `peers` sees all of them and reports its cluster ready. */
export async function clusterReady(peers: readonly Peer[]): Promise<void> {
    // All must know each other, and have settled (a peer sends nothing before), before an alert is sent.
    for (const p of peers) {
        await eventually(`${p.name} to see both peers and report its cluster ready`, async () => {
            const { cluster } = await getJson<ClusterStatus>(`${p.url}/api/v2/status`);
            if ((cluster.peers?.length ?? 0) === peers.length && cluster.status === "ready") return true;
            throw new Error(`cluster status ${cluster.status}, peers ${JSON.stringify(cluster.peers)}`);
        }, { timeoutMs: 75_000, intervalMs: 250 });
    }
}
