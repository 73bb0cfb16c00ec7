import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { exampleStack } from "../../../test/support/exampleStacks";
import { firedAlert, promtoolTestRules } from "../../../test/support/promtool";
import { planNetwork } from "../../cloud/network";
import type { PiConfig } from "../../config/schema";
import { PicloudConfigError } from "../../config/errors";
import { LOG_STREAM_LABELS, monitoringGaps } from "../../monitoring/contract";
import { GRAFANA_VICTORIA_LOGS_DATASOURCE_UID, GRAFANA_VICTORIA_LOGS_PLUGIN, renderGrafanaDatasources } from "../../monitoring/renderers";
import { inboundFlows } from "../../network/flows";
import { placeReplicas } from "../../placement/place";
import { containerArgs } from "../../runtime/dockerRuntime";
import { demandOf, journalFieldOf } from "../../runtime/workload";
import { monitoringSchema } from "./config";
import { hostSpec, logShipping, monitoringWorkloads } from "./specs";
import { JOURNAL_STREAM_FIELDS, VICTORIA_LOGS_JOB, VICTORIA_LOGS_WORKLOAD, victoriaLogsFlags, victoriaLogsSpec, victoriaLogsWorkload } from "./victoriaLogs";

const pi = (name: string, address: string, over: Partial<PiConfig> = {}): PiConfig => ({
    name, address, sshUser: "pi", sshPort: 22, hostKey: "k", model: "pi4", memoryMb: 4096, cpus: 4, storage: "sd", labels: {}, ...over,
});
const logsOptions = (victoriaLogs: Record<string, unknown> = {}) => monitoringSchema.parse({ victoriaLogs });

