import type { PolicyVerdict, PolicyViolation } from "./analyze";

/** The violations one policy reported; throws when the policy is not among the verdicts. */
export function violationsOf(verdicts: readonly PolicyVerdict[], policy: string): readonly PolicyViolation[] {
    const verdict = verdicts.find((v) => v.policy === policy);
    if (!verdict) throw new Error(`no verdict for policy "${policy}"; verdicts: ${verdicts.map((v) => v.policy).join(", ")}`);
    return verdict.violations;
}

/** True when `policy` reported a violation about `urn`. */
export function hasViolation(verdicts: readonly PolicyVerdict[], policy: string, urn: string): boolean {
    return violationsOf(verdicts, policy).some((v) => v.urn === urn);
}

/** True when `policy` reported nothing. */
export function hasNone(verdicts: readonly PolicyVerdict[], policy: string): boolean {
    return violationsOf(verdicts, policy).length === 0;
}
