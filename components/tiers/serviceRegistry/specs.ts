/**
 * The service registry's declaration, pure: etcd's members and their flags, its monitoring, its
 * flows and its backups. The component (`serviceRegistry.ts`) deploys what this declares.
 */
import type { PiConfig } from "../../config/schema";
import type { RegistryConfig } from "./config";
import { MonitoringSpec, backupAgeRule, targetDownRule } from "../../monitoring/contract";
import type { Flow } from "../../network/flows";
import { majority } from "../../placement/place";
import type { ReplicaIdentity, Workload } from "../../runtime/workload";
import { dnsSpecParts } from "./dns";

/** etcd 3.5, multi-arch (arm64), pinned by digest. */
export const ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.17@sha256:a055da833a7c013b836ed0822e8ec1f99b059658be255ad8d0fcd31b635ae3d6";

export const ETCD_WORKLOAD = "etcd";
const KEY = "picloud:tiers.registry";
/** Where each member's data folder is mounted in its container. */
export const ETCD_DATA_IN_CONTAINER = "/var/lib/etcd";
/** The Prometheus job of the members. */
export const ETCD_JOB = "registry-etcd";

/** Members: three where three Pis may carry one (SSD Pis, unless SD cards are allowed), else one. */
export function etcdMembers(options: RegistryConfig, pis: readonly PiConfig[]): number {
    const eligible = pis.filter((p) => options.allowSdCard || p.storage === "ssd").length;
    return eligible >= 3 ? 3 : 1;
}

/**
 * One member's flags: its name and URLs from its identity, the initial cluster from its peers.
 * Peers and clients speak TLS (certificates etcd makes for itself: encrypted, not authenticated);
 * metrics are plain HTTP on a port of their own, for Prometheus. Timings suit a Pi's disk and LAN.
 */
export function etcdMemberFlags(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: RegistryConfig, dataDir = ETCD_DATA_IN_CONTAINER): string[] {
    const peerUrl = (m: ReplicaIdentity) => `https://${m.address}:${options.peerPort}`;
    return [
        `--name=${memberName(self)}`,
        `--data-dir=${dataDir}`,
        `--listen-peer-urls=https://0.0.0.0:${options.peerPort}`,
        `--initial-advertise-peer-urls=${peerUrl(self)}`,
        // TLS on the LAN; plain HTTP on loopback only, for the Pi's own CoreDNS and picloud's steps there.
        `--listen-client-urls=https://0.0.0.0:${options.clientPort},http://127.0.0.1:${options.localClientPort}`,
        `--advertise-client-urls=https://${self.address}:${options.clientPort}`,
        `--listen-metrics-urls=http://0.0.0.0:${options.metricsPort}`,
        `--initial-cluster=${members.map((m) => `${memberName(m)}=${peerUrl(m)}`).join(",")}`,
        "--initial-cluster-state=new",
        "--initial-cluster-token=picloud-registry",
        "--auto-tls",
        "--peer-auto-tls",
        "--heartbeat-interval=250",
        "--election-timeout=2500",
        "--quota-backend-bytes=536870912",
        "--auto-compaction-retention=1",
    ];
}

/** A member's etcd name. */
export function memberName(m: Pick<ReplicaIdentity, "index">): string {
    return `${ETCD_WORKLOAD}-${m.index}`;
}

/** The etcd workload: host networking on each member's Pi, data on its disk, one member at a time. */
export function etcdWorkload(options: RegistryConfig, pis: readonly PiConfig[]): Workload {
    const members = etcdMembers(options, pis);
    return {
        name: ETCD_WORKLOAD,
        component: "registry",
        configKey: KEY,
        image: ETCD_IMAGE,
        command: ["/usr/local/bin/etcd"],
        replicas: members,
        spread: true,
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        hostNetwork: true,
        ports: [
            { container: options.clientPort, host: options.clientPort, configKey: `${KEY}.clientPort` },
            { container: options.peerPort, host: options.peerPort, configKey: `${KEY}.peerPort` },
            { container: options.metricsPort, host: options.metricsPort, configKey: `${KEY}.metricsPort` },
            { container: options.localClientPort, host: options.localClientPort, configKey: `${KEY}.localClientPort`, loopback: true },
        ],
        data: { containerPath: ETCD_DATA_IN_CONTAINER },
        perReplica: (self, all) => ({ command: etcdMemberFlags(self, all, options) }),
        quorum: { name: "etcd", quorum: majority(members) },
        fsyncHeavy: { allowSdCard: options.allowSdCard, allowSdCardKey: `${KEY}.allowSdCard` },
        healthcheck: { command: ["etcdctl", `--endpoints=https://127.0.0.1:${options.clientPort}`, "--insecure-transport=false", "--insecure-skip-tls-verify", "endpoint", "health"], intervalSeconds: 10, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 30 },
        metrics: { port: options.metricsPort, path: "/metrics" },
        logLabels: { tier: "registry", service: "etcd" },
    };
}

