/**
 * Monitoring that survives its Pi, as the dev stack deploys it (under the mock runtime): a replica
 * of Prometheus, Alertmanager and Grafana on dev-1 and on dev-3, every attachment delivered,
 * reloaded and confirmed on each, each Pi's resources named after it, the first's carrying the
 * names they had with one monitoring Pi. The real engine's side of it is the engine lane's step l;
 * the Alertmanager cluster's deduplication, for real, is monitoring.alertmanagerCluster.test.ts.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { readPlacementLock } from "../components/cloud/program";
import { runPlan } from "../components/plan/plan";
import { monitoringEndpointFromOutput } from "../components/monitoring/attachment";
import { MONITORING_DIRS } from "../components/tiers/monitoring/specs";

const stackFile = path.resolve(__dirname, "..", "stacks", "Pulumi.dev.yaml");
type Planned = Extract<Awaited<ReturnType<typeof runPlan>>, { ok: true }>;

describe("the dev stack's two monitoring replicas", () => {
    let plan: Planned;
    beforeAll(async () => {
        const result = await runPlan({ stack: "dev", source: { file: stackFile } });
        if (!result.ok) throw new Error(result.error);
        plan = result;
    });
    const named = (name: string) => {
        const r = plan.resources.find((x) => x.name === name);
        if (!r) throw new Error(`no resource ${name}`);
        return r;
    };
    const host = (name: string) => (named(name).inputs.connection as { host: string }).host;
    const file = (pi: string, remote: string) => plan.files.find((f) => f.path === path.join(pi, remote.slice(1)))?.text;

    it("delivers every attachment to both monitoring Pis, each Pi's copy named after it", () => {
        const attachments = plan.resources.filter((r) => r.type === "picloud:monitoring:Attachment");
        expect(attachments.length).toBeGreaterThan(8);
        for (const a of attachments) {
            for (const [pi, address] of [["dev-1", "192.168.10.11"], ["dev-3", "192.168.10.13"]]) {
                for (const kind of ["file-sd", "rules", "dashboard", "reload", "confirmed"]) expect(host(`${a.name}-${kind}-${pi}`), `${a.name} ${kind} on ${pi}`).toBe(address);
            }
            expect(plan.resources.some((r) => r.name === `${a.name}-file-sd-dev-2`)).toBe(false);
        }
    });

    it("carries the first replica's resources over from the names they had with one monitoring Pi, and only the first's", () => {
        expect(named("picloud-registry-monitoring-rules-dev-1").aliases).toEqual(["picloud-registry-monitoring-rules"]);
        expect(named("picloud-registry-monitoring-rules-dev-3").aliases ?? []).toEqual([]);
        expect(named("picloud-monitoring-prometheus-config-dev-1").aliases).toEqual(["picloud-monitoring-prometheus-config"]);
        expect(named("picloud-monitoring-reload-dev-3").aliases ?? []).toEqual([]);
    });

    it("waits on each Pi for the Prometheus beside it: each confirmation depends on its own Pi's container", () => {
        const container = (i: number) => named(`picloud-monitoring-prometheus-${i}`).urn;
        expect(named("picloud-registry-monitoring-confirmed-dev-1").dependencies).toContain(container(0));
        expect(named("picloud-registry-monitoring-confirmed-dev-1").dependencies).not.toContain(container(1));
        expect(named("picloud-registry-monitoring-confirmed-dev-3").dependencies).toContain(container(1));
    });

    it("gives both Prometheus replicas one prometheus.yml: both scrape both, alert both Alertmanagers, and carry no replica label", () => {
        const config = file("dev-1", `${MONITORING_DIRS.prometheusConfig}/prometheus.yml`)!;
        expect(file("dev-3", `${MONITORING_DIRS.prometheusConfig}/prometheus.yml`)).toBe(config);
        const doc = YAML.parse(config);
        expect(doc.alerting.alertmanagers[0].static_configs[0].targets).toEqual(["192.168.10.11:9093", "192.168.10.13:9093"]);
        expect(doc.scrape_configs.find((j: { job_name: string }) => j.job_name === "prometheus").static_configs[0].targets).toEqual(["192.168.10.11:9090", "192.168.10.13:9090"]);
        expect(Object.keys(doc.global.external_labels)).toEqual(["cloud"]);
    });

    it("points each Grafana at the Prometheus on its own Pi, and restarts the Grafana there", () => {
        const datasource = (pi: string) => YAML.parse(file(pi, `${MONITORING_DIRS.grafanaProvisioning}/datasources/picloud.yml`)!).datasources.find((d: { name: string }) => d.name === "Prometheus").url;
        expect(datasource("dev-1")).toBe("http://prometheus-0:9090");
        expect(datasource("dev-3")).toBe("http://prometheus-1:9090");
        expect(named("picloud-monitoring-grafana-restart-dev-3").inputs.create).toContain("docker restart grafana-1");
    });

    it("runs the Alertmanagers as a cluster: each advertises its Pi, joins the other and publishes gossip on tcp and udp", () => {
        const am = (i: number) => named(`picloud-monitoring-alertmanager-${i}`).inputs as { command: string[]; ports: { external: number; protocol: string }[] };
        expect(am(0).command).toEqual(expect.arrayContaining(["--cluster.advertise-address=192.168.10.11:9094", "--cluster.peer=192.168.10.13:9094"]));
        expect(am(1).command).toEqual(expect.arrayContaining(["--cluster.advertise-address=192.168.10.13:9094", "--cluster.peer=192.168.10.11:9094"]));
        expect(am(1).ports.filter((p) => p.external === 9094).map((p) => p.protocol).sort()).toEqual(["tcp", "udp"]);
    });

    it("publishes every monitoring Pi for other stacks, and another stack's endpoint built from it delivers to both", () => {
        const output = plan.outputs.monitoring;
        expect(output.replicas?.map((r) => [r.pi, r.host])).toEqual([["dev-1", "192.168.10.11"], ["dev-3", "192.168.10.13"]]);
        // The first replica's as the fields a release with one monitoring Pi published, for consumers of that shape.
        expect(output.host).toBe("192.168.10.11");
        expect(monitoringEndpointFromOutput(output, "key").replicas.map((r) => r.pi)).toEqual(["dev-1", "dev-3"]);
    });
});

describe("a stack deployed with one monitoring Pi, on its next plan", () => {
    it("keeps the running replica where its data is and only adds the second, on another Pi: the first replica's slot is sticky", async () => {
        const lock = readPlacementLock(path.resolve(__dirname, "..", "stacks", "placement.dev.json"))!;
        // The lock a release with one monitoring Pi wrote: the central services on dev-1 alone.
        const before = { ...lock, replicas: { ...lock.replicas, prometheus: ["dev-1"], alertmanager: ["dev-1"], grafana: ["dev-1"] } };
        const plan = await runPlan({ stack: "dev", source: { file: stackFile }, placement: { lock: before } });
        if (!plan.ok) throw new Error(plan.error);
        const moves = plan.placementChanges.filter((c) => ["prometheus", "alertmanager", "grafana"].includes(c.workload));
        expect(moves.map((c) => [c.workload, c.replica, c.from, c.to])).toEqual([
            ["alertmanager", 1, undefined, "dev-3"],
            ["grafana", 1, undefined, "dev-3"],
            ["prometheus", 1, undefined, "dev-3"],
        ]);
    });
});
