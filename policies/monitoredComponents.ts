import { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { ATTACHMENT_TYPE } from "../components/monitoring/contract";
import { WORKLOAD_TYPES } from "./workloadTypes";

const SEE_README = `(see README "Monitoring your own component")`;

/**
 * MANDATORY. Refuses a stack where a picloud component that runs something (has a custom resource
 * as a direct child) has no `picloud:monitoring:Attachment` child, or where a workload (docker
 * container or service, Kubernetes workload) has no ancestor component with such a child. Any
 * component type counts as monitored when it carries an Attachment, so users' own components
 * attach the same way.
 *
 * Reads only types, parent links and whether a resource has a provider (the engine gives every
 * custom resource one and components none): all known in preview, so the policy never reads a
 * prop and is never downgraded to advisory there.
 */
export const monitoredComponents: StackValidationPolicy = {
    name: "picloud-components-monitored",
    description: `Every picloud component that runs something carries a ${ATTACHMENT_TYPE} child, and every workload sits inside a monitored component.`,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const children = new Map<string, PolicyResource[]>();
        for (const r of args.resources) {
            const parent = parentUrn(r);
            if (parent) children.set(parent, [...(children.get(parent) ?? []), r]);
        }
        const byUrn = new Map(args.resources.map((r) => [r.urn, r]));
        const isMonitored = (r: PolicyResource) => !isCustom(r) && (children.get(r.urn) ?? []).some((c) => c.type === ATTACHMENT_TYPE);

        for (const r of args.resources) {
            const runsSomething = (children.get(r.urn) ?? []).some((c) => isCustom(c) && c.type !== ATTACHMENT_TYPE);
            if (r.type.startsWith("picloud:") && r.type !== ATTACHMENT_TYPE && !isCustom(r) && runsSomething && !isMonitored(r)) {
                reportViolation(`${r.urn} has no ${ATTACHMENT_TYPE} child: declare its monitoring ${SEE_README}`, r.urn);
            }
            if (WORKLOAD_TYPES.has(r.type) && !ancestors(r, byUrn).some(isMonitored)) {
                reportViolation(
                    `${r.urn} sits outside a monitored component: create it inside a component that has a ${ATTACHMENT_TYPE} child ${SEE_README}`,
                    r.urn,
                );
            }
        }
    },
};

function parentUrn(r: PolicyResource): string | undefined {
    return r.parent?.urn ?? r.opts.parent;
}

/** The engine hands a provider to every custom resource and to no component. */
function isCustom(r: PolicyResource): boolean {
    return r.provider !== undefined;
}

function ancestors(r: PolicyResource, byUrn: ReadonlyMap<string, PolicyResource>): PolicyResource[] {
    const found: PolicyResource[] = [];
    for (let p = parentUrn(r); p && byUrn.has(p) && !found.includes(byUrn.get(p)!); p = parentUrn(byUrn.get(p)!)) {
        found.push(byUrn.get(p)!);
    }
    return found;
}
