import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { tempDirs } from "../../test/support/tempDirs";
import { validator } from "../../test/support/validators";
import { type AlertRule, LIVENESS, type MonitoringSpec, type ScrapeTarget, alertPrefix, monitoringGaps, targetDownRule } from "./contract";
import {
    type AlertmanagerConfigInput,
    DEADMANSSWITCH_RECEIVER,
    DEFAULT_RECEIVER,
    FILE_SD_JOB_NAME,
    GRAFANA_PROMETHEUS_DATASOURCE_UID,
    NULL_RECEIVER,
    renderAlertmanagerConfig,
    renderFileSd,
    renderGrafanaDashboard,
    renderGrafanaDashboardProvider,
    renderGrafanaDatasources,
    renderPrometheusConfig,
    renderRuleFile,
} from "./renderers";

function run(bin: "promtool" | "amtool", args: string[], cwd?: string): { status: number | null; stdout: string; out: string } {
    const r = spawnSync(validator(bin), args, { cwd, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, out: `${r.stdout}${r.stderr}` };
}

const tmp = tempDirs("picloud-monitoring-");

function spec(component: string, targets: ScrapeTarget[], extraRules: AlertRule[] = []): MonitoringSpec {
    return {
        component,
        scrapeTargets: targets,
        alertRules: [
            ...targets.map((t) => targetDownRule(t)),
            ...extraRules,
            {
                alert: `${alertPrefix(component)}Errors`,
                expr: `sum(rate(http_requests_total{component="${component}",code=~"5.."}[5m])) > 1`,
                for: "5m",
                severity: "warning",
                summary: `${component} serves errors`,
                description: `More than one 5xx per second from ${component} for 5 minutes.`,
            },
        ],
        dashboard: {
            uid: `${component}-dash`,
            title: component,
            panels: [
                { title: "Up", expr: `up{component="${component}"}`, kind: "stat" },
                { title: "Errors", expr: `rate(http_requests_total{component="${component}"}[5m])`, unit: "reqps" },
                { title: "Latency", expr: `histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))`, unit: "s" },
            ],
        },
        logLabels: { component },
    };
}

const appsHelloTarget: ScrapeTarget = { job: "apps-hello", targets: ["10.0.0.21:8080", "10.0.0.22:8080"], labels: { tier: "apps" } };
const nodeTarget: ScrapeTarget = { job: "node_exporter", targets: ["10.0.0.11:9100"], metricsPath: "/metrics", labels: { pi: "dev-1" } };
const alertmanagerTarget: ScrapeTarget = { job: "alertmanager", targets: ["10.0.0.10:9093"], scheme: "https", metricsPath: "/am/metrics" };
// Prometheus scrapes itself through the static "prometheus" job; the monitoring component owns its alert.
const prometheusSelf: ScrapeTarget = { job: "prometheus", targets: ["10.0.0.10:9090"] };

const specs: MonitoringSpec[] = [
    spec("apps-hello", [appsHelloTarget]),
    spec("pihost-dev-1", [nodeTarget]),
    spec("monitoring", [alertmanagerTarget], [targetDownRule(prometheusSelf)]),
];

/** Writes prometheus.yml, the rule files and the file_sd documents as the monitoring Pi would hold them. */
function writePrometheusTree(alertmanagers: string[] = ["10.0.0.10:9093"]): string {
    const dir = tmp();
    const fileSdDir = path.join(dir, "file_sd");
    const rulesDir = path.join(dir, "rules");
    mkdirSync(fileSdDir);
    mkdirSync(rulesDir);
    for (const s of specs) {
        writeFileSync(path.join(fileSdDir, `${s.component}.json`), renderFileSd(s));
        writeFileSync(path.join(rulesDir, `${s.component}.yml`), renderRuleFile(s));
    }
    const config = renderPrometheusConfig({
        scrapeIntervalSeconds: 15,
        evaluationIntervalSeconds: 15,
        alertmanagers,
        fileSdDir,
        rulesDir,
        externalLabels: { cloud: "picloud", stack: "dev" },
        prometheusTargets: prometheusSelf.targets,
    });
    writeFileSync(path.join(dir, "prometheus.yml"), config);
    return dir;
}

const baseInput = {
    scrapeIntervalSeconds: 30,
    evaluationIntervalSeconds: 20,
    alertmanagers: ["10.0.0.10:9093"],
    fileSdDir: "/etc/prometheus/file_sd",
    rulesDir: "/etc/prometheus/rules",
    externalLabels: { cloud: "picloud" },
    prometheusTargets: ["10.0.0.10:9090"],
};

describe("the specs used here", () => {
    it("are complete monitoring contracts", () => {
        for (const s of specs) expect(monitoringGaps(s)).toEqual([]);
    });
});

describe("renderPrometheusConfig", () => {
    it("passes promtool check config, which also loads every rule file and file_sd document", () => {
        const dir = writePrometheusTree();
        const r = run("promtool", ["check", "config", path.join(dir, "prometheus.yml")]);
        expect(r.out).toContain("SUCCESS: 3 rule files found");
        expect(r.status, r.out).toBe(0);
    });

    it("is still valid without any Alertmanager", () => {
        const dir = writePrometheusTree([]);
        const r = run("promtool", ["check", "config", path.join(dir, "prometheus.yml")]);
        expect(r.status, r.out).toBe(0);
        expect(parse(renderPrometheusConfig({ ...baseInput, alertmanagers: [] })).alerting).toBeUndefined();
    });

    it("promtool rejects a broken file_sd document, so the check above really covers them", () => {
        const dir = writePrometheusTree();
        writeFileSync(path.join(dir, "file_sd", "broken.json"), JSON.stringify([{ targets: ["a:1"], labels: { "bad-name": "x" } }]));
        const r = run("promtool", ["check", "config", path.join(dir, "prometheus.yml")]);
        expect(r.status).not.toBe(0);
        expect(r.out).toContain("bad-name");
    });

    it("gives each discovered target its component's job, path and scheme, not the file_sd job name", () => {
        const dir = writePrometheusTree();
        // promtool waits the whole timeout for results; file_sd reads its files at once, so 3s is plenty.
        const r = run("promtool", ["check", "service-discovery", "--timeout=3s", path.join(dir, "prometheus.yml"), FILE_SD_JOB_NAME]);
        expect(r.status, r.out).toBe(0);
        const discovered = JSON.parse(r.stdout) as { labels: Record<string, string> }[];
        const byInstance = new Map(discovered.map((t) => [t.labels.instance, t.labels]));
        const expected = specs.flatMap((s) => s.scrapeTargets.flatMap((t) => t.targets.map((address) => ({ address, t, component: s.component }))));
        expect(byInstance.size).toBe(expected.length);
        for (const { address, t, component } of expected) {
            expect(byInstance.get(address)).toMatchObject({
                job: t.job,
                component,
                __metrics_path__: t.metricsPath ?? "/metrics",
                __scheme__: t.scheme ?? "http",
                ...t.labels,
            });
        }
        expect(discovered.some((t) => t.labels.job === FILE_SD_JOB_NAME)).toBe(false);
        // Prometheus scrapes each at the liveness interval from its file, not the global one.
        for (const t of discovered) expect(t.labels).toMatchObject({ __scrape_interval__: `${LIVENESS.scrapeIntervalSeconds}s`, __scrape_timeout__: `${LIVENESS.scrapeTimeoutSeconds}s` });
    });

    it("renders the global section, rule glob, alerting and both scrape jobs", () => {
        const doc = parse(renderPrometheusConfig(baseInput));
        expect(doc.global).toEqual({ scrape_interval: "30s", evaluation_interval: "20s", external_labels: { cloud: "picloud" } });
        expect(doc.rule_files).toEqual(["/etc/prometheus/rules/*.yml"]);
        expect(doc.alerting.alertmanagers[0].static_configs[0].targets).toEqual(["10.0.0.10:9093"]);
        expect(doc.scrape_configs).toHaveLength(2);
        expect(doc.scrape_configs[0]).toEqual({ job_name: "prometheus", scrape_interval: "5s", scrape_timeout: "4s", static_configs: [{ targets: ["10.0.0.10:9090"] }] });
        expect(doc.scrape_configs[1].file_sd_configs[0].files).toEqual(["/etc/prometheus/file_sd/*.json"]);
    });

    it("refuses intervals Prometheus cannot express", () => {
        expect(() => renderPrometheusConfig({ ...baseInput, scrapeIntervalSeconds: 0 })).toThrow(/scrapeIntervalSeconds/);
        expect(() => renderPrometheusConfig({ ...baseInput, evaluationIntervalSeconds: 1.5 })).toThrow(/evaluationIntervalSeconds/);
    });
});

describe("renderFileSd", () => {
    it("is one target group per scrape target, with the contract's labels winning over free-form ones", () => {
        const s = spec("apps-hello", [{ ...appsHelloTarget, labels: { tier: "apps", job: "hijack", component: "hijack", __scrape_interval__: "1h" } }, { ...nodeTarget, bulk: true }]);
        const groups = JSON.parse(renderFileSd(s));
        expect(groups).toEqual([
            {
                targets: appsHelloTarget.targets,
                labels: { tier: "apps", job: "apps-hello", component: "apps-hello", __metrics_path__: "/metrics", __scheme__: "http", __scrape_interval__: "5s", __scrape_timeout__: "4s" },
            },
            {
                targets: nodeTarget.targets,
                labels: { pi: "dev-1", job: "node_exporter", component: "apps-hello", __metrics_path__: "/metrics", __scheme__: "http" },
            },
        ]);
    });
});

describe("renderRuleFile", () => {
    it("passes promtool check rules for every component", () => {
        const dir = tmp();
        for (const s of specs) {
            const file = path.join(dir, `${s.component}.yml`);
            writeFileSync(file, renderRuleFile(s));
            const r = run("promtool", ["check", "rules", file]);
            expect(r.status, r.out).toBe(0);
            expect(r.out).toContain(`SUCCESS: ${s.alertRules.length} rules found`);
        }
    });

    it("promtool rejects an invalid expression, so the check above can fail", () => {
        const dir = tmp();
        const bad = spec("apps-hello", [appsHelloTarget], [{ alert: "Bad", expr: "up{", severity: "info", summary: "s", description: "d" }]);
        const file = path.join(dir, "bad.yml");
        writeFileSync(file, renderRuleFile(bad));
        expect(run("promtool", ["check", "rules", file]).status).not.toBe(0);
    });

    it("puts one group named after the component, with severity and component labels", () => {
        const doc = parse(renderRuleFile(specs[0]));
        expect(doc.groups).toHaveLength(1);
        expect(doc.groups[0].name).toBe("apps-hello");
        expect(doc.groups[0].rules[0]).toEqual({
            alert: "AppsHelloTargetDown",
            expr: 'up{job="apps-hello"} == 0',
            for: LIVENESS.targetDownFor,
            labels: { severity: "critical", component: "apps-hello" },
            annotations: { summary: specs[0].alertRules[0].summary, description: specs[0].alertRules[0].description },
        });
    });

    // Unit tests in promtool's own format: the alert is pending before `for`, fires after it with
    // the expanded annotations, and never fires while the target answers.
    const downCases = [
        { s: specs[0], t: appsHelloTarget },
        { s: specs[1], t: nodeTarget },
        { s: specs[2], t: alertmanagerTarget },
        { s: specs[2], t: prometheusSelf },
    ];

    function ruleTest(s: MonitoringSpec, t: ScrapeTarget, upValues: string, firesAt2m: boolean): object {
        const rule = targetDownRule(t);
        const instance = t.targets[0];
        return {
            interval: `${LIVENESS.scrapeIntervalSeconds}s`,
            input_series: [{ series: `up{job="${t.job}", instance="${instance}"}`, values: upValues }],
            alert_rule_test: [
                // Pending, not firing, until up has been 0 for the whole `for`.
                { eval_time: "5s", alertname: rule.alert, exp_alerts: [] },
                {
                    eval_time: "15s",
                    alertname: rule.alert,
                    exp_alerts: firesAt2m
                        ? [
                              {
                                  exp_labels: { severity: "critical", component: s.component, job: t.job, instance },
                                  exp_annotations: {
                                      summary: `${t.job} target ${instance} is down`,
                                      description: `Prometheus cannot scrape ${instance} of job ${t.job}: the process, its Pi or the network between them is down.`,
                                  },
                              },
                          ]
                        : [],
                },
            ],
        };
    }

    function promtoolTestRules(tests: object[]): { status: number | null; out: string } {
        const dir = tmp();
        for (const s of specs) writeFileSync(path.join(dir, `${s.component}.yml`), renderRuleFile(s));
        const doc = { rule_files: specs.map((s) => `${s.component}.yml`), evaluation_interval: `${LIVENESS.evaluationIntervalSeconds}s`, tests };
        writeFileSync(path.join(dir, "test.yml"), JSON.stringify(doc));
        return run("promtool", ["test", "rules", "test.yml"], dir);
    }

    it("fires target-down after its `for` for every component, and not while up == 1 nor for one failed scrape", () => {
        const tests = downCases.flatMap(({ s, t }) => [ruleTest(s, t, "0x20", true), ruleTest(s, t, "1x20", false), ruleTest(s, t, "1 0 1x20", false)]);
        const r = promtoolTestRules(tests);
        expect(r.status, r.out).toBe(0);
        expect(r.out).toContain("SUCCESS");
    });

    it("promtool test rules fails when the expectation is wrong (the test above can fail)", () => {
        const r = promtoolTestRules([ruleTest(specs[0], appsHelloTarget, "1x20", true)]);
        expect(r.status).not.toBe(0);
        expect(r.out).toContain("AppsHelloTargetDown");
    });
});

describe("renderAlertmanagerConfig", () => {
    const full: AlertmanagerConfigInput = {
        webhookUrls: ["http://10.0.0.10:8080/hook", "http://10.0.0.10:8081/hook"],
        email: { to: "ops@example.org", from: "picloud@example.org", smarthost: "smtp.example.org:587", authUsername: "picloud", authPasswordFile: "/etc/alertmanager/smtp_password" },
        deadMansSwitchUrl: "https://hc-ping.example.org/abc",
    };
    const variants: Record<string, AlertmanagerConfigInput> = {
        "no receivers at all": { webhookUrls: [] },
        "webhooks only": { webhookUrls: full.webhookUrls },
        "email only": { webhookUrls: [], email: { to: "ops@example.org", from: "picloud@example.org", smarthost: "smtp.example.org:25" } },
        "dead man's switch only": { webhookUrls: [], deadMansSwitchUrl: full.deadMansSwitchUrl },
        everything: full,
    };

    function write(input: AlertmanagerConfigInput): string {
        const file = path.join(tmp(), "alertmanager.yml");
        writeFileSync(file, renderAlertmanagerConfig(input));
        return file;
    }

    function routeOf(file: string, labels: string[]): string {
        const r = run("amtool", ["config", "routes", "test", `--config.file=${file}`, ...labels]);
        expect(r.status, r.out).toBe(0);
        return r.out.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("Warning:")).join("\n").trim();
    }

    for (const [name, input] of Object.entries(variants)) {
        it(`passes amtool check-config with ${name}`, () => {
            const r = run("amtool", ["check-config", write(input)]);
            expect(r.status, r.out).toBe(0);
            expect(r.out).toContain("SUCCESS");
        });
    }

    it("amtool rejects a route to an undeclared receiver, so the checks above can fail", () => {
        const doc = parse(renderAlertmanagerConfig(full));
        doc.route.routes[0].receiver = "nobody";
        const file = path.join(tmp(), "alertmanager.yml");
        writeFileSync(file, JSON.stringify(doc));
        expect(run("amtool", ["check-config", file]).status).not.toBe(0);
    });

    it("sends Watchdog to the dead man's switch, or drops it when there is none", () => {
        expect(routeOf(write(full), ["alertname=Watchdog", "severity=info"])).toBe(DEADMANSSWITCH_RECEIVER);
        expect(routeOf(write({ webhookUrls: full.webhookUrls }), ["alertname=Watchdog", "severity=info"])).toBe(NULL_RECEIVER);
        const watchdog = parse(renderAlertmanagerConfig(full)).route.routes[0];
        expect(watchdog.repeat_interval).toBe("1m");
        expect(parse(renderAlertmanagerConfig(full)).receivers.find((r: { name: string }) => r.name === DEADMANSSWITCH_RECEIVER).webhook_configs[0].url).toBe(full.deadMansSwitchUrl);
    });

    it("notifies a critical group, new or open, after a short wait, a warning group after 30 s", () => {
        const routes = parse(renderAlertmanagerConfig(full)).route.routes as { matchers: string[]; group_wait?: string; group_interval?: string }[];
        expect(routes.find((r) => r.matchers.includes('severity="critical"'))).toMatchObject({ group_wait: LIVENESS.criticalGroupWait, group_interval: LIVENESS.criticalGroupInterval });
        expect(routes.find((r) => r.matchers.includes('severity="warning"'))?.group_wait).toBeUndefined();
        expect(parse(renderAlertmanagerConfig(full)).route.group_wait).toBe("30s");
    });

    it("routes critical and warning to the default receiver and drops info", () => {
        const file = write(full);
        expect(routeOf(file, ["alertname=AppsHelloTargetDown", "severity=critical", "component=apps-hello"])).toBe(DEFAULT_RECEIVER);
        expect(routeOf(file, ["alertname=AppsHelloErrors", "severity=warning", "component=apps-hello"])).toBe(DEFAULT_RECEIVER);
        expect(routeOf(file, ["alertname=Something", "severity=info"])).toBe(NULL_RECEIVER);
        const doc = parse(renderAlertmanagerConfig(full));
        expect(doc.route.group_by).toEqual(["alertname", "component"]);
        const dflt = doc.receivers.find((r: { name: string }) => r.name === DEFAULT_RECEIVER);
        expect(dflt.webhook_configs.map((w: { url: string }) => w.url)).toEqual(full.webhookUrls);
        expect(dflt.email_configs[0]).toMatchObject({ to: "ops@example.org", auth_username: "picloud", auth_password_file: "/etc/alertmanager/smtp_password" });
    });

    it("never inlines the SMTP password", () => {
        expect(renderAlertmanagerConfig(full)).not.toMatch(/auth_password:|auth_secret|password:\s/);
    });

    it("lets a critical alert inhibit warnings of the same component", () => {
        expect(parse(renderAlertmanagerConfig(full)).inhibit_rules).toEqual([
            { source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ["component"] },
        ]);
    });
});

