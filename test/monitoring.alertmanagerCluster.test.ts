import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertmanagerLab, type ClusterStatus, GROUP_WAIT_S, type Peer, WebhookRecorder, alert, exited, firstRanked, getJson, postAlerts, stop } from "./support/alertmanagerLab";
import { eventually } from "./support/eventually";
import { tempDirs } from "./support/tempDirs";

/**
 * Two real Alertmanagers (Debian's 0.25, the validators') on loopback, clustered with the flags
 * picloud gives its two monitoring replicas and loaded with the alertmanager.yml it renders, the
 * webhook pointed at a recorder here. Each Prometheus replica sends every alert to every peer, so
 * the identical alert reaches both: the cluster must notify once, and must still notify with one
 * peer gone.
 */

/**
 * How long a peer waits, per place before it in the cluster's order, for an earlier one's entry in
 * the shared notification log before it sends itself. Production keeps Alertmanager's default,
 * 15 s: it only delays the second peer's notification when the first failed to send. Shortened
 * here so that watching long enough for a duplicate takes seconds, not most of a minute.
 */
const PEER_TIMEOUT_S = 3;
/**
 * How long after the first notification to watch for a second. The second peer holds the same
 * group from (within milliseconds of) the same moment, so its duplicate would come
 * PEER_TIMEOUT_S after the first, and an unclustered peer's at once: three times that, plus a
 * margin for a busy 2-core machine, is sure to see it. No later one is due from a healthy
 * Alertmanager: the group's next group_interval tick (5 s) sends only when the group changed,
 * and repeat_interval is 4 h.
 */
const OBSERVE_MS = 3 * PEER_TIMEOUT_S * 1000 + 3000;
/**
 * Longest wait for a notification: group_wait, one peer timeout should the first peer fail, and
 * a wide margin for a busy machine.
 */
const NOTIFY_TIMEOUT_MS = (GROUP_WAIT_S + PEER_TIMEOUT_S) * 1000 + 40_000;
const tmp = tempDirs("picloud-alertmanager-cluster-");
/** The test's alerts, labelled as its own. */
const testAlert = (alertname: string, startsAt: Date) => alert(alertname, startsAt, { component: "alertmanager-cluster-test", sentBy: "test/monitoring.alertmanagerCluster.test.ts" });

describe("two Alertmanager peers, clustered as picloud runs them", () => {
    const hook = new WebhookRecorder();
    const lab = new AlertmanagerLab({ tmp, peerTimeoutS: PEER_TIMEOUT_S });
    let peers: Peer[] = [];

    beforeAll(async () => {
        await hook.listen();
        peers = await lab.startCluster(hook.url);
    }, 120_000);

    afterAll(async () => {
        await lab.killAll();
        await hook.close();
    });

    it("notifies once of an alert both Prometheus replicas send to both peers", async () => {
        const name = "PicloudClusterTestDuplicate";
        const sent = testAlert(name, new Date());
        const postedAt = performance.now();
        // Each of the two Prometheus replicas sends the alert to every peer: the identical alert, twice to each.
        await Promise.all([...peers, ...peers].map((p) => postAlerts(p, [sent])));
        // Both hold it (peers gossip silences and what was notified, not alerts): one notification is deduplication, not a lost alert.
        for (const p of peers) {
            const held = await getJson<{ labels: Record<string, string>; status: { state: string } }[]>(`${p.url}/api/v2/alerts?filter=alertname%3D%22${name}%22`);
            expect(held.map((a) => [a.labels.alertname, a.status.state]), `${p.name}'s alerts`).toEqual([[name, "active"]]);
        }
        const first = await eventually(`a firing notification of ${name}`, async () => hook.firing(name)[0], { timeoutMs: NOTIFY_TIMEOUT_MS, intervalMs: 100 });
        const latency = first.at - postedAt;
        console.log(`alertmanager cluster: ${name} notified ${(latency / 1000).toFixed(2)} s after the POST (group_wait ${GROUP_WAIT_S} s), by ${first.externalURL}`);
        // A fixed window, not a poll: it proves that nothing comes (see OBSERVE_MS).
        await new Promise((r) => setTimeout(r, OBSERVE_MS));
        expect(hook.firing(name).length, `firing notifications of ${name} within ${OBSERVE_MS} ms of the first: ${hook.describe()}`).toBe(1);
        expect(first.alerts.map((a) => [a.status, a.labels])).toEqual([["firing", sent.labels]]);
        expect(peers.map((p) => p.url)).toContain(first.externalURL);
        expect(latency).toBeGreaterThanOrEqual(GROUP_WAIT_S * 1000 - 500);
    }, 90_000);

    it("with one peer stopped, the other still notifies of an alert sent to it", async () => {
        // Stop the peer that sends first (first in the cluster's order of names), so the one left is
        // the one that otherwise defers to it.
        const { cluster } = await getJson<ClusterStatus>(`${peers[0].url}/api/v2/status`);
        expect(cluster.peers?.length, `${peers[0].name}'s cluster: ${JSON.stringify(cluster)}`).toBe(2);
        const { address: leaderAddress, peer: gone } = firstRanked({ cluster }, peers);
        expect(gone, `a peer at ${leaderAddress} among ${peers.map((p) => p.cluster).join(", ")}`).toBeDefined();
        const left = peers.find((p) => p !== gone)!;
        await stop(gone!);
        expect(exited(gone!.process)).toBe(true);
        await expect(fetch(`${gone!.url}/-/ready`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();

        const name = "PicloudClusterTestPeerDown";
        const postedAt = performance.now();
        await postAlerts(left, [testAlert(name, new Date())]);
        const n = await eventually(`a firing notification of ${name} from ${left.name}`, async () => hook.firing(name)[0], { timeoutMs: NOTIFY_TIMEOUT_MS, intervalMs: 100 });
        console.log(`alertmanager cluster: with ${gone!.name} stopped, ${name} notified ${((n.at - postedAt) / 1000).toFixed(2)} s after the POST, by ${n.externalURL}`);
        expect(n.externalURL).toBe(left.url);
        expect(n.alerts.map((a) => [a.status, a.labels.alertname])).toEqual([["firing", name]]);
    }, 90_000);
});
