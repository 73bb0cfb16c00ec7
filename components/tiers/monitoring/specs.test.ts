import { describe, expect, it } from "vitest";
import type { PiConfig } from "../../config/schema";
import type { MonitoringConfig } from "./config";
import { monitoringGaps } from "../../monitoring/contract";
import { alertmanagerClusterFlags, hostSpec, monitoringPis, monitoringTierSpec, monitoringWorkloads, retentionSizeMb } from "./specs";

const pi = (name: string, over: Partial<PiConfig> = {}): PiConfig => ({
    name, address: `10.0.0.${name.length}`, sshUser: "pi", sshPort: 22, hostKey: "k", model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {}, ...over,
});
const options: MonitoringConfig = { retentionDays: 15, scrapeIntervalSeconds: 30, confirmTimeoutSeconds: 180, alerting: { webhookUrls: [] } };

describe("monitoringPis", () => {
    const pis = [pi("a"), pi("bb", { storage: "ssd" }), pi("ccc", { labels: { role: "monitoring" } }), pi("dddd")];
    const names = (...args: Parameters<typeof monitoringPis>) => monitoringPis(...args).map((p) => p.name);

    it("puts two replicas on two Pis by default: labelled role=monitoring first, then SSD, then the first", () => {
        expect(names(pis, options)).toEqual(["ccc", "bb"]);
        expect(names([pi("a"), pi("z")], options)).toEqual(["a", "z"]);
        expect(names([pi("a")], options)).toEqual(["a"]);
        expect(names(pis, { ...options, replicas: 1 })).toEqual(["ccc"]);
    });

    it("takes the Pis the config names: pis for all of them, pi for the first", () => {
        expect(names(pis, { ...options, pis: ["dddd", "a"] })).toEqual(["dddd", "a"]);
        expect(names(pis, { ...options, pi: "a" })).toEqual(["a", "ccc"]);
        expect(names(pis, { ...options, pis: ["a"] })).toEqual(["a"]);
    });

    it("keeps each replica on the Pi it ran on before, and replaces a lost one in its own place only", () => {
        expect(names(pis, options, ["a", "dddd"])).toEqual(["a", "dddd"]);
        // One replica before (a release with one monitoring Pi): it stays, the new one joins.
        expect(names(pis, options, ["a"])).toEqual(["a", "ccc"]);
        // The first replica's Pi left the stack: the second stays where its data is.
        expect(names(pis, options, ["gone", "a"])).toEqual(["ccc", "a"]);
        expect(names(pis, { ...options, pi: "bb" }, ["a", "dddd"])).toEqual(["bb", "dddd"]);
        // Named Pis beat the previous ones; a previous Pi is still preferred to a default one.
        expect(names(pis, { ...options, pi: "dddd" }, ["a", "dddd"])).toEqual(["dddd", "a"]);
    });

    it("caps Prometheus's disk use lower on an SD card", () => {
        expect(retentionSizeMb(pi("a"), options)).toBe(1024);
        expect(retentionSizeMb(pi("a", { storage: "ssd" }), options)).toBe(4096);
        expect(retentionSizeMb(pi("a"), { ...options, retentionSizeMb: 300 })).toBe(300);
    });
});

