import { describe, expect, it } from "vitest";
import type { PiConfig } from "../../config/schema";
import type { MonitoringConfig } from "./config";
import { monitoringGaps } from "../../monitoring/contract";
import { hostSpec, monitoringPi, monitoringTierSpec, monitoringWorkloads, retentionSizeMb } from "./specs";

const pi = (name: string, over: Partial<PiConfig> = {}): PiConfig => ({
    name, address: `10.0.0.${name.length}`, sshUser: "pi", sshPort: 22, hostKey: "k", model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {}, ...over,
});
const options: MonitoringConfig = { retentionDays: 15, scrapeIntervalSeconds: 30, confirmTimeoutSeconds: 180, alerting: { webhookUrls: [] } };

describe("monitoringPi", () => {
    it("takes the named Pi, else one labelled role=monitoring, else the first SSD, else the first", () => {
        const pis = [pi("a"), pi("bb", { storage: "ssd" }), pi("ccc", { labels: { role: "monitoring" } })];
        expect(monitoringPi(pis, { ...options, pi: "a" }).name).toBe("a");
        expect(monitoringPi(pis, options).name).toBe("ccc");
        expect(monitoringPi(pis.slice(0, 2), options).name).toBe("bb");
        expect(monitoringPi([pi("a"), pi("z")], options).name).toBe("a");
    });

    it("keeps the Pi they ran on before over a default one, but not over the named Pi or when it is gone", () => {
        const pis = [pi("a"), pi("bb", { storage: "ssd" }), pi("ccc", { labels: { role: "monitoring" } })];
        expect(monitoringPi(pis, options, "a").name).toBe("a");
        expect(monitoringPi(pis, { ...options, pi: "bb" }, "a").name).toBe("bb");
        expect(monitoringPi(pis, options, "gone").name).toBe("ccc");
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

    it("runs the central services on the monitoring Pi and an exporter pair on every Pi", () => {
        for (const central of ["prometheus", "alertmanager", "grafana"]) expect(byName.get(central)?.pinnedTo).toEqual(["bb"]);
        for (const agent of ["node-exporter", "cadvisor"]) expect(byName.get(agent)?.pinnedTo).toEqual(["a", "bb"]);
    });

    it("sizes Prometheus's retention for the Pi and lets picloud reload it", () => {
        expect(byName.get("prometheus")?.command).toEqual(expect.arrayContaining(["--storage.tsdb.retention.time=15d", "--storage.tsdb.retention.size=4096MB", "--web.enable-lifecycle"]));
    });

    it("pins every image by digest and bounds every container's memory", () => {
        for (const w of byName.values()) {
            expect(w.image).toMatch(/@sha256:[a-f0-9]{64}$/);
            expect(w.memoryMb).toBeGreaterThan(0);
        }
    });
});

describe("monitoring specs", () => {
    const pis = [pi("a"), pi("bb")];

    it("are complete for the Monitoring tier and for every host", () => {
        expect(monitoringGaps(monitoringTierSpec(pis, options, pis[0]))).toEqual([]);
        for (const p of pis) expect(monitoringGaps(hostSpec(p))).toEqual([]);
    });

    it("include the always-firing Watchdog for the dead man's switch", () => {
        expect(monitoringTierSpec(pis, options, pis[0]).alertRules).toContainEqual(expect.objectContaining({ alert: "Watchdog", expr: "vector(1)" }));
    });

    it("scrape cAdvisor on every Pi and node_exporter per host", () => {
        const cadvisor = monitoringTierSpec(pis, options, pis[0]).scrapeTargets.find((t) => t.job === "cadvisor");
        expect(cadvisor?.targets).toEqual(["10.0.0.1:9338", "10.0.0.2:9338"]);
        expect(hostSpec(pis[1]).scrapeTargets).toEqual([expect.objectContaining({ job: "host-bb", targets: ["10.0.0.2:9100"] })]);
    });
});
