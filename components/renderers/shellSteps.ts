/**
 * What every script picloud runs on a Pi as root shares: quoting of input values, and the bash
 * helpers that make a script a list of idempotent steps. Each step compares what is with what
 * should be, changes only the difference and reports one stdout line:
 * `picloud: ok <step>`, `picloud: changed <step>[: <note>]` or `picloud: skipped <step>: <reason>`.
 * Tool output goes to stderr, so stdout is the report.
 */

/** Quotes a value as one bash word: single quotes, each embedded `'` written as `'\''`. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Bash lines that try `condition` every 2 s for up to `seconds` (rounded up to whole tries) and go
 * on once it holds; when it never does, the script ends with `failure(seconds tried)` on stderr.
 */
export function waitUntilLines(condition: string, seconds: number, failure: (seconds: number) => string): string[] {
    const tries = Math.ceil(seconds / 2);
    return [
        `for i in $(seq 1 ${tries}); do`,
        `    if ${condition}; then break; fi`,
        `    if [ "$i" -eq ${tries} ]; then echo "${failure(tries * 2)}" >&2; exit 1; fi`,
        "    sleep 2",
        "done",
    ];
}

/**
 * The step helpers, to be placed after a script's `set -euo pipefail` and its input variables:
 * `die`, `skip`, `finish_step`, `write_if_changed`, `write_checked`, `is_installed`, `apt_get`, `apt_install`, and
 * the counter `changed` that a script's summary line reports.
 */
export const SCRIPT_HELPERS = `
export DEBIAN_FRONTEND=noninteractive
changed=0
step_changed=0
wrote=0
apt_updated=0

die() {
    echo "picloud: error: $*" >&2
    exit 1
}

skip() { echo "picloud: skipped $1: $2"; }

# finish_step NAME [NOTE]: reports the step; NOTE is only shown when something changed.
finish_step() {
    if ((step_changed)); then
        changed=$((changed + 1))
        echo "picloud: changed $1\${2:+: $2}"
    else
        echo "picloud: ok $1"
    fi
    step_changed=0
}

# write_if_changed PATH MODE CONTENT: writes CONTENT plus a final newline only when the file
# differs (content or mode); sets wrote=1 if it wrote so callers restart only what changed.
# MODE "-" leaves the mode alone: the FAT boot partition has no Unix modes.
write_if_changed() {
    local path=$1 mode=$2 content=$3 tmp
    wrote=0
    if [[ -f $path ]] && cmp -s "$path" <(printf '%s\\n' "$content") &&
        [[ $mode == - || $(stat -c %a "$path") == "$mode" ]]; then
        return 0
    fi
    if [[ $mode == - ]]; then
        printf '%s\\n' "$content" >"$path"
    else
        # Written beside the target and renamed over it: a power cut never leaves half a file.
        mkdir -p "$(dirname "$path")"
        tmp=$(mktemp "$(dirname "$path")/.picloud.XXXXXX")
        printf '%s\\n' "$content" >"$tmp"
        chmod "$mode" "$tmp"
        mv -f "$tmp" "$path"
    fi
    wrote=1
    step_changed=1
}

# write_checked PATH MODE CONTENT CHECK...: write_if_changed, then run CHECK; when it refuses the
# new file, the previous one (or none) is put back and the script stops.
write_checked() {
    local path=$1 mode=$2 content=$3 backup=""
    shift 3
    if [[ -f $path ]]; then
        backup=$(mktemp)
        cp -p "$path" "$backup"
    fi
    write_if_changed "$path" "$mode" "$content"
    if ((wrote)) && ! "$@" >&2; then
        if [[ -n $backup ]]; then mv -f "$backup" "$path"; else rm -f "$path"; fi
        die "$path was refused by '$*'; the previous file is back"
    fi
    [[ -z $backup ]] || rm -f "$backup"
}

is_installed() {
    [[ $(dpkg-query -W -f="\\\${Status}" "$1" 2>/dev/null) == "install ok installed" ]]
}

# A fresh Pi runs apt-daily at boot, so wait for the dpkg lock; keep locally changed conffiles.
apt_get() {
    apt-get -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold "$@" >&2
}

apt_install() {
    if ((!apt_updated)); then
        apt_get update
        apt_updated=1
    fi
    apt_get install -y --no-install-recommends "$@"
}
`;