describe("monitoringWorkloads", () => {
    const pis = [pi("a"), pi("bb", { storage: "ssd" })];
    const byName = new Map(monitoringWorkloads(pis, options).map((w) => [w.name, w]));
    const identity = (index: number, name: string) => ({ index, pi: name, address: pis.find((p) => p.name === name)!.address });

    it("runs a replica of each central service on each monitoring Pi and an exporter pair on every Pi", () => {
        for (const central of ["prometheus", "alertmanager", "grafana"]) expect(byName.get(central)?.pinnedTo).toEqual(["bb", "a"]);
        for (const agent of ["node-exporter", "cadvisor"]) expect(byName.get(agent)?.pinnedTo).toEqual(["a", "bb"]);
    });

    it("sizes each Prometheus replica's retention for its own Pi and lets picloud reload it", () => {
        const prometheus = byName.get("prometheus")!;
        expect(prometheus.command).toEqual(expect.arrayContaining(["--storage.tsdb.retention.time=15d", "--web.enable-lifecycle"]));
        expect(prometheus.perReplica?.(identity(0, "bb"), [])).toEqual({ command: ["--storage.tsdb.retention.size=4096MB"] });
        expect(prometheus.perReplica?.(identity(1, "a"), [])).toEqual({ command: ["--storage.tsdb.retention.size=1024MB"] });
    });

    it("clusters the Alertmanagers: each advertises its Pi's address and joins the other, gossip published on tcp and udp", () => {
        const alertmanager = byName.get("alertmanager")!;
        expect(alertmanager.perReplica?.(identity(1, "a"), [])?.command).toEqual(["--cluster.listen-address=0.0.0.0:9094", "--cluster.advertise-address=10.0.0.1:9094", "--cluster.peer=10.0.0.2:9094"]);
        expect(alertmanager.ports).toEqual(expect.arrayContaining([{ container: 9094, host: 9094, protocol: "tcp" }, { container: 9094, host: 9094, protocol: "udp" }]));
        const alone = monitoringWorkloads([pi("a")], options).find((w) => w.name === "alertmanager")!;
        expect(alone.perReplica?.(identity(0, "a"), [])?.command).toEqual(["--cluster.listen-address="]);
        expect(alone.ports?.map((p) => p.host)).toEqual([9093]);
    });

    it("pins every image by digest and bounds every container's memory", () => {
        for (const w of byName.values()) {
            expect(w.image).toMatch(/@sha256:[a-f0-9]{64}$/);
            expect(w.memoryMb).toBeGreaterThan(0);
        }
    });
});

describe("alertmanagerClusterFlags", () => {
    it("leaves itself out of its peers, and turns clustering off when it has none", () => {
        expect(alertmanagerClusterFlags("h1:9094", ["h1:9094", "h2:9094", "h3:9094"], "127.0.0.1:9094")).toEqual([
            "--cluster.listen-address=127.0.0.1:9094",
            "--cluster.advertise-address=h1:9094",
            "--cluster.peer=h2:9094",
            "--cluster.peer=h3:9094",
        ]);
        expect(alertmanagerClusterFlags("h1:9094", ["h1:9094"])).toEqual(["--cluster.listen-address="]);
    });
});

describe("monitoring specs", () => {
    const pis = [pi("a"), pi("bb")];

    it("are complete for the Monitoring tier and for every host", () => {
        expect(monitoringGaps(monitoringTierSpec(pis, options, [pis[0]]))).toEqual([]);
        for (const p of pis) expect(monitoringGaps(hostSpec(p))).toEqual([]);
    });

    it("include the always-firing Watchdog for the dead man's switch", () => {
        expect(monitoringTierSpec(pis, options, [pis[0]]).alertRules).toContainEqual(expect.objectContaining({ alert: "Watchdog", expr: "vector(1)" }));
    });

    it("with two replicas, watch the Alertmanager cluster and each replica's storage against its own cap", () => {
        const spec = monitoringTierSpec(pis, options, [pis[1], pis[0]]);
        expect(spec.scrapeTargets.find((t) => t.job === "alertmanager")?.targets).toEqual(["10.0.0.2:9093", "10.0.0.1:9093"]);
        expect(spec.alertRules.find((r) => r.alert === "AlertmanagerClusterDegraded")?.expr).toBe('alertmanager_cluster_members{job="alertmanager"} < 2');
        expect(spec.alertRules.find((r) => r.alert === "PrometheusStorageNearlyFull")?.expr).toContain('instance="10.0.0.1:9090"} / (1024 * 1024 * 1024) > 0.9');
        expect(monitoringGaps(spec)).toEqual([]);
        expect(monitoringTierSpec(pis, options, [pis[0]]).alertRules.map((r) => r.alert)).not.toContain("AlertmanagerClusterDegraded");
    });

    it("scrape cAdvisor on every Pi and node_exporter per host", () => {
        const cadvisor = monitoringTierSpec(pis, options, [pis[0]]).scrapeTargets.find((t) => t.job === "cadvisor");
        expect(cadvisor?.targets).toEqual(["10.0.0.1:9338", "10.0.0.2:9338"]);
        expect(hostSpec(pis[1]).scrapeTargets).toEqual([expect.objectContaining({ job: "host-bb", targets: ["10.0.0.2:9100"] })]);
    });
});
