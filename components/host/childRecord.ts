import * as pulumi from "@pulumi/pulumi";

/**
 * The names of the custom resources a component creates as its own children, recorded as they are
 * registered: a component's monitoring covers what it runs without a second list to keep in step.
 * Give {@link options} to the component's `super(...)`, then call {@link ownedBy} with `this`.
 */
export class ChildRecord {
    private readonly recorded: string[] = [];
    private readonly own: pulumi.CustomResource[] = [];
    private owner?: pulumi.Resource;

    /** `opts` plus a transformation that records each own custom child (children inherit it; only direct ones count). */
    options(opts: pulumi.ComponentResourceOptions = {}): pulumi.ComponentResourceOptions {
        const record: pulumi.ResourceTransformation = (args) => {
            if (this.owner !== undefined && args.opts.parent === this.owner && args.resource instanceof pulumi.CustomResource) {
                this.recorded.push(args.name);
                this.own.push(args.resource);
            }
            return undefined;
        };
        return { ...opts, transformations: [...(opts.transformations ?? []), record] };
    }

    /** Starts recording for `component`, right after its `super(...)`. */
    ownedBy(component: pulumi.Resource): void {
        this.owner = component;
    }

    /** What has been recorded so far, in registration order. */
    get names(): readonly string[] {
        return [...this.recorded];
    }

    /** The same resources themselves, for what must wait for them. */
    get resources(): readonly pulumi.CustomResource[] {
        return [...this.own];
    }
}
