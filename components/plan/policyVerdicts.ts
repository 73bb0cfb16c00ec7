import { analyzeStack, PolicyVerdict, PolicyViolation } from "../../policies/testing/analyze";
import type { RecordedResource } from "./mockRuntime";

export type { PolicyVerdict, PolicyViolation } from "../../policies/testing/analyze";

/** A violation that refuses the stack, with the policy that reported it. */
export interface MandatoryViolation extends PolicyViolation {
    readonly policy: string;
}

/**
 * What the picloud policy pack says about a planned stack: the real analyzer run in-process over
 * the recorded resource tree, one verdict per policy, as `pulumi preview --policy-pack policies`
 * would report them.
 */
export function policyVerdicts(resources: readonly RecordedResource[]): Promise<PolicyVerdict[]> {
    return analyzeStack(resources);
}

/** The violations that would make `pulumi preview`/`up` refuse the stack; empty when it passes. */
export function mandatoryViolations(verdicts: readonly PolicyVerdict[]): MandatoryViolation[] {
    return verdicts.flatMap((v) => v.violations.filter((x) => x.enforcementLevel === "mandatory").map((x) => ({ policy: v.policy, ...x })));
}
