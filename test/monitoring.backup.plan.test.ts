/**
 * VictoriaMetrics' backup in the prod stack's resource tree, as `npm run plan` builds it: its
 * resources sit under the store's component, whose monitoring (composed before blob storage
 * exists) covers them, so the policy pack passes the stack and refuses it when they are not
 * covered; the key reaches the Pi only as a secret; the first backup waits for blob storage.
 */
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ATTACHMENT_TYPE } from "../components/monitoring/contract";
import type { RecordedResource } from "../components/plan/mockRuntime";
import { runPlan } from "../components/plan/plan";
import { mandatoryViolations, policyVerdicts } from "../components/plan/policyVerdicts";
import { METRICS_BACKUP_CREDENTIALS, METRICS_BACKUP_RESOLVER, METRICS_RESTORE_TOOL, VMBACKUP_IMAGE } from "../components/tiers/monitoring/metricsBackup";
import { VICTORIA_METRICS } from "../components/tiers/monitoring/victoriaMetrics";
import { shippedPath } from "../components/renderers/remoteCommands";

const plans: Record<string, readonly RecordedResource[]> = {};

beforeAll(async () => {
    for (const stack of ["prod", "dev"]) {
        const plan = await runPlan({ stack, source: { file: path.resolve(__dirname, "..", "stacks", `Pulumi.${stack}.yaml`) } });
        if (!plan.ok) throw new Error(plan.error);
        plans[stack] = plan.resources;
    }
}, 120_000);

const backupResources = (resources: readonly RecordedResource[]) => resources.filter((r) => /-victoria-metrics-(backup|restore-tool)/.test(r.name));

describe("VictoriaMetrics' backup in the prod stack", () => {
    it("sits under the store's component, covered by its monitoring, and the policy pack passes the stack", async () => {
        const resources = plans.prod;
        const store = resources.find((r) => r.type === VICTORIA_METRICS.type)!;
        const mine = backupResources(resources);
        expect(mine.map((r) => r.name).sort()).toEqual(["backup", "backup-credentials", "backup-resolver", "backup-script", "restore-tool"].map((n) => `picloud-monitoring-victoria-metrics-${n}`));
        for (const r of mine) expect(r.parent, r.name).toBe(store.urn);
        const attachment = resources.find((r) => r.type === ATTACHMENT_TYPE && r.parent === store.urn)!;
        for (const r of mine) expect(attachment.inputs.covers as string[], r.name).toContain(r.name);
        expect(mandatoryViolations(await policyVerdicts(resources))).toEqual([]);
    });

    it("is refused by the policy pack when its monitoring does not cover them: the script installs a timer", async () => {
        const uncovered = plans.prod.map((r) =>
            r.type === ATTACHMENT_TYPE && Array.isArray(r.inputs.covers) ? { ...r, inputs: { ...r.inputs, covers: (r.inputs.covers as string[]).filter((c) => !/-victoria-metrics-(backup|restore-tool)/.test(c)) } } : r,
        );
        const violations = mandatoryViolations(await policyVerdicts(uncovered));
        expect(violations.map((v) => v.message).join("\n")).toContain('does not list "picloud-monitoring-victoria-metrics-backup-script" in covers');
    });

    it("ships the key's credentials on stdin, a secret once known, unlogged, never in a command", () => {
        const credentials = plans.prod.find((r) => r.name.endsWith("-victoria-metrics-backup-credentials"))!;
        expect(shippedPath(credentials.inputs.create)).toBe(METRICS_BACKUP_CREDENTIALS);
        // Unknown until the keys exist; known, it is a secret.
        expect(typeof credentials.inputs.stdin === "string" && !credentials.secretInputs.includes("stdin"), "the credentials travel in plain text").toBe(false);
        expect(credentials.inputs.logging).toBe("none");
        for (const r of backupResources(plans.prod)) expect(JSON.stringify([r.inputs.create, r.inputs.delete]), r.name).not.toMatch(/aws_secret_access_key|AWS_SECRET_ACCESS_KEY/);
    });

    it("runs its first backup once blob storage is up and the credentials are in place, and installs the restore tool", () => {
        const run = plans.prod.find((r) => r.name === "picloud-monitoring-victoria-metrics-backup")!;
        const urnOf = (name: string) => plans.prod.find((r) => r.name === name)!.urn;
        // Blob storage's init step (the bucket and the key), the credentials, VictoriaMetrics running.
        for (const name of ["picloud-blob-init", "picloud-monitoring-victoria-metrics-backup-credentials", "picloud-monitoring-victoria-metrics-victoria-metrics-0"]) expect(run.dependencies, name).toContain(urnOf(name));
        expect(run.inputs.delete).toContain("systemctl disable --now picloud-backup-victoria-metrics.timer");
        const script = plans.prod.find((r) => r.name === "picloud-monitoring-victoria-metrics-backup-script")!;
        expect(script.inputs.stdin as string).toContain(VMBACKUP_IMAGE);
        // prod has the registry: blob storage's name resolves through the store's Pi's own CoreDNS.
        const resolver = plans.prod.find((r) => r.name === "picloud-monitoring-victoria-metrics-backup-resolver")!;
        expect(shippedPath(resolver.inputs.create)).toBe(METRICS_BACKUP_RESOLVER);
        expect(resolver.inputs.stdin).toBe(`nameserver ${(run.inputs.connection as { host: string }).host}\n`);
        expect(run.dependencies).toContain(resolver.urn);
        const tool = plans.prod.find((r) => r.name.endsWith("-victoria-metrics-restore-tool"))!;
        expect(shippedPath(tool.inputs.create)).toBe(METRICS_RESTORE_TOOL);
    });

    it("is not there in a stack without VictoriaMetrics' backup", () => {
        expect(backupResources(plans.dev)).toEqual([]);
    });
});
