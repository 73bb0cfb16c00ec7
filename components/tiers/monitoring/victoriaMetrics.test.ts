import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { PiConfig } from "../../config/schema";
import { PicloudConfigError } from "../../config/errors";
import { monitoringGaps } from "../../monitoring/contract";
import { GRAFANA_PROMETHEUS_DATASOURCE_UID, GRAFANA_VICTORIA_METRICS_DATASOURCE_UID, renderGrafanaDatasources, renderPrometheusConfig } from "../../monitoring/renderers";
import { placeReplicas } from "../../placement/place";
import { demandOf } from "../../runtime/workload";
import { monitoringSchema } from "./config";
import { longTermStore, monitoringWorkloads, prometheusConfigInput } from "./specs";
import { VICTORIA_METRICS_WORKLOAD, victoriaMetricsFlags, victoriaMetricsSpec, victoriaMetricsWorkload } from "./victoriaMetrics";

const pi = (name: string, address: string, over: Partial<PiConfig> = {}): PiConfig => ({
    name, address, sshUser: "pi", sshPort: 22, hostKey: "k", model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {}, ...over,
});
const place = (pis: PiConfig[], victoriaMetrics: Record<string, unknown>) => {
    const options = monitoringSchema.parse({ victoriaMetrics });
    return { options, plan: placeReplicas(pis, 512, monitoringWorkloads(pis, options).map(demandOf)) };
};

describe("VictoriaMetrics' placement", () => {
    it("goes to an SSD Pi, and the stack reaches it there", () => {
        const pis = [pi("a", "10.0.0.1"), pi("b", "10.0.0.2", { storage: "ssd" }), pi("c", "10.0.0.3")];
        const { options, plan } = place(pis, {});
        expect(plan.assignments.get(VICTORIA_METRICS_WORKLOAD)).toEqual(["b"]);
        expect(longTermStore(plan, pis, options)).toBe("10.0.0.2:8428");
        expect(longTermStore(plan, pis, monitoringSchema.parse({}))).toBeUndefined();
    });

    it("refuses a stack without an SSD Pi, naming allowSdCard, and takes an SD card when it says so", () => {
        const pis = [pi("a", "10.0.0.1"), pi("b", "10.0.0.2")];
        let error: unknown;
        try {
            place(pis, {});
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(PicloudConfigError);
        expect((error as PicloudConfigError).problems.map((p) => p.key)).toEqual(["picloud:tiers.monitoring.victoriaMetrics.allowSdCard"]);
        expect((error as Error).message).toMatch(/runs only on Pis with storage: ssd .*refused: a has storage: sd; b has storage: sd/);
        expect(place(pis, { allowSdCard: true }).plan.assignments.get(VICTORIA_METRICS_WORKLOAD)).toHaveLength(1);
    });

    it("keeps its data with it: a data folder, pinned where the config names", () => {
        const w = victoriaMetricsWorkload(monitoringSchema.parse({ victoriaMetrics: { pi: "c" } }).victoriaMetrics!);
        expect(w.data?.containerPath).toBe("/storage");
        expect(w.pinnedTo).toEqual(["c"]);
        expect(w.command).toEqual(victoriaMetricsFlags(monitoringSchema.parse({ victoriaMetrics: {} }).victoriaMetrics!, "/storage"));
    });
});

describe("VictoriaMetrics' flags", () => {
    it("keep a year by default, the configured days otherwise, go read-only before the disk fills, and keep one sample per series per liveness scrape", () => {
        const flags = (o: Record<string, unknown>) => victoriaMetricsFlags(monitoringSchema.parse({ victoriaMetrics: o }).victoriaMetrics!, "/storage");
        expect(flags({})).toEqual(["-httpListenAddr=:8428", "-storageDataPath=/storage", "-retentionPeriod=365d", "-storage.minFreeDiskSpaceBytes=1024MiB", "-dedup.minScrapeInterval=5s"]);
        expect(flags({ retentionDays: 90, httpPort: 9428, minFreeDiskMb: 200 })).toEqual(["-httpListenAddr=:9428", "-storageDataPath=/storage", "-retentionPeriod=90d", "-storage.minFreeDiskSpaceBytes=200MiB", "-dedup.minScrapeInterval=5s"]);
    });
});

describe("Prometheus and Grafana with a long-term store", () => {
    const options = monitoringSchema.parse({ victoriaMetrics: {} });

    it("sends every sample to VictoriaMetrics' remote_write, and none without one", () => {
        expect(parse(renderPrometheusConfig(prometheusConfigInput(options, "prod", [], "10.0.0.2:8428"))).remote_write).toEqual([{ url: "http://10.0.0.2:8428/api/v1/write" }]);
        expect(parse(renderPrometheusConfig(prometheusConfigInput(options, "prod", []))).remote_write).toBeUndefined();
    });

    it("makes VictoriaMetrics Grafana's default datasource, and Prometheus the default again without it", () => {
        const withVm = parse(renderGrafanaDatasources({ prometheusUrl: "http://prometheus-0:9090", victoriaMetricsUrl: "http://10.0.0.2:8428" }));
        expect(withVm.datasources.map((d: { uid: string; isDefault: boolean }) => [d.uid, d.isDefault])).toEqual([
            [GRAFANA_PROMETHEUS_DATASOURCE_UID, false],
            [GRAFANA_VICTORIA_METRICS_DATASOURCE_UID, true],
        ]);
        expect(withVm.deleteDatasources).toEqual([{ name: "VictoriaLogs", orgId: 1 }]);
        const without = parse(renderGrafanaDatasources({ prometheusUrl: "http://prometheus-0:9090" }));
        expect(without.datasources).toHaveLength(1);
        expect(without.datasources[0]).toMatchObject({ uid: GRAFANA_PROMETHEUS_DATASOURCE_UID, isDefault: true });
        expect(without.deleteDatasources).toEqual([
            { name: "VictoriaMetrics", orgId: 1 },
            { name: "VictoriaLogs", orgId: 1 },
        ]);
    });

    it("is watched: a complete monitoring contract on its own job", () => {
        const spec = victoriaMetricsSpec(options.victoriaMetrics!, "10.0.0.2");
        expect(monitoringGaps(spec)).toEqual([]);
        expect(spec.scrapeTargets[0].targets).toEqual(["10.0.0.2:8428"]);
        expect(spec.alertRules.filter((r) => !r.alert.startsWith("PrometheusRemoteWrite")).every((r) => r.expr.includes('job="monitoring-victoria-metrics"'))).toBe(true);
    });
});
