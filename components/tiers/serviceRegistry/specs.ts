/**
 * The service registry's declaration, pure: etcd's members and their flags, its monitoring, its
 * flows and its backups. The component (`serviceRegistry.ts`) deploys what this declares.
 */
import type { PiConfig } from "../../config/schema";
import type { RegistryConfig } from "./config";
import { MonitoringSpec, backupAgeRule, targetDownRule } from "../../monitoring/contract";
import type { Flow } from "../../network/flows";
import { majority } from "../../placement/place";
import { ReplicaIdentity, Workload, handOffTarget } from "../../runtime/workload";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";
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
export function etcdMemberFlags(self: ReplicaIdentity, members: readonly ReplicaIdentity[], options: RegistryConfig, dataDir = ETCD_DATA_IN_CONTAINER, serveDcs = false): string[] {
    const peerUrl = (m: ReplicaIdentity) => `https://${m.address}:${options.peerPort}`;
    return [
        `--name=${memberName(self)}`,
        `--data-dir=${dataDir}`,
        // A lone member has no peers: its peer port stays on loopback until the cluster grows.
        `--listen-peer-urls=https://${members.length > 1 ? "0.0.0.0" : "127.0.0.1"}:${options.peerPort}`,
        `--initial-advertise-peer-urls=${peerUrl(self)}`,
        // TLS on the LAN; plain HTTP on loopback only, for the Pi's own CoreDNS and picloud's steps there.
        // With a tier keeping its state here, plain HTTP on the LAN too, on a port the firewall opens to that tier's Pis only.
        `--listen-client-urls=https://0.0.0.0:${options.clientPort},http://127.0.0.1:${options.localClientPort}${serveDcs ? `,http://${self.address}:${options.dcsPort}` : ""}`,
        `--advertise-client-urls=https://${self.address}:${options.clientPort}`,
        `--listen-metrics-urls=http://0.0.0.0:${options.metricsPort}`,
        `--initial-cluster=${members.map((m) => `${memberName(m)}=${peerUrl(m)}`).join(",")}`,
        // A member away from the Pi the cluster was formed on joins it (its join step added it first).
        `--initial-cluster-state=${self.joins ? "existing" : "new"}`,
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
export function etcdWorkload(options: RegistryConfig, pis: readonly PiConfig[], serveDcs = false): Workload {
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
            { container: options.peerPort, host: options.peerPort, configKey: `${KEY}.peerPort`, loopback: members === 1 },
            { container: options.metricsPort, host: options.metricsPort, configKey: `${KEY}.metricsPort` },
            { container: options.localClientPort, host: options.localClientPort, configKey: `${KEY}.localClientPort`, loopback: true },
            ...(serveDcs ? [{ container: options.dcsPort, host: options.dcsPort, configKey: `${KEY}.dcsPort` }] : []),
        ],
        data: { containerPath: ETCD_DATA_IN_CONTAINER },
        perReplica: (self, all) => ({ command: etcdMemberFlags(self, all, options, ETCD_DATA_IN_CONTAINER, serveDcs) }),
        // A member that leads hands its leadership over before it restarts: no election, no
        // election timeout without a leader, and at most two hand-offs for a whole update.
        updateStrategy: "leader-last",
        join: (self, _all, via) => renderEtcdJoin({ name: memberName(self), peerUrl: `https://${self.address}:${options.peerPort}`, etcdctl: memberEtcdctl(via, options) }),
        leaderHandOff: (self, all) =>
            renderEtcdHandOff({ self: memberName(self), to: handOffTarget(self, all), etcdctl: memberEtcdctl(self, options), running: `docker container inspect ${memberName(self)}` }),
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

/**
 * The script that hands a member's leadership to member `to` when it leads, run on its Pi before
 * it changes. It does nothing when the member does not run or answer (first deploy, a member
 * down) or does not lead; when `to` is gone it hands to any other started member. `etcdctl`
 * reaches the member itself; `running` succeeds when it runs.
 */
export function renderEtcdHandOff(input: { readonly self: string; readonly to?: ReplicaIdentity; readonly etcdctl: readonly string[]; readonly running: string; readonly waitSeconds?: number }): string {
    const target = input.to ? memberName(input.to) : "";
    return [
        "#!/usr/bin/env bash",
        `# picloud: ${input.self} hands its leadership over before it changes (leader-last)`,
        "set -euo pipefail",
        `self=${shellQuote(input.self)}`,
        `to=${shellQuote(target)}`,
        `if ! ${input.running} >/dev/null 2>&1; then echo "picloud: $self does not run: nothing to hand over"; exit 0; fi`,
        `etcdctl() { ${input.etcdctl.map(shellQuote).join(" ")} --command-timeout=10s "$@"; }`,
        // The gate of a rolling update: the member before has just changed; this one changes only
        // once every member answers again (a member alone is never healthy, so containers do not
        // wait for their own health: the first deploy would never finish).
        ...waitUntilLines(
            "etcdctl endpoint health --cluster --insecure-transport=false --insecure-skip-tls-verify >/dev/null 2>&1",
            input.waitSeconds ?? 180,
            (s) => `picloud: the etcd cluster is not healthy after ${s} s: $self is left as it is, and the update stops here`,
        ),
        'if ! status=$(etcdctl endpoint status -w json 2>/dev/null); then echo "picloud: $self does not answer: nothing to hand over"; exit 0; fi',
        // IDs compared as strings: they are unsigned 64-bit, beyond shell arithmetic.
        `me=$(grep -o '"member_id":[0-9]*' <<<"$status" | head -n1 | cut -d: -f2)`,
        `leader=$(grep -o '"leader":[0-9]*' <<<"$status" | head -n1 | cut -d: -f2)`,
        'if [ -z "$me" ] || [ "$me" != "$leader" ]; then echo "picloud: $self does not lead"; exit 0; fi',
        "members=$(etcdctl member list -w simple)",
        `id=$(awk -F', ' -v n="$to" '$2 == "started" && $3 == n { print $1 }' <<<"$members")`,
        `if [ -z "$id" ]; then id=$(awk -F', ' -v n="$self" '$2 == "started" && $3 != n { print $1; exit }' <<<"$members"); fi`,
        'if [ -z "$id" ]; then echo "picloud: $self leads alone: nobody to hand over to"; exit 0; fi',
        'etcdctl move-leader "$id" >/dev/null',
        'echo "picloud: $self handed its leadership to member $id"',
        "",
    ].join("\n");
}

/**
 * The join step of a member that joins the running cluster (it replaces one whose Pi is gone, or
 * the cluster grows), run through a member that stays: once the cluster has a leader, it removes
 * any member of the same name at another address and adds this one at its peer URL, unless a
 * member is there already (added, or started). Idempotent.
 */
export function renderEtcdJoin(input: { readonly name: string; readonly peerUrl: string; readonly etcdctl: readonly string[]; readonly waitSeconds?: number }): string {
    const tries = Math.ceil((input.waitSeconds ?? 120) / 2);
    return [
        "#!/usr/bin/env bash",
        `# picloud: ${input.name} joins the running etcd cluster at ${input.peerUrl}`,
        "set -euo pipefail",
        `name=${shellQuote(input.name)}`,
        `url=${shellQuote(input.peerUrl)}`,
        `etcdctl() { ${input.etcdctl.map(shellQuote).join(" ")} --command-timeout=10s "$@"; }`,
        ...waitUntilLines(
            "members=$(etcdctl member list -w simple 2>/dev/null) && etcdctl get --keys-only --limit=1 /picloud >/dev/null 2>&1",
            input.waitSeconds ?? 120,
            (s) => `picloud: the etcd cluster has no leader after ${s} s: $name cannot join`,
        ),
        // `member list -w simple`: ID, status, name, peer URLs, client URLs, is learner.
        // etcd refuses a membership change ("unhealthy cluster") until its leader has been in touch
        // with the members it counts for a few seconds (after an election, say): retry.
        "retry() {",
        `    for j in $(seq 1 ${tries}); do`,
        '        if out=$("$@" 2>&1 </dev/null); then return 0; fi',
        `        if [ "$j" -eq ${tries} ]; then echo "picloud: $* failed: $out" >&2; return 1; fi`,
        "        sleep 2",
        "    done",
        "}",
        "while read -r id; do",
        '    [ -n "$id" ] || continue',
        '    retry etcdctl member remove "$id"',
        '    echo "picloud: removed the member $name was before ($id)"',
        `done < <(awk -F', ' -v n="$name" -v u="$url" '$3 == n && $4 != u { print $1 }' <<<"$members")`,
        `if awk -F', ' -v u="$url" '$4 == u { found = 1 } END { exit !found }' <<<"$members"; then`,
        '    echo "picloud: $name is a member at $url already"',
        "else",
        '    retry etcdctl member add "$name" --peer-urls="$url"',
        '    echo "picloud: added $name at $url"',
        "fi",
        "",
    ].join("\n");
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
