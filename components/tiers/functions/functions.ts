/**
 * Functions declared in picloud config, deployed through the faasd gateway's REST API with curl
 * on the faasd Pi. Pure text: each function gets a small script, run as root there (the gateway's
 * basic-auth files are root-only), that creates, updates or deletes exactly that function.
 *
 * The API, from openfaas/faas gateway/main.go and faasd's provider handlers (pkg/provider/handlers):
 * - `GET /system/function/<name>`: 200 with the function's status (image, envVars, labels …), 404
 *   when there is none (replicas.go).
 * - `POST /system/functions` with a FunctionDeployment (openfaas/faas-provider types/model.go:
 *   `service`, `image`, `envVars`, `labels`, `limits {memory, cpu}` …) creates it: 200, or 400
 *   with the reason, also when it already exists (deploy.go).
 * - `PUT /system/functions` with the same body replaces it: 200, 404 when absent (update.go).
 *   faasd removes the old container before starting the new one, so a function is down for the
 *   length of its start (docs/ROADMAP.md, "No rolling updates").
 * - `DELETE /system/functions` with `{"functionName": "<name>"}`: 200, 404 when absent (delete.go).
 */
import { dnsLabel, pinnedImage } from "../../config/fields";
import { contentHash } from "../../renderers/contentHash";
import { SCRIPT_HELPERS, shellQuote } from "../../renderers/shellSteps";
import { FAASD_PATHS } from "./renderers";

/** One function, as the stack config declares it. */
export interface FunctionSpec {
    /** A lowercase DNS label; also the function's hostname and its path `/function/<name>`. */
    readonly name: string;
    /** An OpenFaaS watchdog image pinned by digest, multi-arch (arm64). */
    readonly image: string;
    /** Plain environment. Not secret: it is in the deploy script and in `faas-cli describe`. */
    readonly env: Readonly<Record<string, string>>;
    /** Hard memory limit, MiB; faasd applies it to the container (deploy.go `withMemory`). */
    readonly memoryMb: number;
    /**
     * CPU limit, cores. Sent as `limits.cpu`, which the OpenFaaS API defines, but faasd CE's
     * provider applies only the memory limit (deploy.go): on faasd this is a placement figure.
     */
    readonly cpus?: number;
}

/**
 * How many functions faasd CE deploys: its provider refuses the next one with "the OpenFaaS CE
 * EULA allows 15/… function(s)" (pkg/provider/handlers/deploy.go `preDeploy`; the figure 15 from
 * openfaas/openfaas.github.io PR #339 and openfaas/faas issue #1848).
 */
export const FAASD_CE_MAX_FUNCTIONS = 15;

/** The label carrying a hash of the deployed spec, so a re-run can tell whether anything changed. */
export const SPEC_HASH_LABEL = "com.picloud.spec-sha256";

/** A function script's last stdout line: how many steps changed (0 or 1). */
export const FUNCTION_SCRIPT_SUMMARY = /^picloud-function: changed=(\d+)$/m;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkName(where: string, name: string): string {
    if (!dnsLabel("a function name").safeParse(name).success) {
        throw new Error(`${where}name must be a lowercase DNS label (a-z, 0-9, '-', starting with a letter, at most 63 characters), got "${name}"`);
    }
    return name;
}

function checkSpec(fn: FunctionSpec): FunctionSpec {
    checkName("function: ", fn.name);
    const at = `function "${fn.name}": `;
    if (!pinnedImage().safeParse(fn.image).success) throw new Error(`${at}image must be pinned by digest (repo:tag@sha256:<64 hex>), got "${fn.image}"`);
    for (const key of Object.keys(fn.env)) {
        if (!ENV_NAME.test(key)) throw new Error(`${at}env key "${key}" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`);
    }
    if (!Number.isInteger(fn.memoryMb) || fn.memoryMb < 1) throw new RangeError(`${at}memoryMb must be a positive whole number of MiB, got ${fn.memoryMb}`);
    if (fn.cpus !== undefined && !(Number.isFinite(fn.cpus) && fn.cpus > 0)) throw new RangeError(`${at}cpus must be a positive number of cores, got ${fn.cpus}`);
    return fn;
}

