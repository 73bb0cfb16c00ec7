// Alertmanager failover: how long from an alert's arrival until its notification reaches a webhook,
// through two real Alertmanagers (the validators', Debian's 0.25) clustered on loopback with the
// flags picloud gives its two monitoring replicas (alertmanagerClusterFlags) and loaded with the
// alertmanager.yml it renders at its defaults, at the production peer timeout: no
// --cluster.peer-timeout is passed, so Alertmanager's default, 15 s, holds, as picloud keeps it.
// Each round starts a fresh cluster (both peers ready and seeing both members) and times, from the
// POST of a new critical alert to its first firing notification:
//   healthy       the alert POSTed to both peers; then counts the notifications of it in the 20 s
//                 after the first (1 is right: the second peer finds the first's in the shared
//                 notification log once its 15 s are up).
//   sender lost   the first-ranked peer (the one that sends) SIGKILLed, as a Pi that dies at once,
//                 with no graceful leave; at once a new alert POSTed to the survivor only (the dead
//                 Pi's Prometheus would still reach it). The survivor is second in the cluster's
//                 order, so unless its memberlist has declared the dead peer failed by the time the
//                 group is flushed (after group_wait) it also waits 15 s × its position.
//   other lost    on a second fresh cluster, the second-ranked peer SIGKILLed and an alert POSTed
//                 to the first-ranked one: group_wait alone.
// Prints each round, the min/median/max per case, the Alertmanager version and the flags used.
// Needs root and the validators (bash test/support/install-validators.sh).
// Run: npx tsx bench/alertmanager-failover.ts [rounds]   (default 3; or $AM_FAILOVER_ROUNDS)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AlertmanagerLab, type ClusterStatus, GROUP_WAIT_S, type Notification, type Peer, WebhookRecorder, alert, alertmanagerVersion, firstRanked, getJson, kill, postAlerts } from "../test/support/alertmanagerLab";
import { eventually } from "../test/support/eventually";
import { median } from "./syntheticStack";

const ROUNDS = Number(process.argv[2] ?? process.env.AM_FAILOVER_ROUNDS ?? 3);
/** Alertmanager's default --cluster.peer-timeout, which picloud keeps (the bench passes none). */
const PEER_TIMEOUT_S = 15;
/** How long after a healthy cluster's first notification to count further ones. */
const OBSERVE_MS = 20_000;
/** Longest wait for a notification: group_wait, one peer timeout, and a wide margin for a busy machine. */
const NOTIFY_TIMEOUT_MS = (GROUP_WAIT_S + PEER_TIMEOUT_S) * 1000 + 40_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const benchAlert = (alertname: string) => alert(alertname, new Date(), { component: "alertmanager-failover-bench", sentBy: "bench/alertmanager-failover.ts" });

// ---- peers and temp dirs, cleaned up however the bench ends ----

