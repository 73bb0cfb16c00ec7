import { describe, expect, it } from "vitest";
import { promtoolTestRules } from "../../../test/support/promtool";
import { shellcheck } from "../../../test/support/scripts";
import type { PiConfig } from "../../config/schema";
import { registrySchema } from "./config";
import { AlertRule, monitoringGaps } from "../../monitoring/contract";
import { BACKUP_METRIC, renderBackupRunner, renderBackupTimerScript } from "../../renderers/backupTimer";
import { replicaIdentities } from "../../runtime/workload";
import { DNS_JOB } from "./dns";
import { ETCD_JOB, etcdMemberFlags, etcdMembers, etcdSnapshotCommand, etcdWorkload, registryFlows, registrySpec } from "./specs";

const pi = (name: string, n: number, storage: "sd" | "ssd" = "ssd"): PiConfig => ({
    name, address: `192.168.10.${n}`, sshUser: "pi", sshPort: 22, hostKey: "k", model: "pi4", memoryMb: 4096, cpus: 4, storage, labels: {},
});
const options = registrySchema.parse({});
const members = replicaIdentities({ name: "etcd", data: { containerPath: "/var/lib/etcd" } }, ["a", "b", "c"], (p) => ({ a: "192.168.10.1", b: "192.168.10.2", c: "192.168.10.3" })[p]!);
const pis = [pi("a", 1), pi("b", 2), pi("c", 3), pi("d", 4, "sd")];
const spec = registrySpec(options, members, pis);


