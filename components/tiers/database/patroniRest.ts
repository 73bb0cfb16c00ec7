/** Patroni's REST API as the database's steps ask it, pure: its URLs and the shell test of a role check. */
import { shellQuote } from "../../renderers/shellSteps";
import type { DatabaseConfig } from "./config";

/** Patroni's REST API on loopback, from the member's own Pi. */
export function localRestUrl(options: Pick<DatabaseConfig, "restApiPort">, path: string): string {
    return `http://127.0.0.1:${options.restApiPort}${path}`;
}

/** A shell condition: Patroni at `url` answers 200 (its role checks, /primary, /replica and /health, answer 503 otherwise). */
export function restAnswers(url: string): string {
    return `[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${shellQuote(url)})" = 200 ]`;
}