/**
 * Checks a whole set of functions for one faasd: each spec, no name twice, and no more than
 * {@link FAASD_CE_MAX_FUNCTIONS}. Throws naming the function and the field.
 */
export function checkFunctionSpecs(fns: readonly FunctionSpec[]): void {
    const seen = new Set<string>();
    for (const fn of fns) {
        checkSpec(fn);
        if (seen.has(fn.name)) throw new Error(`function "${fn.name}" is declared twice`);
        seen.add(fn.name);
    }
    if (fns.length > FAASD_CE_MAX_FUNCTIONS) {
        throw new Error(`${fns.length} functions declared, but faasd CE deploys at most ${FAASD_CE_MAX_FUNCTIONS} (OpenFaaS CE EULA); remove ${fns.length - FAASD_CE_MAX_FUNCTIONS}`);
    }
}

const sortedEnv = (env: Readonly<Record<string, string>>): Record<string, string> =>
    Object.fromEntries(Object.keys(env).sort().map((k) => [k, env[k]]));

/**
 * The FunctionDeployment body POSTed or PUT to the gateway. Its labels carry
 * {@link SPEC_HASH_LABEL}: a hash of everything else, which the provider stores as a container
 * label and returns from `GET /system/function/<name>` (functions.go `GetFunction`).
 */
export function functionDeployment(fn: FunctionSpec): Record<string, unknown> {
    checkSpec(fn);
    const limits: Record<string, string> = { memory: `${fn.memoryMb}Mi` };
    if (fn.cpus !== undefined) limits.cpu = String(fn.cpus);
    const spec = { service: fn.name, image: fn.image, envVars: sortedEnv(fn.env), limits };
    return { ...spec, labels: { [SPEC_HASH_LABEL]: contentHash(JSON.stringify(spec)) } };
}

