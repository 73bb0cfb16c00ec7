import * as pulumi from "@pulumi/pulumi";

/** A name a component had before (`renamedFrom`) and the one it has now. */
export interface Rename {
    readonly from: string;
    readonly to: string;
}

/**
 * Options that carry a renamed component's resources over to its new name in one `pulumi up`:
 * the component, and every resource under it named after the new name (`<to>` or `<to>-…`), gets
 * an alias of its old name (`<from>`, `<from>-…`). The engine then updates them in place rather
 * than creating new ones beside the old, which would still hold their ports and paths.
 */
export function renamedOptions(renames: readonly Rename[], opts: pulumi.ComponentResourceOptions = {}): pulumi.ComponentResourceOptions {
    if (renames.length === 0) return opts;
    const alias: pulumi.ResourceTransformation = (args) => {
        const old = oldName(args.name, renames);
        if (old === undefined) return undefined;
        return { props: args.props, opts: pulumi.mergeOptions(args.opts, { aliases: [{ name: old }] }) };
    };
    return { ...opts, transformations: [...(opts.transformations ?? []), alias] };
}

/** The name `name` had before the renames, or undefined when none applies. */
export function oldName(name: string, renames: readonly Rename[]): string | undefined {
    for (const { from, to } of [...renames].sort((a, b) => b.to.length - a.to.length)) {
        if (name === to) return from;
        if (name.startsWith(`${to}-`)) return `${from}${name.slice(to.length)}`;
    }
    return undefined;
}
