import { UnknownValueError } from "@pulumi/policy";

/**
 * Reads a prop through the analyzer's unknown-checking proxy; `undefined` when the value is not
 * known yet (preview). The analyzer turns an uncaught unknown read into an advisory "can't run
 * during preview" notice; the advisory policies would rather say nothing until the value is known.
 */
export function knownOrUndefined<T>(read: () => T): T | undefined {
    try {
        return read();
    } catch (e) {
        if (e instanceof UnknownValueError) return undefined;
        throw e;
    }
}