describe("VictoriaLogs' placement", () => {
    it("goes to an SSD Pi, and every Pi's journal is sent there", () => {
        const pis = [pi("a", "10.0.0.1"), pi("b", "10.0.0.2", { storage: "ssd" })];
        const options = logsOptions();
        const plan = placeReplicas(pis, 512, monitoringWorkloads(pis, options).map(demandOf));
        expect(plan.assignments.get(VICTORIA_LOGS_WORKLOAD)).toEqual(["b"]);
        expect(logShipping(plan, pis, options)).toEqual({ url: "http://10.0.0.2:9428/insert/journald" });
        expect(logShipping(plan, pis, monitoringSchema.parse({}))).toBeUndefined();
    });

    it("refuses a stack without an SSD Pi, naming its own allowSdCard", () => {
        const pis = [pi("a", "10.0.0.1"), pi("b", "10.0.0.2")];
        const options = logsOptions();
        let error: unknown;
        try {
            placeReplicas(pis, 512, monitoringWorkloads(pis, options).map(demandOf));
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(PicloudConfigError);
        expect((error as PicloudConfigError).problems.map((p) => p.key)).toEqual(["picloud:tiers.monitoring.victoriaLogs.allowSdCard"]);
        const allowed = logsOptions({ allowSdCard: true });
        expect(placeReplicas(pis, 512, monitoringWorkloads(pis, allowed).map(demandOf)).assignments.get(VICTORIA_LOGS_WORKLOAD)).toHaveLength(1);
    });

    it("keeps its data with it and has no healthcheck its distroless image could not run", () => {
        const w = victoriaLogsWorkload(logsOptions({ pi: "c" }).victoriaLogs!);
        expect(w.data?.containerPath).toBe("/storage");
        expect(w.pinnedTo).toEqual(["c"]);
        expect(w.healthcheck).toBeUndefined();
        expect(w.metrics).toEqual({ port: 9428, path: "/metrics" });
    });
});

describe("VictoriaLogs' flags", () => {
    it("keep 30 days by default, drop the oldest days before the disk fills, and take the stream fields", () => {
        expect(victoriaLogsFlags(logsOptions().victoriaLogs!, "/storage")).toEqual([
            "-httpListenAddr=:9428",
            "-storageDataPath=/storage",
            "-retentionPeriod=30d",
            "-retention.maxDiskUsagePercent=80",
            "-journald.streamFields=_HOSTNAME,_SYSTEMD_UNIT,CONTAINER_NAME,PICLOUD_LOG_TIER,PICLOUD_LOG_SERVICE,PICLOUD_LOG_APP",
        ]);
        expect(victoriaLogsFlags(logsOptions({ retentionDays: 7, maxDiskUsagePercent: 60, httpPort: 9500 }).victoriaLogs!, "/x")).toEqual(
            expect.arrayContaining(["-httpListenAddr=:9500", "-storageDataPath=/x", "-retentionPeriod=7d", "-retention.maxDiskUsagePercent=60"]),
        );
    });

    it("name the fields Docker's journald driver writes for each container's stream labels", () => {
        // What a container carries into the journal: its labels, the ones named in --log-opt labels, as fields.
        const args = containerArgs({ name: "web", component: "apps", configKey: "k", image: "i", memoryMb: 64, cpus: 0.25, logLabels: { tier: "apps", app: "web", service: "web" } }, 0, "a");
        const passed = (args.logOpts as Record<string, string>).labels.split(",");
        for (const label of LOG_STREAM_LABELS) {
            const dockerLabel = passed.find((l) => l.endsWith(`.${label}`));
            expect(dockerLabel, label).toBeDefined();
            expect(JOURNAL_STREAM_FIELDS).toContain(journalFieldOf(dockerLabel!));
        }
    });

    it("follow moby's rule for journal field names", () => {
        expect(journalFieldOf("picloud.log.tier")).toBe("PICLOUD_LOG_TIER");
        expect(journalFieldOf("com.example/app-name2")).toBe("COM_EXAMPLE_APP_NAME2");
        expect(journalFieldOf("_.x")).toBe("X");
    });
});

describe("VictoriaLogs in the stack", () => {
    it("is a Grafana datasource, and Grafana installs its pinned plugin", () => {
        const doc = parse(renderGrafanaDatasources({ prometheusUrl: "http://prometheus-0:9090", victoriaLogsUrl: "http://10.0.0.2:9428" }));
        expect(doc.datasources).toContainEqual(expect.objectContaining({ uid: GRAFANA_VICTORIA_LOGS_DATASOURCE_UID, type: GRAFANA_VICTORIA_LOGS_PLUGIN.id, url: "http://10.0.0.2:9428", isDefault: false }));
        expect(doc.deleteDatasources).toEqual([{ name: "VictoriaMetrics", orgId: 1 }]);
        const pis = [pi("a", "10.0.0.1", { storage: "ssd" })];
        const grafana = (o: ReturnType<typeof logsOptions>) => monitoringWorkloads(pis, o).find((w) => w.name === "grafana")!;
        expect(grafana(logsOptions()).env?.GF_INSTALL_PLUGINS).toBe(`${GRAFANA_VICTORIA_LOGS_PLUGIN.id} ${GRAFANA_VICTORIA_LOGS_PLUGIN.version}`);
        expect(grafana(monitoringSchema.parse({})).env?.GF_INSTALL_PLUGINS).toBeUndefined();
    });

    it("is watched: a complete contract on its own job, and each Pi's uploads by its host spec", () => {
        const options = logsOptions({ silentMinutes: 7 });
        const spec = victoriaLogsSpec(options.victoriaLogs!, "10.0.0.2");
        expect(monitoringGaps(spec)).toEqual([]);
        expect(spec.scrapeTargets[0].targets).toEqual(["10.0.0.2:9428"]);
        expect(spec.alertRules.every((r) => r.expr.includes(`job="${VICTORIA_LOGS_JOB}"`))).toBe(true);
        const host = pi("a", "10.0.0.1");
        const stopped = hostSpec(host, options.victoriaLogs).alertRules.find((r) => r.alert === "HostLogsStopped");
        expect(stopped?.expr).toBe('time() - picloud_journal_upload_last_success_timestamp_seconds{job="host-a"} > 420');
        expect(hostSpec(host).alertRules.map((r) => r.alert)).not.toContain("HostLogsStopped");
    });

    it("opens its port to every Pi's upload, each Prometheus replica's scrape and the operator, on the Pi it runs on only", () => {
        const { config, plan } = exampleStack("prod");
        const at = plan.placement.assignments.get(VICTORIA_LOGS_WORKLOAD)?.[0];
        expect(at).toBeDefined();
        const network = planNetwork(config, plan, { mgmtNetwork: config.network?.mgmt });
        for (const p of config.pis) {
            const sources = inboundFlows(p.name, network).filter((f) => f.port === 9428).map((f) => (typeof f.from === "object" && "pi" in f.from ? f.from.pi : "zone"));
            // Every Prometheus replica scrapes it.
            const prometheus = plan.placement.assignments.get("prometheus")!;
            expect(prometheus).toHaveLength(2);
            expect(sources.sort(), p.name).toEqual(p.name === at ? [...config.pis.map((q) => q.name), ...prometheus, "zone"].sort() : []);
        }
    });
});

describe("VictoriaLogs' alerts, under promtool", () => {
    const options = logsOptions({ silentMinutes: 5 }).victoriaLogs!;
    const host = hostSpec(pi("a", "10.0.0.1"), options);
    const store = victoriaLogsSpec(options, "10.0.0.2");
    const rule = (spec: typeof host, name: string) => spec.alertRules.find((r) => r.alert === name)!;

    it("HostLogsStopped fires once a Pi's last accepted upload is silentMinutes old, and never while uploads get through", () => {
        const stopped = rule(host, "HostLogsStopped");
        const labels = { job: "host-a", instance: "10.0.0.1:9100" };
        const r = promtoolTestRules(
            [host],
            [
                {
                    interval: "15s",
                    input_series: [
                        // Uploads got through until 60 s, then none: the heartbeat keeps exporting 60.
                        { series: `picloud_journal_upload_last_success_timestamp_seconds{job="host-a",instance="10.0.0.1:9100"}`, values: "15+15x3 60x60" },
                    ],
                    alert_rule_test: [
                        { eval_time: "6m", alertname: "HostLogsStopped", exp_alerts: [] },
                        { eval_time: "8m", alertname: "HostLogsStopped", exp_alerts: [firedAlert(stopped, host.component, labels)] },
                    ],
                },
                {
                    interval: "15s",
                    input_series: [{ series: `picloud_journal_upload_last_success_timestamp_seconds{job="host-a",instance="10.0.0.1:9100"}`, values: "0+15x60" }],
                    alert_rule_test: [{ eval_time: "14m", alertname: "HostLogsStopped", exp_alerts: [] }],
                },
            ],
        );
        expect(r.status, r.out).toBe(0);
    });

    it("VictoriaLogsNoJournalUploads fires after five minutes without a journald entry, not while entries come", () => {
        const none = rule(store, "VictoriaLogsNoJournalUploads");
        const series = (values: string) => ({ series: `vl_rows_ingested_total{job="${VICTORIA_LOGS_JOB}",instance="10.0.0.2:9428",type="journald"}`, values });
        const r = promtoolTestRules(
            [store],
            [
                {
                    interval: "15s",
                    input_series: [series("0+10x20 200x60")],
                    alert_rule_test: [
                        { eval_time: "6m", alertname: "VictoriaLogsNoJournalUploads", exp_alerts: [] },
                        { eval_time: "16m", alertname: "VictoriaLogsNoJournalUploads", exp_alerts: [firedAlert(none, store.component)] },
                    ],
                },
                { interval: "15s", input_series: [series("0+10x80")], alert_rule_test: [{ eval_time: "19m", alertname: "VictoriaLogsNoJournalUploads", exp_alerts: [] }] },
            ],
        );
        expect(r.status, r.out).toBe(0);
    });
});