const work = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-bench-am-failover-"));
const lab = new AlertmanagerLab({ tmp: () => fs.mkdtempSync(path.join(work, "d-")) });
process.on("exit", () => {
    lab.killAllSync();
    fs.rmSync(work, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

/** The cluster's two peers, the one that sends first and the one that defers to it, as the first peer sees them. */
async function ranked(peers: readonly Peer[]): Promise<{ first: Peer; second: Peer }> {
    const status = await getJson<ClusterStatus>(`${peers[0].url}/api/v2/status`);
    const { address, peer } = firstRanked(status, peers);
    if ((status.cluster.peers?.length ?? 0) !== 2 || !peer) throw new Error(`${peers[0].name} sees ${JSON.stringify(status.cluster.peers)}: no first-ranked peer at ${address} among ${peers.map((p) => p.cluster).join(", ")}`);
    return { first: peer, second: peers.find((p) => p !== peer)! };
}

/** The first firing notification of `alertname`, once it arrives. */
function notified(hook: WebhookRecorder, alertname: string): Promise<Notification> {
    return eventually(`a firing notification of ${alertname}`, async () => hook.firing(alertname)[0], { timeoutMs: NOTIFY_TIMEOUT_MS, intervalMs: 50 });
}

/** Polls `peer`'s members every 100 ms until it sees only itself; when, on the monotonic clock, or undefined if not by `until`. */
async function droppedAt(peer: Peer, until: Promise<unknown>): Promise<number | undefined> {
    let done = false;
    void until.finally(() => (done = true));
    while (!done) {
        try {
            const { cluster } = await getJson<ClusterStatus>(`${peer.url}/api/v2/status`);
            if ((cluster.peers?.length ?? 0) <= 1) return performance.now();
        } catch {
            // A busy machine's slow answer: ask again.
        }
        await sleep(100);
    }
    return undefined;
}

interface Round {
    healthy: number;
    healthyCount: number;
    healthyBy: string;
    senderLost: number;
    /** When the survivor's memberlist dropped the dead peer, from the kill; undefined if not before the notification. */
    senderLostDropped: number | undefined;
    otherLost: number;
    /** The first peer's arguments (its ports this round's). */
    args: readonly string[];
}

async function round(hook: WebhookRecorder, n: number): Promise<Round> {
    // ---- healthy, then sender lost, on one cluster ----
    let peers = await lab.startCluster(hook.url);
    const args = peers[0].args;
    let { first, second } = await ranked(peers);
    const healthyName = `PicloudFailoverHealthyR${n}`;
    let postedAt = performance.now();
    await Promise.all(peers.map((p) => postAlerts(p, [benchAlert(healthyName)])));
    const h = await notified(hook, healthyName);
    await sleep(OBSERVE_MS);
    const healthyCount = hook.firing(healthyName).filter((x) => x.at - h.at <= OBSERVE_MS).length;
    const healthy = h.at - postedAt;
    const healthyBy = h.externalURL === first.url ? "first-ranked" : "SECOND-ranked";

    const killedAt = performance.now();
    await kill(first);
    const lostName = `PicloudFailoverSenderLostR${n}`;
    postedAt = performance.now();
    await postAlerts(second, [benchAlert(lostName)]);
    const lost = notified(hook, lostName);
    const [l, dropped] = await Promise.all([lost, droppedAt(second, lost)]);
    if (l.externalURL !== second.url) throw new Error(`${lostName} notified by ${l.externalURL}, not the survivor ${second.url}`);
    await lab.killAll();

    // ---- other lost, on a fresh cluster ----
    peers = await lab.startCluster(hook.url);
    ({ first, second } = await ranked(peers));
    await kill(second);
    const otherName = `PicloudFailoverOtherLostR${n}`;
    const otherPostedAt = performance.now();
    await postAlerts(first, [benchAlert(otherName)]);
    const o = await notified(hook, otherName);
    await lab.killAll();

    return { healthy, healthyCount, healthyBy, senderLost: l.at - postedAt, senderLostDropped: dropped === undefined ? undefined : dropped - killedAt, otherLost: o.at - otherPostedAt, args };
}

async function main(): Promise<void> {
    const hook = new WebhookRecorder();
    await hook.listen();
    try {
        console.log(`alertmanager failover: ${alertmanagerVersion()}`);
        console.log(`  two peers on loopback, picloud's alertmanager.yml (critical route: group_wait ${GROUP_WAIT_S} s), peer-timeout ${PEER_TIMEOUT_S} s (Alertmanager's default; no --cluster.peer-timeout), ${ROUNDS} rounds`);
        const rounds: Round[] = [];
        for (let n = 1; n <= ROUNDS; n++) {
            const r = await round(hook, n);
            rounds.push(r);
            if (n === 1) console.log(`  flags of a peer: ${r.args.join(" ")}`);
            const drop = r.senderLostDropped === undefined ? "survivor still listed the dead peer when it notified" : `survivor dropped the dead peer ${s(r.senderLostDropped)} after the kill`;
            console.log(`  round ${n}: healthy ${s(r.healthy)} (by the ${r.healthyBy} peer, ${r.healthyCount} notification(s) in ${OBSERVE_MS / 1000} s); sender lost ${s(r.senderLost)} (${drop}); other lost ${s(r.otherLost)}`);
        }
        const summary = (what: string, xs: number[]) => console.log(`  ${what.padEnd(12)} min ${s(Math.min(...xs))}, median ${s(median(xs))}, max ${s(Math.max(...xs))}`);
        console.log("POST -> first firing notification:");
        summary("healthy", rounds.map((r) => r.healthy));
        summary("sender lost", rounds.map((r) => r.senderLost));
        summary("other lost", rounds.map((r) => r.otherLost));
        const counts = rounds.map((r) => r.healthyCount);
        console.log(`  healthy: notifications per alert within ${OBSERVE_MS / 1000} s of the first: ${counts.join(", ")} (1 expected)`);
        console.log(
            `  sender lost includes group_wait (${GROUP_WAIT_S} s) and, unless the survivor's memberlist has declared the dead peer failed by the flush, ` +
                `its position wait (peer-timeout ${PEER_TIMEOUT_S} s × position 1): about ${GROUP_WAIT_S} s or ${GROUP_WAIT_S + PEER_TIMEOUT_S} s.`,
        );
    } finally {
        await lab.killAll();
        await hook.close();
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