describe("the registry's declaration", () => {
    it("has three members where three SSD Pis may carry them, else one; SD cards count only when allowed", () => {
        expect(etcdMembers(options, [pi("a", 1), pi("b", 2), pi("c", 3)])).toBe(3);
        expect(etcdMembers(options, [pi("a", 1), pi("b", 2), pi("c", 3, "sd")])).toBe(1);
        expect(etcdMembers({ ...options, allowSdCard: true }, [pi("a", 1, "sd"), pi("b", 2, "sd"), pi("c", 3, "sd")])).toBe(3);
        const w = etcdWorkload(options, [pi("a", 1), pi("b", 2), pi("c", 3)]);
        expect(w).toMatchObject({ replicas: 3, spread: true, quorum: { name: "etcd", quorum: 2 }, fsyncHeavy: { allowSdCard: false, allowSdCardKey: "picloud:tiers.registry.allowSdCard" } });
        expect(w.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    });

    it("gives each member its own name and URLs and every member the same initial cluster, over TLS", () => {
        const flags = members.map((m) => etcdMemberFlags(m, members, options));
        expect(flags[1]).toEqual(expect.arrayContaining(["--name=etcd-1", "--initial-advertise-peer-urls=https://192.168.10.2:2380", "--advertise-client-urls=https://192.168.10.2:2379", "--auto-tls", "--peer-auto-tls"]));
        const cluster = flags.map((f) => f.find((x) => x.startsWith("--initial-cluster="))!);
        expect(new Set(cluster).size).toBe(1);
        expect(cluster[0]).toBe("--initial-cluster=etcd-0=https://192.168.10.1:2380,etcd-1=https://192.168.10.2:2380,etcd-2=https://192.168.10.3:2380");
    });

    it("opens the peer port between members only, and the client port to the operator", () => {
        const flows = registryFlows(options, members);
        const peersOfA = flows.filter((f) => f.to === "a" && f.port === 2380).map((f) => (f.from as { pi: string }).pi);
        expect(peersOfA).toEqual(["b", "c"]);
        expect(flows.filter((f) => f.port === 2379).map((f) => f.from)).toEqual([{ zone: "mgmt" }, { zone: "mgmt" }, { zone: "mgmt" }]);
    });

    it("is monitored completely: scrape targets on the metrics port, target-down, etcd's golden signals and backup age", () => {
        expect(monitoringGaps(spec)).toEqual([]);
        expect(spec.scrapeTargets[0].targets).toEqual(["192.168.10.1:2381", "192.168.10.2:2381", "192.168.10.3:2381"]);
        expect(spec.alertRules.map((r) => r.alert)).toEqual([
            "RegistryEtcdTargetDown", "EtcdNoLeader", "EtcdInsufficientMembers", "EtcdFrequentLeaderChanges", "EtcdSlowFsync", "EtcdBackupTooOld",
            "RegistryDnsTargetDown", "CoreDNSErrorsHigh", "CoreDNSLatencyHigh", "CoreDNSForwardUnhealthy", "CoreDNSPanics",
        ]);
        // CoreDNS on every Pi, members or not.
        expect(spec.scrapeTargets[1]).toMatchObject({ job: DNS_JOB, targets: ["192.168.10.1:9153", "192.168.10.2:9153", "192.168.10.3:9153", "192.168.10.4:9153"] });
    });

    it("updates leader-last: each member's hand-off passes shellcheck and sends leadership to a member already updated, or the last", () => {
        const w = etcdWorkload(options, pis.slice(0, 3));
        expect(w.updateStrategy).toBe("leader-last");
        const scripts = members.map((m) => w.leaderHandOff!(m, members));
        for (const text of scripts) {
            const result = shellcheck(text);
            expect(result.status, result.output).toBe(0);
        }
        expect(scripts.map((t) => /^to='(.*)'$/m.exec(t)![1])).toEqual(["etcd-2", "etcd-0", "etcd-0"]);
        expect(scripts[1]).toContain("'docker' 'exec' 'etcd-1' 'etcdctl' '--endpoints=http://127.0.0.1:2382'");
    });

    it("starts a member that joins as existing, after a join step through a member that stays that passes shellcheck", () => {
        const w = etcdWorkload(options, pis.slice(0, 3));
        const joining = { ...members[2], pi: "d", address: "192.168.10.4", joins: true };
        const now = [members[0], members[1], joining];
        expect(etcdMemberFlags(joining, now, options)).toContain("--initial-cluster-state=existing");
        expect(etcdMemberFlags(members[0], now, options)).toContain("--initial-cluster-state=new");
        const script = w.join!(joining, now, members[0]);
        const result = shellcheck(script);
        expect(result.status, result.output).toBe(0);
        expect(script).toContain("url='https://192.168.10.4:2380'");
        expect(script).toContain("'docker' 'exec' 'etcd-0' 'etcdctl'");
    });

    it("backs up with a timer script that passes shellcheck and snapshots the first member's own container", () => {
        const input = { name: "etcd", onCalendar: "daily", command: etcdSnapshotCommand(members[0], options), local: { directory: "/srv/picloud/backups/etcd", keep: 7 }, textfileDir: "/var/lib/picloud/textfile" };
        const script = renderBackupTimerScript(input);
        for (const text of [script, renderBackupRunner(input)]) {
            const result = shellcheck(text);
            expect(result.status, result.output).toBe(0);
        }
        expect(script).toContain("docker exec etcd-0 etcdctl --endpoints=https://127.0.0.1:2379 --insecure-transport=false --insecure-skip-tls-verify snapshot save");
        expect(script).toContain(BACKUP_METRIC);
    });
});

describe("the registry's alerts, run by promtool test rules", () => {
    const rule = (alert: string): AlertRule => spec.alertRules.find((r) => r.alert === alert)!;
    const up = (i: number) => `up{job="${ETCD_JOB}",instance="${spec.scrapeTargets[0].targets[i]}",tier="registry",component="registry"}`;
    const leader = (i: number) => `etcd_server_has_leader{job="${ETCD_JOB}",instance="${spec.scrapeTargets[0].targets[i]}",tier="registry",component="registry"}`;

    const promtool = (tests: object[]) => promtoolTestRules([spec], tests);
    const labels = (r: AlertRule, extra: Record<string, string> = {}) => ({ ...extra, severity: r.severity, component: "registry" });

    it("EtcdInsufficientMembers fires with two of three members down, not with one", () => {
        const r = rule("EtcdInsufficientMembers");
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: up(0), values: "1x20" },
                    { series: up(1), values: "0x20" },
                    { series: up(2), values: "1x4 0x16" },
                ],
                alert_rule_test: [
                    { alertname: r.alert, eval_time: "50s", exp_alerts: [] },
                    { alertname: r.alert, eval_time: "3m", exp_alerts: [{ exp_labels: labels(r), exp_annotations: { summary: r.summary, description: r.description } }] },
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("EtcdNoLeader fires for the member that lost its leader, for a minute", () => {
        const r = rule("EtcdNoLeader");
        const instance = spec.scrapeTargets[0].targets[2];
        const result = promtool([
            {
                interval: "15s",
                input_series: [
                    { series: leader(0), values: "1x12" },
                    { series: leader(2), values: "1x2 0x10" },
                ],
                alert_rule_test: [
                    { alertname: r.alert, eval_time: "45s", exp_alerts: [] },
                    {
                        alertname: r.alert,
                        eval_time: "2m",
                        exp_alerts: [{ exp_labels: labels(r, { job: ETCD_JOB, instance, tier: "registry", component: "registry" }), exp_annotations: { summary: `etcd member ${instance} has no leader`, description: r.description } }],
                    },
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("EtcdBackupTooOld fires when no backup was ever recorded, and when the last is older than its limit", () => {
        const r = rule("EtcdBackupTooOld");
        const result = promtool([
            { interval: "5m", input_series: [], alert_rule_test: [{ alertname: r.alert, eval_time: "20m", exp_alerts: [{ exp_labels: labels(r, { backup: "etcd" }), exp_annotations: { summary: r.summary, description: r.description } }] }] },
            {
                interval: "1m",
                // A backup at t=0 (timestamp 0), scraped every minute, then none: older than 26 h from 26 h on, firing 15 min later.
                input_series: [{ series: `${BACKUP_METRIC}{backup="etcd",instance="192.168.10.1:9100",job="host-a"}`, values: "0x1800" }],
                alert_rule_test: [
                    { alertname: r.alert, eval_time: "25h", exp_alerts: [] },
                    { alertname: r.alert, eval_time: "27h", exp_alerts: [{ exp_labels: labels(r, { backup: "etcd" }), exp_annotations: { summary: r.summary, description: r.description } }] },
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    const dnsSeries = (metric: string, i: number, extra = "") => `${metric}{job="${DNS_JOB}",instance="${spec.scrapeTargets[1].targets[i]}",tier="registry",component="registry"${extra}}`;

    it("CoreDNSErrorsHigh fires for the Pi whose answers fail, not for one answering well", () => {
        const r = rule("CoreDNSErrorsHigh");
        const instance = spec.scrapeTargets[1].targets[1];
        const result = promtool([
            {
                interval: "1m",
                input_series: [
                    // Pi 0: 100 answers a minute, none failing; Pi 1: 100 a minute, 10 of them SERVFAIL.
                    { series: dnsSeries("coredns_dns_responses_total", 0, ',rcode="NOERROR"'), values: "0+100x30" },
                    { series: dnsSeries("coredns_dns_responses_total", 1, ',rcode="NOERROR"'), values: "0+90x30" },
                    { series: dnsSeries("coredns_dns_responses_total", 1, ',rcode="SERVFAIL"'), values: "0+10x30" },
                ],
                alert_rule_test: [
                    { alertname: r.alert, eval_time: "8m", exp_alerts: [] },
                    { alertname: r.alert, eval_time: "20m", exp_alerts: [{ exp_labels: labels(r, { instance }), exp_annotations: { summary: `CoreDNS on ${instance} fails more than 3% of queries`, description: r.description } }] },
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });

    it("CoreDNSForwardUnhealthy fires while every upstream fails its health check, and stops after", () => {
        const r = rule("CoreDNSForwardUnhealthy");
        const instance = spec.scrapeTargets[1].targets[3];
        const result = promtool([
            {
                interval: "1m",
                input_series: [{ series: dnsSeries("coredns_forward_healthcheck_broken_total", 3), values: "0 0 1 2 3 4 5 6 7 8 9 10 10x20" }],
                alert_rule_test: [
                    { alertname: r.alert, eval_time: "3m", exp_alerts: [] },
                    { alertname: r.alert, eval_time: "9m", exp_alerts: [{ exp_labels: labels(r, { job: DNS_JOB, instance, tier: "registry", component: "registry" }), exp_annotations: { summary: `CoreDNS on ${instance} has no healthy upstream`, description: r.description } }] },
                    { alertname: r.alert, eval_time: "25m", exp_alerts: [] },
                ],
            },
        ]);
        expect(result.status, result.out).toBe(0);
    });
});