// JSON with '$' and '`' written as \u escapes: the same document, and nothing in it that looks
// like a shell expansion inside the script's single quotes.
const inertJson = (value: unknown): string => JSON.stringify(value).replace(/[$`]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

function checkGatewayPort(gatewayPort: number): number {
    if (!Number.isInteger(gatewayPort) || gatewayPort < 1 || gatewayPort > 65535) throw new RangeError(`gatewayPort must be a port between 1 and 65535, got ${gatewayPort}`);
    return gatewayPort;
}

// Shared by the deploy and delete scripts: an authenticated call to the gateway on this Pi.
const GATEWAY_CLIENT = `
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=""

# curl's config arrives on its stdin and carries the Authorization header, so the password
# reaches no command line (printf is a bash builtin).
gateway_auth() {
    local user password
    user=$(<${FAASD_PATHS.secretsDir}/basic-auth-user)
    password=$(<${FAASD_PATHS.secretsDir}/basic-auth-password)
    printf 'header = "Authorization: Basic %s"\\n' "$(printf '%s:%s' "$user" "$password" | base64 -w 0)"
}

# gateway METHOD PATH [BODY_FILE]: sets $status and leaves the response body in $work/response.
gateway() {
    local args=(-sS -X "$1" -o "$work/response" -w '%{http_code}' --max-time 300 -K -) file
    # Checked here: a failure inside the pipeline below would read as an unreachable gateway.
    for file in ${FAASD_PATHS.secretsDir}/basic-auth-user ${FAASD_PATHS.secretsDir}/basic-auth-password; do
        [[ -r $file ]] || die "cannot read $file: run this as root on the faasd Pi (sudo -n bash script)"
    done
    if (($# > 2)); then
        args+=(-H 'Content-Type: application/json' --data-binary "@$3")
    fi
    status=$(gateway_auth | curl "\${args[@]}" "$GATEWAY_URL$2") ||
        die "could not reach the faasd gateway at $GATEWAY_URL$2: is faasd running? (systemctl status faasd)"
}

failed() {
    die "the gateway answered $status to $1: $(head -c 500 "$work/response")"
}

# The gateway restarts whenever faasd does; give it a minute to come back.
wait_for_gateway() {
    local deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null --max-time 5 "$GATEWAY_URL/healthz"; do
        ((SECONDS < deadline)) ||
            die "the faasd gateway at $GATEWAY_URL does not answer /healthz after 60 s: see journalctl -u faasd -u faasd-provider"
        sleep 2
    done
}
`;

const scriptHead = (what: string, name: string, gatewayPort: number): string => `#!/usr/bin/env bash
# picloud function ${name}: rendered by picloud (components/tiers/functions/functions.ts), run as
# root on the faasd Pi. ${what} Safe to re-run.
# shellcheck disable=SC2034 # wrote: set by the shared step helpers; these scripts write no host files
set -euo pipefail

readonly FUNCTION_NAME=${shellQuote(name)}
readonly GATEWAY_URL=${shellQuote(`http://127.0.0.1:${checkGatewayPort(gatewayPort)}`)}
`;

/**
 * The script that makes one function exist as specified, through the gateway on `gatewayPort`
 * of the same Pi: created when absent, replaced (`PUT`) when its spec hash differs, left alone
 * otherwise. Prints `picloud: ok|changed function-<name>` and then {@link FUNCTION_SCRIPT_SUMMARY}.
 * Run as root: `sudo -n bash <script>`.
 */
export function functionDeployCommand(fn: FunctionSpec, gatewayPort: number): string {
    const deployment = functionDeployment(fn);
    const hash = (deployment.labels as Record<string, string>)[SPEC_HASH_LABEL];
    return `${scriptHead("Creates the function, or replaces it when its spec changed.", fn.name, gatewayPort)}readonly SPEC_SHA256=${shellQuote(hash)}
readonly DEPLOYMENT=${shellQuote(inertJson(deployment))}
${SCRIPT_HELPERS}${GATEWAY_CLIENT}
deploy_function() {
    printf '%s' "$DEPLOYMENT" >"$work/deployment.json"
    gateway GET "/system/function/$FUNCTION_NAME"
    case $status in
    200)
        # The provider returns the labels it stored, the spec hash among them.
        if grep -qF -- "$SPEC_SHA256" "$work/response"; then
            finish_step "function-$FUNCTION_NAME"
            return 0
        fi
        gateway PUT /system/functions "$work/deployment.json"
        [[ $status == 2?? ]] || failed "replacing function $FUNCTION_NAME"
        step_changed=1
        finish_step "function-$FUNCTION_NAME" "replaced; faasd restarts its container, so it is briefly unavailable"
        ;;
    404)
        gateway POST /system/functions "$work/deployment.json"
        [[ $status == 2?? ]] || failed "creating function $FUNCTION_NAME"
        step_changed=1
        finish_step "function-$FUNCTION_NAME" "created"
        ;;
    *) failed "asking for function $FUNCTION_NAME" ;;
    esac
}

wait_for_gateway
deploy_function
echo "picloud-function: changed=$changed"
`;
}

/**
 * The script that removes one function through the gateway on `gatewayPort`; a function that is
 * already gone is fine. Prints `picloud: ok|changed function-<name>` and then
 * {@link FUNCTION_SCRIPT_SUMMARY}. Run as root: `sudo -n bash <script>`.
 */
export function functionDeleteCommand(fn: Pick<FunctionSpec, "name">, gatewayPort: number): string {
    const name = checkName("function: ", fn.name);
    return `${scriptHead("Removes the function if it exists.", name, gatewayPort)}readonly DELETION=${shellQuote(inertJson({ functionName: name }))}
${SCRIPT_HELPERS}${GATEWAY_CLIENT}
delete_function() {
    printf '%s' "$DELETION" >"$work/deletion.json"
    gateway DELETE /system/functions "$work/deletion.json"
    case $status in
    2??)
        step_changed=1
        finish_step "function-$FUNCTION_NAME" "deleted"
        ;;
    404) finish_step "function-$FUNCTION_NAME" ;;
    *) failed "deleting function $FUNCTION_NAME" ;;
    esac
}

wait_for_gateway
delete_function
echo "picloud-function: changed=$changed"
`;
}
