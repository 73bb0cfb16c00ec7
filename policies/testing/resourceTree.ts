import { ATTACHMENT_TYPE } from "../../components/monitoring/contract";
import type { RecordedResource } from "../../components/plan/mockRuntime";

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

    /** A monitoring Attachment under `owner`, with a custom child as the real one has (its files). */
    attachment(owner: string): string {
        const name = `${this.nameOf(owner)}-monitoring`;
        const urn = this.component(ATTACHMENT_TYPE, name, owner);
        this.custom("command:remote:CopyToRemote", `${name}-targets`, {}, urn);
        return urn;
    }

    /** A component that carries an Attachment; add what it runs under it. */
    monitoredComponent(type: string, name: string, parent = ""): string {
        const urn = this.component(type, name, parent);
        this.attachment(urn);
        return urn;
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
