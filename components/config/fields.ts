import { z } from "zod";
import { describeValue } from "./errors";

/**
 * Field builders shared by every part of the stack config schema. Each one carries an error
 * message that says what is expected and echoes what was given, so a zod issue can be reported
 * as `<key>: expected …, got …` without further work.
 */

/** `{ error }` option that reports "expected <what>, got <value>". */
export function expected(what: string) {
    return { error: (issue: { input?: unknown }) => `expected ${what}, got ${describeValue(issue.input)}` };
}

/** A strict object: unknown keys are an error that lists the keys allowed there. */
export function strictObject<T extends z.ZodRawShape>(shape: T, what: string) {
    const known = Object.keys(shape).join(", ");
    return z.strictObject(shape, {
        error: (issue) =>
            issue.code === "unrecognized_keys"
                ? `unknown option; ${what} takes: ${known}`
                : `expected ${what} (an object with: ${known}), got ${describeValue(issue.input)}`,
    });
}

/**
 * A map whose keys follow a rule: a bad key is reported with the key's own rule ("expected an
 * app name …, got "Web""), not as a bad map.
 */
export function record<K extends z.ZodType<string>, V extends z.ZodType>(keyWhat: string, key: K, value: V, what: string) {
    return z.record(key, value, {
        error: (issue) =>
            issue.code === "invalid_key"
                ? `expected ${keyWhat}, got ${describeValue(issue.input)}`
                : `expected ${what}, got ${describeValue(issue.input)}`,
    });
}

/** A lowercase DNS label: Pi names, app names, hostnames. */
export const dnsLabel = (what: string) => {
    const rule = expected(`${what}: a lowercase DNS label (a-z, 0-9, '-', starting with a letter, not ending with '-', at most 63 characters)`);
    return z.string(rule).regex(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/, rule);
};

/** An integer in a closed range. */
export const intIn = (min: number, max: number, unit = "") =>
    z.number(expected(`a whole number${unit} from ${min} to ${max}`))
        .int(expected(`a whole number${unit} from ${min} to ${max}`))
        .min(min, expected(`a whole number${unit} from ${min} to ${max}`))
        .max(max, expected(`a whole number${unit} from ${min} to ${max}`));

/** A TCP/UDP port. */
export const port = () => intIn(1, 65535);

/** An IPv4 address. */
export const ipv4 = () => z.ipv4(expected("an IPv4 address such as 192.168.1.20"));

/** Labels: short keys and values, as Docker and Kubernetes accept them. */
export const labels = () =>
    record(
        "a label key of a-z, 0-9, '.', '_', '/', '-'",
        z.string().regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/),
        z.string(expected("a label value (a string)")).max(63, expected("a label value of at most 63 characters")),
        "a map of label key to value",
    );

/**
 * A container image pinned by digest (`repo[:tag]@sha256:<64 hex>`): a tag alone can move under
 * a running cloud, a digest cannot.
 */
export const pinnedImage = () =>
    z.string(expected("an image pinned by digest, e.g. nginx:1.27@sha256:<64 hex digits>"))
        .regex(
            /^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9._-]+)*(:[\w][\w.-]{0,127})?@sha256:[a-f0-9]{64}$/,
            expected("an image pinned by digest, e.g. nginx:1.27@sha256:<64 hex digits>"),
        );

/** A map keyed by environment variable names. */
export const envMap = <V extends z.ZodType>(value: V, what: string) =>
    record("an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), value, what);

/** A hostname (RFC 1123 labels separated by dots), as HAProxy routes match the Host header. */
export const HOSTNAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** An absolute URL path that can sit unquoted in a config file: no whitespace, '#', quotes or backslashes. */
export const URL_PATH_PATTERN = /^\/[^\s#"'\\]*$/;

/** A hostname such as shop.example.org. */
export const hostname = () => z.string(expected("a hostname such as shop.example.org")).regex(HOSTNAME_PATTERN, expected("a hostname such as shop.example.org"));

/** A route's path prefix as matched: without trailing slashes, so "/api/" and "/api" are one prefix and "/" is "" (everything). */
export function routePrefix(pathPrefix: string | undefined): string | undefined {
    return pathPrefix?.replace(/\/+$/, "");
}

/** An absolute URL path such as /api. */
export const urlPath = () =>
    z.string(expected("an absolute path such as /api (no whitespace, '#', quotes or backslashes)")).regex(URL_PATH_PATTERN, expected("an absolute path such as /api (no whitespace, '#', quotes or backslashes)"));

/** A number of CPU cores, as a container limit. */
export const cores = (min: number, max: number) => {
    const rule = expected(`a number of cores from ${min} to ${max}`);
    return z.number(rule).min(min, rule).max(max, rule);
};

/** The name of a `picloud:` config key set with --secret, e.g. webDbPassword. */
export const secretName = (what = "the name of a picloud: secret config key, e.g. webDbPassword") =>
    z
        .string(expected(what))
        .regex(/^[a-zA-Z][a-zA-Z0-9]*$/, expected(what))
        .refine((k) => k !== "sshPrivateKey", expected(`${what}; the Pis' SSH key is only for SSH`));

/** A systemd OnCalendar expression, as backup timers take it ("daily", "*-*-* 03:00", "Sun 02:00"). */
export const onCalendar = () => {
    const rule = expected("a systemd OnCalendar expression such as daily or *-*-* 03:00");
    return z.string(rule).regex(/^[A-Za-z0-9*:,./ -]{1,64}$/, rule);
};

/** A bucket name as S3 and Garage take it: 3 to 63 lowercase letters, digits and '-', starting with a letter. */
export const bucketName = () => {
    const rule = expected("a bucket name: 3 to 63 lowercase letters, digits and '-', starting with a letter, not ending with '-'");
    return z.string(rule).regex(/^[a-z][a-z0-9-]{1,61}[a-z0-9]$/, rule);
};
