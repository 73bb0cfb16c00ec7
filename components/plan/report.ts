import { ATTACHMENT_TYPE } from "../monitoring/contract";
import type { MonitoringCoverage } from "../monitoring/attachment";
import { describeChanges } from "../placement/lock";
import type { RecordedResource } from "./mockRuntime";
import type { PlanResult } from "./plan";

type PlanSuccess = Extract<PlanResult, { ok: true }>;

/** The offline plan as text: resources per component, workloads per Pi, single-Pi loss, notes. */
export function formatPlan(plan: PlanSuccess, outDir?: string): string {
    const lines: string[] = [];
    const piCount = Object.keys(plan.outputs.pis).length;
    lines.push(`picloud offline plan: stack "${plan.stack}", ${piCount} Pi${piCount === 1 ? "" : "s"}, ${plan.resources.length} resources`, "");
    lines.push("Resources by component", ...componentTree(plan.resources), "");
    lines.push("Workloads per Pi (memory and CPU limits against what each Pi has after the OS reserve)", ...piTable(plan), "");
    lines.push("Placement changes (against the stack's placement lock; pulumi up makes only these)");
    lines.push(...(plan.placementChanges.length ? describeChanges(plan.placementChanges).map((l) => `  ${l}`) : ["  none: every replica stays on its Pi"]), "");
    const joining = Object.entries(plan.lock.founders ?? {}).flatMap(([w, formed]) =>
        (plan.lock.replicas[w] ?? []).flatMap((pi, i) => (formed[i] === pi ? [] : [`  ${w}#${i} on ${pi} joins the running cluster (formed on ${formed[i] ?? "fewer members"}): a join step adds it first`])),
    );
    if (joining.length) lines.push("Cluster members that join (away from where their cluster was formed)", ...joining, "");
    lines.push("Monitoring coverage", ...coverageTable(plan.resources), "");
    lines.push("Data tiers (members on their Pis, what writes need, members it may lose)", ...dataTierTable(plan), "");
    lines.push("Lose any one Pi");
    for (const [pi, lost] of Object.entries(plan.outputs.singlePiLoss)) {
        const quorums = lost.filter((l) => l.startsWith("quorum ")).map((l) => l.slice("quorum ".length));
        const tiers = lost.filter((l) => !l.startsWith("quorum "));
        const said = [
            tiers.length ? `tiers left with no replica: ${tiers.join(", ")}` : "every tier keeps a replica",
            ...(quorums.length ? [`quorum lost (no writes until it is back): ${quorums.join(", ")}`] : []),
        ];
        lines.push(`  ${pi}: ${said.join("; ")}`);
        if (tiers.includes("monitoring")) {
            const remedy = Object.keys(plan.outputs.pis).length < 2 ? "a second monitoring replica needs a second Pi" : "picloud:tiers.monitoring.replicas: 2 puts a second replica on another Pi";
            lines.push(`    alerting goes with ${pi}: only the dead man's switch notices (${remedy})`);
        }
    }
    lines.push("", "Policies (as pulumi preview --policy-pack policies would report them)");
    for (const v of plan.verdicts) {
        lines.push(`  ${v.violations.length ? "FAIL" : "pass"}  ${v.policy} (${v.enforcementLevel})`);
        for (const x of v.violations) lines.push(`        ${x.enforcementLevel}: ${x.message.replace(/\n/g, "\n        ")}`);
    }
    if (plan.placeholders.length) {
        lines.push("", `Secrets stood in by placeholders (the plan never reads secrets): ${plan.placeholders.join(", ")}`);
    }
    if (outDir) {
        lines.push("", `Rendered files written to ${outDir}/:`, ...[...plan.files].map((f) => `  ${f.path}`));
    }
    return lines.join("\n") + "\n";
}