/** How the registry is watched: etcd's golden signals (after etcd's own alert rules), its backups, and every Pi's CoreDNS. */
export function registrySpec(options: RegistryConfig, members: readonly ReplicaIdentity[], pis: readonly PiConfig[]): MonitoringSpec {
    const sel = `job="${ETCD_JOB}"`;
    const target = { job: ETCD_JOB, targets: members.map((m) => `${m.address}:${options.metricsPort}`), labels: { tier: "registry" } };
    const dns = dnsSpecParts(options, pis);
    return {
        component: "registry",
        scrapeTargets: [target, ...dns.scrapeTargets],
        alertRules: [
            targetDownRule(target),
            {
                alert: "EtcdNoLeader",
                expr: `etcd_server_has_leader{${sel}} == 0`,
                for: "1m",
                severity: "critical",
                summary: "etcd member {{ $labels.instance }} has no leader",
                description: "This member sees no leader: it takes no writes. With a majority of members up a leader is elected within seconds; a lasting loss means the member is cut off from its peers.",
            },
            {
                alert: "EtcdInsufficientMembers",
                expr: `sum(up{${sel}} == bool 1) < ((count(up{${sel}}) + 1) / 2)`,
                for: "1m",
                severity: "critical",
                summary: "etcd has lost its quorum",
                description: "Fewer than a majority of etcd members answer: the registry takes no writes until enough of them are back.",
            },
            {
                alert: "EtcdFrequentLeaderChanges",
                expr: `increase(etcd_server_leader_changes_seen_total{${sel}}[15m]) >= 4`,
                for: "5m",
                severity: "warning",
                summary: "etcd changes leader often",
                description: "Four or more leader elections in 15 minutes on {{ $labels.instance }}: slow disks or a flaky network make members miss heartbeats.",
            },
            {
                alert: "EtcdSlowFsync",
                expr: `histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{${sel}}[5m]))) > 0.5`,
                for: "10m",
                severity: "warning",
                summary: "etcd's disk is slow on {{ $labels.instance }}",
                description: "The 99th percentile of WAL fsyncs is above 500 ms: the disk cannot keep up, and leader elections follow. etcd wants an SSD.",
            },
            backupAgeRule("etcd", options.backup.maxAgeHours),
            ...dns.alertRules,
        ],
        dashboard: {
            uid: "picloud-registry",
            title: "picloud / service registry",
            panels: [
                { title: "Members with a leader", expr: `sum(etcd_server_has_leader{${sel}})` },
                { title: "Leader changes (15 m)", expr: `increase(etcd_server_leader_changes_seen_total{${sel}}[15m])` },
                { title: "WAL fsync p99", expr: `histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{${sel}}[5m])))`, unit: "s" },
                { title: "Database size", expr: `etcd_mvcc_db_total_size_in_bytes{${sel}}`, unit: "bytes" },
                ...dns.panels,
            ],
        },
        logLabels: { tier: "registry" },
    };
}

/** Peers to each other's peer port; the operator (etcdctl) to the client port. Prometheus's scrape comes with the spec. */
export function registryFlows(options: RegistryConfig, members: readonly ReplicaIdentity[]): Flow[] {
    const flows: Flow[] = [];
    for (const to of members) {
        for (const from of members.filter((m) => m.pi !== to.pi)) {
            flows.push({ from: { pi: from.pi }, to: to.pi, protocol: "tcp", port: options.peerPort, purpose: `etcd peer ${memberName(from)}`, declaredBy: `${KEY}.peerPort` });
        }
        flows.push({ from: { zone: "mgmt" }, to: to.pi, protocol: "tcp", port: options.clientPort, purpose: "operator to etcd", declaredBy: `${KEY}.clientPort` });
    }
    return flows;
}

/** etcdctl in member `self`'s own container, over its loopback listener. */
export function memberEtcdctl(self: ReplicaIdentity, options: RegistryConfig): string[] {
    return ["docker", "exec", memberName(self), "etcdctl", `--endpoints=http://127.0.0.1:${options.localClientPort}`];
}

/** The snapshot one backup run takes, from member `self`'s own container, into `$BACKUP_DIR`. */
export function etcdSnapshotCommand(self: ReplicaIdentity, options: RegistryConfig): string {
    const inContainer = `${ETCD_DATA_IN_CONTAINER}/picloud-snapshot.db`;
    return [
        `docker exec ${memberName(self)} etcdctl --endpoints=https://127.0.0.1:${options.clientPort} --insecure-transport=false --insecure-skip-tls-verify snapshot save ${inContainer} >/dev/null`,
        `mv -f ${self.dataPath}/picloud-snapshot.db "$BACKUP_DIR/etcd.db"`,
    ].join(" && ");
}
