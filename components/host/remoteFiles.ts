/**
 * The one place that registers what picloud does on a Pi over SSH: commands, shipped files,
 * secrets and root scripts, all as `remote.Command`s written for the engine's semantics.
 *
 * - No `triggers`. `@pulumi/command` marks them replace-on-change and the engine replaces
 *   create-before-delete, so the old resource's delete would run after its successor's create and
 *   undo it (a file shipped, then removed). A change is carried in the command's inputs instead
 *   (stdin, or a hash line in the command: {@link withRerunKey}), which the engine turns into an
 *   Update that runs the same command again.
 * - A delete therefore runs only when the resource really leaves the stack (or is renamed).
 * - Scripts run from {@link SCRIPTS_DIR}, which survives the reboots that empty `/tmp`.
 * - No previous output in the environment: the Pis' sshd accepts no `Setenv`.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { FileOwner, renderRunScriptCommand, renderShipCommand, renderUnshipCommand, scriptPath, withRerunKey, withStdinDrained } from "../renderers/remoteCommands";

/** An SSH connection to a Pi, as `@pulumi/command` takes it. */
export type Connection = command.types.input.remote.ConnectionArgs;

/** Arguments of {@link remoteCommand}. */
export interface RemoteCommandArgs {
    readonly connection: pulumi.Input<Connection>;
    /** Runs on create, and again on every Update (any change of these inputs). */
    readonly create: pulumi.Input<string>;
    /** Runs only when the resource leaves the stack. */
    readonly delete?: pulumi.Input<string>;
    /** Fed to the command; a secret stays one. */
    readonly stdin?: pulumi.Input<string>;
    /** Values whose change runs `create` again, secrets among them: hashed into the command, never shown. */
    readonly rerunWhen?: readonly pulumi.Input<string>[];
    /** Keep stdout and stderr out of the engine's log (the command handles a secret). */
    readonly quiet?: boolean;
}

/**
 * A command on a Pi with the semantics above: `create` runs once, again on any change of its
 * inputs (as an Update: the same command), and `delete` only on removal.
 */
export function remoteCommand(name: string, args: RemoteCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    const keys = args.rerunWhen ?? [];
    // A hash of a secret is not the secret, but the engine would still mark the command secret; keep it plain.
    const run = keys.length === 0 ? args.create : pulumi.unsecret(pulumi.all([args.create, ...keys]).apply(([c, ...k]) => withRerunKey(c, k)));
    return new command.remote.Command(
        name,
        {
            connection: args.connection,
            create: run,
            update: run,
            // The provider feeds stdin to the delete as well: it reads it first (withStdinDrained).
            delete: args.delete === undefined || args.stdin === undefined ? args.delete : pulumi.output(args.delete).apply(withStdinDrained),
            stdin: args.stdin,
            logging: args.quiet ? "none" : undefined,
            addPreviousOutputInEnv: false,
        },
        opts,
    );
}

/** Arguments of {@link shipFile}. */
export interface ShipFileArgs {
    readonly connection: pulumi.Input<Connection>;
    /** The file's content, as rendered. */
    readonly text: pulumi.Input<string>;
    readonly remotePath: string;
    /** Octal mode; default 0644. */
    readonly mode?: string;
    /** Default the SSH user (the folder must be theirs). */
    readonly owner?: FileOwner;
    /** Mode of the folder, should this command have to make it; default 0755. */
    readonly folderMode?: string;
    /** Where earlier copies were shipped (the component was renamed): removed once this one is in place. */
    readonly replaces?: readonly string[];
}

/**
 * Puts rendered text at `remotePath` on a Pi. A changed text is written again in place; removing
 * the resource removes the file. The offline plan finds every shipped file by its command.
 */
export function shipFile(name: string, args: ShipFileArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    const owner = args.owner ?? "ssh-user";
    return remoteCommand(
        name,
        {
            connection: args.connection,
            create: renderShipCommand({ path: args.remotePath, mode: args.mode ?? "0644", owner, folderMode: args.folderMode, replaces: args.replaces }),
            delete: renderUnshipCommand({ path: args.remotePath, owner }),
            stdin: args.text,
        },
        opts,
    );
}

/**
 * Puts a secret in a file on a Pi, 0600 (or `mode`) and owned by `owner` (default root). The value
 * travels on stdin: it is never on a command line, in a file picloud renders, in a log or in
 * state unencrypted. A changed secret is written again in place; removing the resource removes
 * the file.
 */
export function shipSecret(
    name: string,
    args: { readonly connection: pulumi.Input<Connection>; readonly secret: pulumi.Input<string>; readonly remotePath: string; readonly owner?: FileOwner; readonly mode?: string },
    opts: pulumi.CustomResourceOptions,
): command.remote.Command {
    const owner = args.owner ?? "root";
    return remoteCommand(
        name,
        {
            connection: args.connection,
            create: renderShipCommand({ path: args.remotePath, mode: args.mode ?? "0600", owner }),
            delete: renderUnshipCommand({ path: args.remotePath, owner }),
            stdin: pulumi.secret(args.secret),
            quiet: true,
        },
        opts,
    );
}

/** A script shipped to a Pi and run there as root. */
export interface RootScript {
    /** Ships the script to {@link scriptPath}. */
    readonly file: command.remote.Command;
    /** Runs it; its stdout is the script's report. */
    readonly run: command.remote.Command;
}

/**
 * Ships `script` to `/var/lib/picloud/scripts/<scriptName>` (root's, 0700) and runs it with
 * `sudo -n bash`: `<name>-script` ships, `<name>` runs, again whenever the script or `rerunWhen`
 * changes and on any other change of its inputs (a rotated key). The script must be idempotent.
 * `stdin` (a secret, say) is fed to it and never logged; `remove` runs when the resource leaves
 * the stack.
 */
export function runRootScript(
    name: string,
    args: {
        readonly connection: pulumi.Input<Connection>;
        readonly script: string;
        /** File name under the scripts folder, e.g. `bootstrap.sh`. */
        readonly scriptName: string;
        readonly stdin?: pulumi.Input<string>;
        readonly remove?: string;
        /** More values whose change runs the script again (a secret's hash, say). */
        readonly rerunWhen?: readonly pulumi.Input<string>[];
    },
    opts: pulumi.CustomResourceOptions,
): RootScript {
    const path = scriptPath(args.scriptName);
    const [fileName] = rootScriptResourceNames(name);
    const file = shipFile(fileName, { connection: args.connection, text: args.script, remotePath: path, mode: "0700", owner: "root", folderMode: "0700" }, opts);
    const run = remoteCommand(
        name,
        {
            connection: args.connection,
            create: renderRunScriptCommand(path),
            delete: args.remove,
            stdin: args.stdin === undefined ? undefined : pulumi.secret(args.stdin),
            rerunWhen: [args.script, ...(args.rerunWhen ?? [])],
        },
        { ...opts, dependsOn: [file, ...dependencies(opts.dependsOn)] },
    );
    return { file, run };
}

/** The names of the resources {@link runRootScript} `name` registers: the script's file, then its run. */
export function rootScriptResourceNames(name: string): [file: string, run: string] {
    return [`${name}-script`, name];
}

function dependencies(dependsOn: pulumi.CustomResourceOptions["dependsOn"]): pulumi.Input<pulumi.Resource>[] {
    if (dependsOn === undefined) return [];
    return Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
}