function componentTree(resources: readonly RecordedResource[]): string[] {
    const children = new Map<string, RecordedResource[]>();
    for (const r of resources) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
    const lines: string[] = [];
    const walk = (parent: string, depth: number) => {
        for (const c of (children.get(parent) ?? []).filter((r) => !r.custom)) {
            const own = (children.get(c.urn) ?? []).filter((r) => r.custom);
            const counts = new Map<string, number>();
            own.forEach((r) => counts.set(r.type, (counts.get(r.type) ?? 0) + 1));
            const summary = [...counts].map(([type, n]) => (n > 1 ? `${n}× ${type}` : type)).join(", ");
            lines.push(`${"  ".repeat(depth + 1)}${c.type} "${c.name}"${summary ? `: ${summary}` : ""}`);
            walk(c.urn, depth + 1);
        }
    };
    walk("", 0);
    const orphans = (children.get("") ?? []).filter((r) => r.custom);
    orphans.forEach((r) => lines.push(`  ${r.type} "${r.name}" (outside any component)`));
    return lines;
}

/** Component → what its attachment declares; components that run something with none are flagged. */
export function coverageTable(resources: readonly RecordedResource[]): string[] {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const rows: string[][] = [];
    for (const a of resources.filter((r) => r.type === ATTACHMENT_TYPE)) {
        const owner = byUrn.get(a.parent);
        const c = a.outputs?.coverage as MonitoringCoverage | undefined;
        if (!owner || !c) continue;
        rows.push([
            `${owner.type} "${owner.name}"`,
            `${c.jobs.length} job${c.jobs.length === 1 ? "" : "s"}, ${c.targets} target${c.targets === 1 ? "" : "s"}`,
            `${c.alerts.length} alerts`,
            c.dashboard,
            a.outputs?.confirmWithinSeconds ? `within ${a.outputs.confirmWithinSeconds as number} s` : "no",
            Object.entries(c.logLabels).map(([k, v]) => `${k}=${v}`).join(","),
        ]);
    }
    const monitored = new Set(resources.filter((r) => r.type === ATTACHMENT_TYPE).map((r) => r.parent));
    for (const r of resources) {
        const runsSomething = !r.custom && r.type !== ATTACHMENT_TYPE && resources.some((c) => c.parent === r.urn && c.custom);
        if (runsSomething && !monitored.has(r.urn)) rows.push([`${r.type} "${r.name}"`, "NOT MONITORED", "-", "-", "-", "-"]);
    }
    // "confirmed": pulumi up waits until Prometheus reports the component's targets up and rules loaded.
    return table(["component", "scrape targets", "alerts", "dashboard", "confirmed", "log labels"], rows);
}

function table(header: string[], rows: string[][]): string[] {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) => "  " + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
    return [fmt(header), ...rows.map(fmt)];
}

function piTable(plan: PlanSuccess): string[] {
    const rows = Object.entries(plan.outputs.placement).map(([pi, u]) => [
        pi,
        `${u.memoryUsedMb}/${u.memoryBudgetMb} MB (${Math.round((100 * u.memoryUsedMb) / u.memoryBudgetMb)}%)`,
        `${u.cpusUsed}/${u.cpuBudget}`,
        u.replicas.join(", ") || "-",
    ]);
    return table(["Pi", "memory used/budget", "CPU used/budget", "replicas"], rows);
}

/** Each data tier: its members, the quorum its writes need (or failover to a standby), and how many members it may lose. */
function dataTierTable(plan: PlanSuccess): string[] {
    const tiers = Object.entries(plan.outputs.dataTiers);
    if (tiers.length === 0) return ["  none: no tier keeps data"];
    return table(
        ["workload", "tier", "members", "writes need", "may lose"],
        tiers.map(([workload, t]) => [
            workload,
            t.component,
            t.members.join(", "),
            t.quorum === undefined ? (t.members.length > 1 ? "the primary (a standby is promoted)" : "its one member") : `${t.quorum} of ${t.members.length} members`,
            `${t.mayLose} member${t.mayLose === 1 ? "" : "s"}`,
        ]),
    );
}
