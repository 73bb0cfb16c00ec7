import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { contentHash } from "../renderers/contentHash";

type Connection = command.types.input.remote.ConnectionArgs;

function dependencies(dependsOn: pulumi.CustomResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
    if (dependsOn === undefined) return [];
    return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}

/**
 * Puts rendered text at `remotePath` on a Pi over SSH, as the SSH user. The hash of the text is
 * the trigger, so a change ships the new file and nothing else does.
 */
export function shipFile(
    name: string,
    args: { readonly connection: Connection; readonly text: string; readonly remotePath: string },
    opts: pulumi.CustomResourceOptions,
): command.remote.CopyToRemote {
    return new command.remote.CopyToRemote(
        name,
        { connection: args.connection, source: new pulumi.asset.StringAsset(args.text), remotePath: args.remotePath, triggers: [contentHash(args.text)] },
        opts,
    );
}

/**
 * Puts a secret in a 0600 file on a Pi, owned by the SSH user or (`asRoot`) by root. The value
 * travels on stdin: it is never on a command line, in a file picloud renders, or in a log.
 * Deleting the resource removes the file. `triggers` (a secret's hash, say) re-send it.
 */
export function shipSecret(
    name: string,
    args: {
        readonly connection: Connection;
        readonly secret: pulumi.Input<string>;
        readonly remotePath: string;
        readonly asRoot?: boolean;
        readonly triggers?: readonly pulumi.Input<string>[];
    },
    opts: pulumi.CustomResourceOptions,
): command.remote.Command {
    const write = `umask 077 && cat > ${args.remotePath}`;
    return new command.remote.Command(
        name,
        {
            connection: args.connection,
            create: args.asRoot ? `sudo -n sh -c '${write}'` : write,
            delete: `${args.asRoot ? "sudo -n " : ""}rm -f ${args.remotePath}`,
            stdin: pulumi.secret(args.secret),
            logging: "none",
            triggers: args.triggers && [...args.triggers],
        },
        opts,
    );
}

/** A rendered script shipped to a Pi and run there as root, again whenever the script changes. */
export interface RootScript {
    readonly copy: command.remote.CopyToRemote;
    readonly run: command.remote.Command;
}

/**
 * Ships `script` to `remotePath` and runs it with `sudo -n bash`, the way PiHost runs the
 * bootstrap: `<name>-script` copies, `<name>` runs. The script must be idempotent; its stdout is
 * the run's output. `stdin` (a secret, say) is fed to the script and never logged; `remove` runs
 * when the resource is deleted.
 */
export function runRootScript(
    name: string,
    args: {
        readonly connection: Connection;
        readonly script: string;
        readonly remotePath: string;
        readonly stdin?: pulumi.Input<string>;
        readonly remove?: string;
        /** More values whose change re-runs the script (a secret's hash, say). */
        readonly triggers?: readonly pulumi.Input<string>[];
    },
    opts: pulumi.CustomResourceOptions,
): RootScript {
    const hash = contentHash(args.script);
    const copy = shipFile(`${name}-script`, { connection: args.connection, text: args.script, remotePath: args.remotePath }, opts);
    const run = new command.remote.Command(
        name,
        {
            connection: args.connection,
            create: `sudo -n bash ${args.remotePath}`,
            delete: args.remove,
            stdin: args.stdin,
            triggers: [hash, ...(args.triggers ?? [])],
        },
        { ...opts, dependsOn: [copy, ...dependencies(opts.dependsOn)] },
    );
    return { copy, run };
}
