/**
 * The metric selectors of a PromQL expression whose names start with one of `prefixes` and `_`:
 * `{ name, selector }`, the selector with its matchers as written. String literals and the label
 * lists of by/without/on/ignoring/group_* are blanked first (same length), so a label value or a
 * grouping label never counts as a metric; a name followed by `(` would be a function.
 */
export function metricSelectors(expr: string, prefixes: readonly string[]): { name: string; selector: string }[] {
    const named = new RegExp(`(?<![\\w:])((?:${prefixes.join("|")})_[A-Za-z0-9_:]*)(?![\\w:]|\\s*\\()(\\s*\\{[^}]*\\})?`, "g");
    const blanked = expr
        .replace(/"(?:[^"\\]|\\.)*"/g, (s) => `"${" ".repeat(s.length - 2)}"`)
        .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, (s) => " ".repeat(s.length));
    return [...blanked.matchAll(named)].map((m) => ({ name: m[1], selector: expr.slice(m.index, m.index + m[0].length).trim() }));
}

/** Whether exposition text has a sample of metric `name`. */
export function exposes(text: string, name: string): boolean {
    return new RegExp(`^${name}[{ ]`, "m").test(text);
}
