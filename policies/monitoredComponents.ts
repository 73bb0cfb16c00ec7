import { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { knownOrUndefined } from "./previewValues";
import { ATTACHMENT_TYPE, INSTALLS_A_SERVICE, REMOTE_COMMAND_TYPE, STACK_TYPE, WORKLOAD_TYPES } from "./workloadTypes";

const SEE_README = `(see README "Monitoring your own component")`;

/**
 * MANDATORY. Every workload is covered by monitoring, and every Attachment is real:
 * - a workload (a docker container or service, a Kubernetes workload of any kind, a Helm release
 *   or chart, a `remote.Command` that installs or starts a service) must be listed by the
 *   Attachment of its nearest monitored ancestor component (it, or a component between the two,
 *   in that Attachment's `covers`);
 * - an Attachment must sit inside a component, not on the stack, declare what it covers and be
 *   delivered to a monitoring endpoint (its delivery commands under it);
 * - a picloud component that runs something carries an Attachment of its own.
 *
 * Reads types, parent links, whether a resource has a provider (the engine gives every custom
 * resource one and components none), an Attachment's own plain inputs and commands' text: all
 * known in preview, except a command's text built from outputs, which the policy then skips.
 */
export const monitoredComponents: StackValidationPolicy = {
    name: "picloud-components-monitored",
    description: `Every workload is listed by the ${ATTACHMENT_TYPE} of its nearest monitored component, which is delivered and sits inside a component.`,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const children = new Map<string, PolicyResource[]>();
        for (const r of args.resources) {
            const parent = parentUrn(r);
            if (parent) children.set(parent, [...(children.get(parent) ?? []), r]);
        }
        const byUrn = new Map(args.resources.map((r) => [r.urn, r]));
        const attachmentOf = (r: PolicyResource) => (isCustom(r) ? undefined : (children.get(r.urn) ?? []).find((c) => c.type === ATTACHMENT_TYPE));

        for (const a of args.resources.filter((r) => r.type === ATTACHMENT_TYPE)) {
            const problem = attachmentProblem(a, byUrn, children.get(a.urn) ?? []);
            if (problem) reportViolation(`${a.urn} ${problem} ${SEE_README}`, a.urn);
        }

        for (const r of args.resources) {
            if (r.type === ATTACHMENT_TYPE) continue;
            const line = ancestors(r, byUrn);
            if (line.some((p) => p.type === ATTACHMENT_TYPE)) continue; // an Attachment's own delivery
            const runsSomething = (children.get(r.urn) ?? []).some((c) => isCustom(c) && c.type !== ATTACHMENT_TYPE);
            if (r.type.startsWith("picloud:") && !isCustom(r) && runsSomething && !attachmentOf(r)) {
                reportViolation(`${r.urn} has no ${ATTACHMENT_TYPE} child: declare its monitoring ${SEE_README}`, r.urn);
            }
            if (!runsAWorkload(r)) continue;
            const ownerIndex = line.findIndex((p) => attachmentOf(p) !== undefined);
            if (ownerIndex < 0) {
                reportViolation(`${r.urn} sits outside a monitored component: create it inside a component that has a ${ATTACHMENT_TYPE} child ${SEE_README}`, r.urn);
                continue;
            }
            const owner = line[ownerIndex];
            const attachment = attachmentOf(owner)!;
            const covers = coversOf(attachment) ?? [];
            // The workload, or a component between it and the owner (a chart, a group), must be listed.
            const listed = [r, ...line.slice(0, ownerIndex)].some((x) => covers.includes(x.name));
            if (!listed) {
                reportViolation(
                    `${r.urn} is not covered by the monitoring of its component ${owner.urn}: its ${ATTACHMENT_TYPE} does not list "${r.name}" in covers; attach monitoring that covers it, in the component that creates it ${SEE_README}`,
                    r.urn,
                );
            }
        }
    },
};

/** Why an Attachment does not count, or undefined when it does. */
function attachmentProblem(a: PolicyResource, byUrn: ReadonlyMap<string, PolicyResource>, own: readonly PolicyResource[]): string | undefined {
    const parent = parentUrn(a) ? byUrn.get(parentUrn(a)!) : undefined;
    if (!parent || parent.type === STACK_TYPE) return "sits on the stack, not inside a component: attach monitoring to the component that runs the workloads";
    if (coversOf(a) === undefined) return "is not a picloud Attachment: it declares no covers (create it with attachMonitoring, not as a bare ComponentResource)";
    if (knownOrUndefined(() => a.props.delivered) !== true || !own.some(isCustom)) {
        return "is delivered to no monitoring endpoint: give attachMonitoring the Monitoring tier's endpoint, so Prometheus scrapes what it declares";
    }
    return undefined;
}

function coversOf(a: PolicyResource): string[] | undefined {
    const covers = knownOrUndefined(() => a.props.covers as unknown);
    return Array.isArray(covers) && covers.every((c) => typeof c === "string") ? (covers as string[]) : undefined;
}

/** A workload by its type, or a remote command whose known text installs or starts a service. */
function runsAWorkload(r: PolicyResource): boolean {
    if (WORKLOAD_TYPES.has(r.type)) return true;
    if (r.type !== REMOTE_COMMAND_TYPE) return false;
    return ["create", "update", "stdin"].some((key) => {
        const text = knownOrUndefined(() => r.props[key] as unknown);
        return typeof text === "string" && INSTALLS_A_SERVICE.test(text);
    });
}

function parentUrn(r: PolicyResource): string | undefined {
    return r.parent?.urn ?? r.opts.parent;
}

/** The engine hands a provider to every custom resource and to no component. */
function isCustom(r: PolicyResource): boolean {
    return r.provider !== undefined;
}

/** Parent, grandparent, …: nearest first. */
function ancestors(r: PolicyResource, byUrn: ReadonlyMap<string, PolicyResource>): PolicyResource[] {
    const found: PolicyResource[] = [];
    for (let p = parentUrn(r); p && byUrn.has(p) && !found.includes(byUrn.get(p)!); p = parentUrn(byUrn.get(p)!)) {
        found.push(byUrn.get(p)!);
    }
    return found;
}
