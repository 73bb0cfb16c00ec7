// The plan's memory figures for the dev stack with every tier on (the example's, plus the cache
// and the bus at their defaults, then the bus's RabbitMQ option too), against dev's three 4 GB Pis: what each tier asks for in
// memory limits, the total against the Pis' memory and against what placement may give out (the
// OS reserve taken off), and whether placement fits it, per Pi, or what it refuses and why.
// Printed, not asserted. Run: npx tsx bench/every-tier-memory.ts
import { planCloud } from "../components/cloud/piCloud";
import { PicloudConfigError } from "../components/config/errors";
import { parseStackConfig } from "../components/config/schema";
import { TIERS } from "../components/tiers/registry";
import { everyTierDocument } from "../test/support/everyTier";

function config(overrides: Record<string, Record<string, unknown>>) {
    const doc = everyTierDocument("dev", { bus: { allowSdCard: true }, ...overrides }) as { config: Record<string, unknown> };
    const values = Object.fromEntries(Object.entries(doc.config).flatMap(([k, v]) => (k.startsWith("picloud:") ? [[k.slice(8), v]] : [])));
    try {
        return parseStackConfig({ values, secretKeys: [] });
    } catch (e) {
        if (!(e instanceof PicloudConfigError)) throw e;
        return parseStackConfig({ values, secretKeys: e.problems.map((p) => p.key.slice(8)) });
    }
}

function report(title: string, overrides: Record<string, Record<string, unknown>>): void {
    const stack = config(overrides);
    const secrets = Object.fromEntries(stack.secretKeys.map((k) => [k, "placeholder"]));
    const installed = stack.pis.reduce((s, p) => s + p.memoryMb, 0);
    const budget = stack.pis.reduce((s, p) => s + p.memoryMb - stack.osReserveMb, 0);
    console.log(`\n${title}`);
    let total = 0;
    for (const tier of TIERS) {
        const demands = [...tier.workloads(stack, secrets).map((w) => ({ mb: w.memoryMb * (w.hostAgent ? stack.pis.length : (w.pinnedTo?.length ?? w.replicas ?? 1)), n: w.name })), ...(tier.hostDemands?.(stack) ?? []).map((d) => ({ mb: d.memoryMb * d.replicas, n: d.name }))];
        const mb = demands.reduce((s, d) => s + d.mb, 0);
        if (mb === 0) continue;
        total += mb;
        console.log(`  ${tier.key.padEnd(13)} ${String(mb).padStart(6)} MB  (${demands.map((d) => `${d.n} ${d.mb}`).join(", ")})`);
    }
    console.log(`  total         ${String(total).padStart(6)} MB of ${installed} MB installed (${((100 * total) / installed).toFixed(0)} %), ${budget} MB after the OS reserve of ${stack.osReserveMb} MB per Pi (${((100 * total) / budget).toFixed(0)} %)`);
    try {
        const plan = planCloud(stack, secrets);
        for (const pi of plan.placement.pis) console.log(`  ${pi.pi}: ${pi.memoryUsedMb} / ${pi.memoryBudgetMb} MB, ${pi.cpusUsed.toFixed(2)} / ${pi.cpuBudget} CPU`);
        console.log("  placement: fits");
    } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        console.log(`  placement: refused: ${message.split("\n")[0].replace(/^invalid picloud config: /, "")}`);
    }
}

report("dev with every tier at its defaults (the cache and the bus added):", {});
report("the same with the cache and the bus at a tenth of a core per node and HAProxy at 0.4:", { cache: { cpus: 0.1 }, bus: { allowSdCard: true, cpus: 0.1 }, loadBalancer: { cpus: 0.4 } });
report("the same with the bus's RabbitMQ option on at its defaults:", { cache: { cpus: 0.1 }, bus: { allowSdCard: true, cpus: 0.1, rabbitmq: { allowSdCard: true } }, loadBalancer: { cpus: 0.4 } });