describe("Grafana provisioning", () => {
    it("provisions Prometheus as the default datasource under the fixed uid", () => {
        const doc = parse(renderGrafanaDatasources({ prometheusUrl: "http://10.0.0.10:9090" }));
        expect(doc.apiVersion).toBe(1);
        expect(doc.datasources).toHaveLength(1);
        expect(doc.datasources[0]).toMatchObject({ type: "prometheus", uid: GRAFANA_PROMETHEUS_DATASOURCE_UID, url: "http://10.0.0.10:9090", isDefault: true, access: "proxy" });
    });

    it("points the dashboard provider at the dashboards directory", () => {
        const doc = parse(renderGrafanaDashboardProvider({ dashboardsDir: "/var/lib/grafana/dashboards" }));
        expect(doc.apiVersion).toBe(1);
        expect(doc.providers[0]).toMatchObject({ type: "file", options: { path: "/var/lib/grafana/dashboards" } });
    });

    it("lays dashboard panels out on the 24-column grid without overlap, each querying Prometheus", () => {
        const d = specs[0].dashboard;
        const json = JSON.parse(renderGrafanaDashboard(d));
        expect(json).toMatchObject({ uid: d.uid, title: d.title });
        expect(json.panels).toHaveLength(d.panels.length);
        const cells = new Set<string>();
        json.panels.forEach((p: { type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets: { expr: string; datasource: { uid: string } }[]; fieldConfig: { defaults: { unit?: string } } }, i: number) => {
            const src = d.panels[i];
            expect(p.type).toBe(src.kind ?? "timeseries");
            expect(p.title).toBe(src.title);
            expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
            for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
                for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
                    expect(cells.has(`${x},${y}`), `panel ${i} overlaps at ${x},${y}`).toBe(false);
                    cells.add(`${x},${y}`);
                }
            }
            expect(p.targets).toHaveLength(1);
            expect(p.targets[0]).toMatchObject({ expr: src.expr, datasource: { type: "prometheus", uid: GRAFANA_PROMETHEUS_DATASOURCE_UID } });
            expect(p.fieldConfig.defaults.unit).toBe(src.unit);
        });
        expect(new Set(json.panels.map((p: { id: number }) => p.id)).size).toBe(d.panels.length);
    });
});
