/**
 * The one error type for a stack config that cannot be built. It always names the config key
 * (`picloud:pis[2].address`), what was given and what is expected, so a user can fix it without
 * reading picloud's source.
 */
export class PicloudConfigError extends Error {
    /** Every problem found, each naming its key; `message` lists them all. */
    readonly problems: readonly ConfigProblem[];

    constructor(problems: readonly ConfigProblem[]) {
        super(
            problems.length === 1
                ? `invalid picloud config: ${formatProblem(problems[0])}`
                : `invalid picloud config (${problems.length} problems):\n` +
                      problems.map((p) => `  - ${formatProblem(p)}`).join("\n"),
        );
        this.name = "PicloudConfigError";
        this.problems = problems;
    }
}

/** One thing wrong with the config, at one key. */
export interface ConfigProblem {
    /** Full config key, e.g. `picloud:pis[2].address`. */
    readonly key: string;
    /** What is wrong and what would be right. */
    readonly message: string;
    /**
     * "missing-secret" when a secret the config needs is not set: the offline plan, which has no
     * secrets by design, stands in a placeholder for exactly these.
     */
    readonly kind?: "missing-secret";
}

function formatProblem(p: ConfigProblem): string {
    return `${p.key}: ${p.message}`;
}

/** Renders a path such as `["pis", 2, "address"]` as the config key `picloud:pis[2].address`. */
export function configKey(path: readonly PropertyKey[]): string {
    let key = "picloud:";
    path.forEach((part, i) => {
        if (typeof part === "number") key += `[${part}]`;
        else key += i === 0 ? String(part) : `.${String(part)}`;
    });
    return key;
}

/** Shows a given value in an error message, short and unambiguous. */
export function describeValue(value: unknown): string {
    if (value === undefined) return "nothing";
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The value the offline plan stands in for a secret it cannot read. Content checks of a secret
 * (a certificate's validity, say) skip it: there is nothing to check until the stack really runs.
 */
export const SECRET_PLACEHOLDER = "[secret: not available to the offline plan]";
