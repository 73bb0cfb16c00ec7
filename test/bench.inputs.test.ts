import { describe, expect, it } from "vitest";
import { syntheticStack } from "../bench/syntheticStack";
import { runPlan } from "../components/plan/plan";

// The benchmarks only measure something while their generated stacks are valid picloud stacks.
describe("benchmark stacks", () => {
    it("plan and pass the policy pack at a small size", async () => {
        const plan = await runPlan({ stack: "bench-check", source: { document: syntheticStack(4) } });
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.policiesPass).toBe(true);
        expect(Object.keys(plan.outputs.pis)).toHaveLength(4);
    });
});
