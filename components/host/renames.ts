import * as pulumi from "@pulumi/pulumi";

/** A name a component had before (`renamedFrom`) and the one it has now. */
export interface Rename {
    readonly from: string;
    readonly to: string;
}

/**
 * The name of a child of the component named `parent`, `${parent}-${name}`, so two components of
 * one type (two PiClouds, say) never give two children one URN. Before picloud scoped names so, the
 * child was `name` alone: `opts` gets that as an alias, so a stack deployed then carries over in
 * place. The engine also gives each alias the parent's own aliases, so a child of a child named
 * `${parent}-…` carries over with no alias of its own.
 */
export function scoped<O extends pulumi.ResourceOptions>(parent: string, name: string, opts: O): { name: string; opts: O } {
    return { name: `${parent}-${name}`, opts: { ...opts, aliases: [...(opts.aliases ?? []), { name }] } };
}

/**
 * The renames of a component named `name` after the config's short name `now`, which was `was`
 * (`renamedFrom`): the short names, and its full name under its parent's scope when it ends in
 * `now` (`picloud-web` was `picloud-hello`).
 */
export function componentRenames(name: string, now: string, was: string | undefined): Rename[] {
    if (was === undefined) return [];
    const renames: Rename[] = [{ from: was, to: now }];
    if (name !== now && name.endsWith(`-${now}`)) renames.push({ from: `${name.slice(0, -now.length)}${was}`, to: name });
    return renames;
}

/**
 * Options that carry a renamed component's resources over to its new name in one `pulumi up`:
 * the component, and every resource under it whose name holds a new name (`to`, as a whole
 * dash-separated part), gets an alias with each such part replaced by the old one (`from`); so do
 * the aliases they already have (an unscoped name, see {@link scoped}). The engine then updates
 * them in place rather than creating new ones beside the old, which would still hold their ports
 * and paths.
 */
export function renamedOptions(renames: readonly Rename[], opts: pulumi.ComponentResourceOptions = {}): pulumi.ComponentResourceOptions {
    if (renames.length === 0) return opts;
    const alias: pulumi.ResourceTransformation = (args) => {
        const names = [args.name, ...(args.opts.aliases ?? []).flatMap((a) => (typeof a === "object" && typeof (a as pulumi.Alias).name === "string" ? [(a as pulumi.Alias).name as string] : []))];
        const olds = [...new Set(names.flatMap((n) => oldName(n, renames) ?? []))];
        if (olds.length === 0) return undefined;
        return { props: args.props, opts: pulumi.mergeOptions(args.opts, { aliases: olds.map((name) => ({ name })) }) };
    };
    return { ...opts, transformations: [...(opts.transformations ?? []), alias] };
}

/**
 * The name `name` had before the renames, or undefined when none applies. One pass from the left:
 * at each part boundary the longest new name that matches as whole parts is replaced by its old
 * one, so `picloud-web-app-web-0` was `picloud-hello-app-hello-0` when both the component
 * (`picloud-hello` → `picloud-web`) and its workload (`app-hello` → `app-web`) were renamed.
 */
export function oldName(name: string, renames: readonly Rename[]): string | undefined {
    const byLength = [...renames].sort((a, b) => b.to.length - a.to.length);
    let out = "";
    let changed = false;
    let i = 0;
    while (i < name.length) {
        const match = byLength.find(({ to }) => name.startsWith(to, i) && (i + to.length === name.length || name[i + to.length] === "-"));
        if (match) {
            out += match.from;
            i += match.to.length;
            changed = true;
        }
        const dash = name.indexOf("-", i);
        const end = dash === -1 ? name.length : dash + 1;
        out += name.slice(i, end);
        i = end;
    }
    return changed ? out : undefined;
}
