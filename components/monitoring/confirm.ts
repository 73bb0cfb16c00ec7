/**
 * "Done means monitored": the script an Attachment runs on the monitoring Pi after delivering its
 * files, which waits until Prometheus itself reports every target of the component up and its rule
 * group loaded with the component's alerts, and otherwise fails naming each target that is not
 * scraped and why, in Prometheus's own words (the target's health and last scrape error). Pure.
 */
import type { MonitoringSpec } from "./contract";
import { shellQuote } from "../renderers/shellSteps";

/** How an endpoint confirms: Prometheus's port on the monitoring Pi and how long to wait. */
export interface ConfirmSettings {
    readonly prometheusPort: number;
    /** How long an Attachment waits for Prometheus; 0: it does not wait. */
    readonly timeoutSeconds: number;
}

/**
 * jq over Prometheus's `/api/v1/targets` and `/api/v1/rules` (slurped, in that order): one line per
 * thing not yet so, nothing when the component is confirmed. A target counts as up only by a
 * scrape begun after `$since` (the second the confirmation began, on Prometheus's own host; a
 * scrape within that same second may have begun before it): a health of "up" from before says
 * nothing of a container replaced since. `lastScrape` is RFC 3339 in
 * Prometheus's time zone; one jq cannot read counts as fresh.
 */
const PROBLEMS = `
def epoch: capture("^(?<s>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})([.][0-9]+)?(?<z>Z|[+-][0-9]{2}:[0-9]{2})$")
    | (.s + "Z" | fromdateiso8601) - (if .z == "Z" then 0 else (.z[0:1] + "1" | tonumber) * ((.z[1:3] | tonumber) * 3600 + (.z[4:6] | tonumber) * 60) end);
.[0] as $t | .[1] as $r
| ($t.data.activeTargets // []) as $active
| ($want[] | . as $w
    | [$active[] | select(.labels.job == $w.job and .labels.instance == $w.instance)] as $found
    | if ($found | length) == 0 then "\\($w.job) \\($w.instance): not among Prometheus's targets (its file_sd file is not read yet)"
      elif any($found[]; .health == "up" and ((.lastScrape | epoch) // 1e18) > $since) then empty
      elif $found[0].health == "unknown" then "\\($w.job) \\($w.instance): not scraped yet"
      elif $found[0].health == "up" then "\\($w.job) \\($w.instance): not scraped again since the update began"
      else "\\($w.job) \\($w.instance): \\($found[0].health): \\($found[0].lastError)" end),
  ([($r.data.groups // [])[] | select(.name == $group)] as $g
    | if ($g | length) == 0 then "rule group \\($group): not loaded"
      elif ([$g[0].rules[].name] | sort) != ($alerts | sort) then "rule group \\($group): loaded with \\([$g[0].rules[].name] | sort | join(", ")), expected \\($alerts | sort | join(", "))"
      else empty end)`;

/**
 * The confirmation of `spec`'s monitoring, run on the monitoring Pi: polls Prometheus every two
 * seconds until each target of each job is up by a scrape made since it began and the rule group
 * named after the component holds exactly its alerts, for at most `timeoutSeconds`; then exits 1
 * listing what is not so.
 */
export function renderConfirmScript(spec: Pick<MonitoringSpec, "component" | "scrapeTargets" | "alertRules">, settings: ConfirmSettings): string {
    const { prometheusPort: port, timeoutSeconds } = settings;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`Prometheus's port must be a whole number from 1 to 65535, got ${JSON.stringify(port)}`);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) throw new Error(`the confirmation's timeout must be a whole number of seconds of at least 1, got ${JSON.stringify(timeoutSeconds)}`);
    const want = spec.scrapeTargets.flatMap((t) => t.targets.map((instance) => ({ job: t.job, instance })));
    const alerts = [...new Set(spec.alertRules.map((r) => r.alert))];
    const api = `http://127.0.0.1:${port}/api/v1`;
    return [
        `component=${shellQuote(spec.component)}`,
        // Which replica says so: the Pi's name (the bootstrap sets it as the hostname).
        'pi=$(hostname)',
        "since=$(date +%s)",
        `deadline=$(( since + ${timeoutSeconds} ))`,
        "while :; do",
        `    if ! targets=$(curl -fs --max-time 5 ${shellQuote(`${api}/targets?state=active`)}) || ! rules=$(curl -fs --max-time 5 ${shellQuote(`${api}/rules?type=alert`)}); then`,
        `        problems="Prometheus does not answer on 127.0.0.1:${port}"`,
        `    elif ! problems=$(printf '%s\\n%s\\n' "$targets" "$rules" | jq -rs --argjson want ${shellQuote(JSON.stringify(want))} --argjson alerts ${shellQuote(JSON.stringify(alerts))} --arg group "$component" --argjson since "$since" ${shellQuote(PROBLEMS)}); then`,
        `        problems="Prometheus's answer could not be read (is jq installed? the bootstrap installs it)"`,
        "    fi",
        `    if [ -z "$problems" ]; then echo "picloud: Prometheus on $pi confirms the monitoring of $component: ${want.length} target(s) up, ${alerts.length} alert(s) loaded"; exit 0; fi`,
        `    if [ "$(date +%s)" -ge "$deadline" ]; then`,
        `        echo "picloud: after ${timeoutSeconds} s Prometheus on $pi does not confirm the monitoring of $component (picloud:tiers.monitoring.confirmTimeoutSeconds):" >&2`,
        `        printf '%s\\n' "$problems" | sed 's/^/  - /' >&2`,
        "        exit 1",
        "    fi",
        "    sleep 2",
        "done",
    ].join("\n");
}
