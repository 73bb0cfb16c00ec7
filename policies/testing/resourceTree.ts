import type { RecordedResource } from "../../components/plan/mockRuntime";
import { ATTACHMENT_TYPE } from "../workloadTypes";

/**
 * Builds small recorded resource trees for policy specs, with URNs made as the engine makes them
 * (parent type chain joined by `$`). Each call returns the resource's URN, to parent others on.
 */
export class ResourceTree {
    private readonly list: RecordedResource[] = [];

    constructor(
        private readonly stack = "test",
        private readonly project = "picloud",
    ) {}

    /** Everything added so far, in the order added. */
    get resources(): readonly RecordedResource[] {
        return this.list;
    }

    /** A component resource (no provider, no id). */
    component(type: string, name: string, parent = ""): string {
        return this.add({ type, name, parent, custom: false, deleteBeforeReplace: false, inputs: {}, secretInputs: [] });
    }

    /** A custom resource with the given inputs (values may be `pulumi.unknown`, outputs, promises). */
    custom(type: string, name: string, inputs: Record<string, unknown> = {}, parent = ""): string {
        return this.add({ type, name, parent, custom: true, deleteBeforeReplace: false, inputs, secretInputs: [] });
    }

    /**
     * A monitoring Attachment under `owner`, as `attachMonitoring` makes it: its declaration as
     * inputs (what it covers, whether it is delivered) and, when delivered, a delivery command under it.
     */
    attachment(owner: string, options: { delivered?: boolean } = {}): string {
        const name = `${this.nameOf(owner)}-monitoring`;
        const delivered = options.delivered ?? true;
        const urn = this.add({ type: ATTACHMENT_TYPE, name, parent: owner, custom: false, deleteBeforeReplace: false, inputs: { covers: [], delivered }, secretInputs: [] });
        if (delivered) this.custom("command:remote:Command", `${name}-file-sd`, {}, urn);
        return urn;
    }

    /** A component that carries an Attachment; add what it runs under it with {@link covered}. */
    monitoredComponent(type: string, name: string, parent = "", options: { delivered?: boolean } = {}): string {
        const urn = this.component(type, name, parent);
        this.attachment(urn, options);
        return urn;
    }

    /** A custom resource under `parent`, listed in the covers of `by`'s Attachment (default: `parent`'s). */
    covered(type: string, name: string, inputs: Record<string, unknown>, parent: string, by = parent): string {
        const urn = this.custom(type, name, inputs, parent);
        this.cover(by, name);
        return urn;
    }

    /** Lists `name` in the covers of `owner`'s Attachment. */
    cover(owner: string, name: string): void {
        const attachment = this.list.find((r) => r.parent === owner && r.type === ATTACHMENT_TYPE);
        if (!attachment) throw new Error(`ResourceTree: ${owner} has no Attachment to cover ${name}`);
        (attachment.inputs.covers as string[]).push(name);
    }

    private nameOf(urn: string): string {
        return this.list.find((r) => r.urn === urn)?.name ?? urn;
    }

    private add(r: Omit<RecordedResource, "urn" | "provider" | "dependencies">): string {
        const parent = this.list.find((p) => p.urn === r.parent);
        if (r.parent && !parent) throw new Error(`ResourceTree: parent ${r.parent} of ${r.name} was not added first`);
        const urn = `urn:pulumi:${this.stack}::${this.project}::${parent ? `${qualifiedType(parent.urn)}$` : ""}${r.type}::${r.name}`;
        this.list.push({ ...r, urn, provider: "", dependencies: [] });
        return urn;
    }
}

/** The `parent$…$type` part of a URN. */
function qualifiedType(urn: string): string {
    return urn.split("::")[2];
}

/**
 * A resource list with `owner`'s Attachment (and everything under it) taken away: the stack as it
 * would be had the component not declared its monitoring.
 */
export function withoutAttachment(resources: readonly RecordedResource[], owner: string): RecordedResource[] {
    const removed = new Set(resources.filter((r) => r.parent === owner && r.type === ATTACHMENT_TYPE).map((r) => r.urn));
    let grew = true;
    while (grew) {
        grew = false;
        for (const r of resources) {
            if (!removed.has(r.urn) && removed.has(r.parent)) {
                removed.add(r.urn);
                grew = true;
            }
        }
    }
    return resources.filter((r) => !removed.has(r.urn));
}
