import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { AlertRule, MonitoringSpec } from "../../components/monitoring/contract";
import { renderRuleFile } from "../../components/monitoring/renderers";
import { validator } from "./validators";

/**
 * `promtool test rules` on the rule files of `specs`, each as the monitoring tier renders it, with
 * `tests` (promtool's test groups), at an evaluation interval of 15 s (longer for tests that span
 * days, which would otherwise evaluate every rule thousands of times). Its folder goes at once.
 */
export function promtoolTestRules(specs: readonly MonitoringSpec[], tests: readonly object[], evaluationInterval = "15s"): { status: number | null; out: string } {
    const dir = mkdtempSync(path.join(tmpdir(), "picloud-rules-"));
    try {
        for (const s of specs) writeFileSync(path.join(dir, `${s.component}.yml`), renderRuleFile(s));
        writeFileSync(path.join(dir, "test.yml"), JSON.stringify({ rule_files: specs.map((s) => `${s.component}.yml`), evaluation_interval: evaluationInterval, tests }));
        const r = spawnSync(validator("promtool"), ["test", "rules", "test.yml"], { cwd: dir, encoding: "utf8", timeout: 30_000 });
        return { status: r.status, out: `${r.stdout}${r.stderr}` };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * An alert as promtool should see it fire: its labels (with the rule's severity and `component`),
 * and its annotations with `{{ $labels.x }}` and `{{ $value ... }}` filled in from `labels` and
 * `value` (as the template's function prints it).
 */
export function firedAlert(rule: AlertRule, component: string, labels: Readonly<Record<string, string>> = {}, value = ""): object {
    const fill = (text: string) => text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k]).replace(/\{\{ \$value[^}]*\}\}/g, value);
    return { exp_labels: { ...labels, severity: rule.severity, component }, exp_annotations: { summary: fill(rule.summary), description: fill(rule.description) } };
}
