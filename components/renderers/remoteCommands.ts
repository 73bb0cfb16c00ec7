/**
 * The shell commands through which picloud puts files on a Pi and runs scripts there, as pure
 * text. They are written for the engine's semantics (components/host/remoteFiles.ts registers
 * them): a file's content travels on the command's stdin, so a changed file is an Update of the
 * same resource that writes it again, never a replacement whose delete would run after the new
 * file is in place; a script runs from a path that outlives a reboot, not from `/tmp`.
 */
import { contentHash } from "./contentHash";
import { shellQuote } from "./shellSteps";

/** Who owns a shipped file: the SSH user (written without sudo), root, or a numeric uid:gid (a container's user). */
export type FileOwner = "ssh-user" | "root" | { readonly uid: number; readonly gid: number };

/** Where picloud keeps the scripts it runs on a Pi as root: root's alone, and kept across reboots. */
export const SCRIPTS_DIR = "/var/lib/picloud/scripts";

/** The first line of a command that ships a file: the plan reads the path back from it. */
const SHIP_HEADER = "# picloud: ships ";
/** The line of a command that carries the values whose change runs it again. */
const RERUN_HEADER = "# picloud: runs again when this changes: ";

const SAFE_PATH = /^\/[A-Za-z0-9._@+/-]+$/;
const MODE = /^0?[0-7]{3}$/;

function checkPath(path: string): string {
    if (!SAFE_PATH.test(path) || path.split("/").includes("..")) {
        throw new Error(`a remote path must be absolute and made of letters, digits and . _ @ + - /, without '..', got "${path}"`);
    }
    return path;
}

/**
 * The command that writes its stdin to `path` atomically (a temp file beside it, renamed over it:
 * a power cut never leaves half a file), with `mode` and `owner`, creating the folder when it is
 * missing (with `folderMode`, default 0755 like its parents). Running it again with the same stdin
 * changes nothing a reader could see.
 */
export function renderShipCommand(input: {
    readonly path: string;
    readonly mode: string;
    readonly owner: FileOwner;
    readonly folderMode?: string;
    /** Paths of earlier copies, removed once the file is in place (a renamed component's files). */
    readonly replaces?: readonly string[];
}): string {
    const path = checkPath(input.path);
    const earlier = (input.replaces ?? []).map(checkPath).filter((p) => p !== path);
    for (const mode of [input.mode, input.folderMode ?? "0755"]) {
        if (!MODE.test(mode)) throw new Error(`mode must be octal such as 0644, got "${mode}"`);
    }
    const owner = input.owner;
    const chown = owner === "ssh-user" ? "" : ` && chown ${owner === "root" ? "0:0" : `${check(owner.uid)}:${check(owner.gid)}`} "$t"`;
    const write = [
        `f=${shellQuote(path)}`,
        `d=$(dirname "$f")`,
        // A missing folder is made; an existing one keeps its owner and mode.
        `{ [ -d "$d" ] || { mkdir -p "$d" && chmod ${input.folderMode ?? "0755"} "$d"; }; }`,
        `t=$(mktemp "$d/.picloud.XXXXXX")`,
        `trap 'rm -f "$t"' EXIT`,
        `cat >"$t" && chmod ${input.mode} "$t"${chown} && mv -f "$t" "$f"`,
        ...(earlier.length ? [`rm -f ${earlier.map(shellQuote).join(" ")}`] : []),
    ].join("; ");
    // mktemp makes the file 0600 whatever the umask; it gets its mode and owner before it is renamed into place.
    const body = owner === "ssh-user" ? `set -e; ${write}` : `sudo -n sh -c ${shellQuote(`set -e; umask 022; ${write}`)}`;
    return `${SHIP_HEADER}${path}\n${body}`;
}

function check(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id > 65535) throw new RangeError(`a uid or gid must be a whole number from 0 to 65535, got ${id}`);
    return id;
}

/** The command that removes what {@link renderShipCommand} wrote. */
export function renderUnshipCommand(input: { readonly path: string; readonly owner: FileOwner }): string {
    const rm = `rm -f ${shellQuote(checkPath(input.path))}`;
    return input.owner === "ssh-user" ? rm : `sudo -n ${rm}`;
}

/** The path a command rendered by {@link renderShipCommand} writes, or undefined for any other command. */
export function shippedPath(command: unknown): string | undefined {
    if (typeof command !== "string" || !command.startsWith(SHIP_HEADER)) return undefined;
    return command.slice(SHIP_HEADER.length).split("\n", 1)[0];
}

/** Where {@link renderRunScriptCommand} keeps a script: `name` is a file name, such as `bootstrap.sh`. */
export function scriptPath(name: string): string {
    if (!/^[a-z0-9][a-z0-9._-]*\.sh$/.test(name)) throw new Error(`a script name must be lowercase letters, digits, '.', '_' or '-', ending in .sh, got "${name}"`);
    return `${SCRIPTS_DIR}/${name}`;
}

/** The command that runs a shipped script as root; its stdin (a secret, say) reaches the script. */
export function renderRunScriptCommand(path: string): string {
    return `sudo -n bash ${shellQuote(checkPath(path))}`;
}

/**
 * `command` with a comment line carrying a hash of `values`: the command text changes when they
 * do, which makes the engine Update the resource (run it again) rather than replace it. The values
 * themselves never appear, so a secret's hash can be one of them.
 */
export function withRerunKey(command: string, values: readonly string[]): string {
    if (values.length === 0) return command;
    return `${RERUN_HEADER}${contentHash(values.join("\0"))}\n${command}`;
}

/**
 * Builds image `tag` with the Pi's Docker engine from the Dockerfile on stdin (no context) unless
 * the Pi has it already, and prints its ID: what a container then runs. The build's own output
 * goes to stderr.
 */
export function renderImageBuild(tag: string): string {
    const t = shellQuote(tag);
    return `docker image inspect --format '{{.Id}}' ${t} 2>/dev/null || { docker build --quiet --tag ${t} - >&2 && docker image inspect --format '{{.Id}}' ${t}; }`;
}

/**
 * A delete that first reads its stdin to the end. The command provider feeds a resource's stdin
 * (a shipped file's whole text) to its delete too; a delete that exits without reading it (`rm -f`)
 * can close the session while the provider still writes, and the delete fails with "EOF".
 */
export function withStdinDrained(command: string): string {
    return `cat >/dev/null\n${command}`;
}
