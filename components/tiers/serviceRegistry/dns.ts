/**
 * The service registry's names, pure: CoreDNS on every Pi answering a zone of the cloud's own from
 * records kept in etcd, the script that writes those records, CoreDNS's monitoring and flows.
 *
 * Records follow the layout of CoreDNS's etcd plugin (SkyDNS's): the name `0.hello.apps.dev.internal`
 * is the key `/skydns/internal/dev/apps/hello/0`, holding `{"host":"<address>","ttl":<s>}`, and a
 * query for `hello.apps.dev.internal` answers every record under `/skydns/internal/dev/apps/hello/`:
 * one A record per replica. Members' CoreDNS reads its own member over loopback (no credentials
 * cross the LAN); the other Pis' CoreDNS forward the zone to the members'.
 */
import type { PiConfig } from "../../config/schema";
import type { RegistryConfig } from "./config";
import { MonitoringSpec, targetDownRule } from "../../monitoring/contract";
import type { Flow } from "../../network/flows";
import type { ReplicaIdentity, Workload } from "../../runtime/workload";
import { shellQuote, waitUntilLines } from "../../renderers/shellSteps";

/** CoreDNS 1.14, multi-arch (arm64), pinned by digest; the host suite builds the same version from its Go module. */
export const COREDNS_IMAGE = "coredns/coredns:1.14.7@sha256:7efd3c635b03efd68c4e8398fc45f0d993d0e9ab016f72c1cefb0fd6d01aa286";
export const COREDNS_WORKLOAD = "coredns";
/** Each Pi's Corefile folder, mounted read-only at /etc/coredns; CoreDNS's `reload` picks up a new Corefile by itself. */
export const COREDNS_DIR = "/srv/picloud/registry/coredns";
const COREDNS_CONF_IN_CONTAINER = "/etc/coredns";
/** The etcd plugin's key prefix. */
export const SKYDNS_PATH = "/skydns";
/** The Prometheus job of every Pi's CoreDNS. */
export const DNS_JOB = "registry-dns";
const KEY = "picloud:tiers.registry.dns";

/** A name the registry answers, relative to its zone (`hello.apps`), with the addresses of what answers to it. */
export interface DnsName {
    readonly name: string;
    /** In replica order: replica n is also `<n>.<name>`. */
    readonly addresses: readonly string[];
    /** The config key behind it, for errors. */
    readonly declaredBy: string;
}

/** One record as the etcd plugin reads it. */
export interface DnsRecord {
    readonly key: string;
    readonly value: string;
    /** The name it answers, fully qualified without the trailing dot. */
    readonly fqdn: string;
    readonly address: string;
}

/** A DNS label made from a stack's name: lowercase, anything else a '-'. */
function label(text: string): string {
    const l = text.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
    return /^[a-z]/.test(l) ? l : `c${l}`.slice(0, 63);
}

/** The zone: `picloud:tiers.registry.dns.zone`, else `<stack>.internal`. */
export function dnsZone(options: RegistryConfig, cloudName: string): string {
    return options.dns.zone ?? `${label(cloudName)}.internal`;
}

/** The etcd prefix of the zone's records: everything under it is picloud's. */
export function zonePrefix(zone: string): string {
    return `${SKYDNS_PATH}/${zone.split(".").reverse().join("/")}/`;
}

/**
 * The zone's records: one per address of each name, keyed by its replica index. Two names may not
 * be one, and no name starts with a number (`0.hello.apps` is hello's replica 0).
 */
export function dnsRecords(names: readonly DnsName[], zone: string, ttlSeconds: number): DnsRecord[] {
    const records: DnsRecord[] = [];
    const seen = new Map<string, string>();
    for (const n of names) {
        const fqdn = `${n.name}.${zone}`;
        const other = seen.get(n.name);
        if (other !== undefined) throw new Error(`${n.declaredBy}: the name ${fqdn} is declared by ${other} already`);
        seen.set(n.name, n.declaredBy);
        if (/^\d+(\.|$)/.test(n.name)) throw new Error(`${n.declaredBy}: the name ${fqdn} starts with a number, which names a replica`);
        n.addresses.forEach((address, index) => {
            const key = `${zonePrefix(fqdn).replace(/\/$/, "")}/${index}`;
            records.push({ key, value: JSON.stringify({ host: address, ttl: ttlSeconds }), fqdn: `${index}.${fqdn}`, address });
        });
    }
    return records.sort((a, b) => a.key.localeCompare(b.key));
}

/** Where the Corefile of a Pi gets its zone from: its own etcd member, or the members' CoreDNS. */
export type ZoneSource = { readonly kind: "member"; readonly localClientPort: number } | { readonly kind: "members"; readonly addresses: readonly string[] };

/** Options of {@link renderCorefile}. */
export interface CorefileInput {
    readonly zone: string;
    /** The address CoreDNS listens on (the Pi's). */
    readonly bind: string;
    readonly port?: number;
    readonly metricsPort: number;
    readonly source: ZoneSource;
    /** Where everything outside the zone goes; default the Pi's /etc/resolv.conf. */
    readonly forwardTo?: readonly string[];
}

/**
 * A Pi's Corefile: the zone from etcd (or forwarded to the members), cached briefly; the rest
 * forwarded, with CoreDNS's loop detection; metrics for Prometheus; `reload` so a new Corefile
 * takes effect without a restart.
 */
export function renderCorefile(input: CorefileInput): string {
    const port = input.port ?? 53;
    const common = (cache: number) => [`    bind ${input.bind}`, "    errors", `    cache ${cache}`, `    prometheus ${input.bind}:${input.metricsPort}`, "    reload"];
    const zoneSource =
        input.source.kind === "member"
            ? ["    etcd {", `        path ${SKYDNS_PATH}`, `        endpoint http://127.0.0.1:${input.source.localClientPort}`, "    }"]
            : [`    forward . ${input.source.addresses.map((a) => `${a}:${port}`).join(" ")}`];
    const upstream = input.forwardTo && input.forwardTo.length > 0 ? input.forwardTo.join(" ") : "/etc/resolv.conf";
    return [
        `# picloud: CoreDNS on ${input.bind}: ${input.zone} from ${input.source.kind === "member" ? "this Pi's etcd member" : "the etcd members' CoreDNS"}, the rest forwarded`,
        `${input.zone}:${port} {`,
        ...common(10),
        ...zoneSource,
        "}",
        `.:${port} {`,
        ...common(30),
        "    loop",
        `    forward . ${upstream}`,
        "}",
        "",
    ].join("\n");
}

/**
 * The script that makes the zone in etcd what `records` say, run on a member's Pi once the cluster
 * answers: it waits for a leader, puts every record, then removes the zone's keys no record has
 * any longer (in that order, so a name never goes unanswered). `etcdctl` is the command that
 * reaches a member (`docker exec` into one on a Pi). Idempotent.
 */
export function renderRecordsScript(input: { readonly zone: string; readonly records: readonly DnsRecord[]; readonly etcdctl: readonly string[]; readonly waitSeconds?: number }): string {
    const prefix = zonePrefix(input.zone);
    for (const r of input.records) {
        if (!r.key.startsWith(prefix) || /\s/.test(r.key) || /\s/.test(r.value)) throw new Error(`record ${r.key}: expected a key under ${prefix} and a value without whitespace`);
    }
    return [
        "#!/usr/bin/env bash",
        `# picloud: the service registry's names under ${input.zone}, kept in etcd at ${prefix}`,
        "set -euo pipefail",
        `etcdctl() { ${input.etcdctl.map(shellQuote).join(" ")} "$@"; }`,
        `prefix=${shellQuote(prefix)}`,
        "# A linearizable read needs a leader: wait for the cluster to answer.",
        ...waitUntilLines('etcdctl get --keys-only --limit=1 "$prefix" >/dev/null 2>&1', input.waitSeconds ?? 120, (s) => `picloud: etcd has no leader after ${s} s; the records of ${input.zone} were not written`),
        "records=$(cat <<'RECORDS'",
        ...input.records.map((r) => `${r.key} ${r.value}`),
        "RECORDS",
        ")",
        "put=0",
        'while read -r key value; do',
        '    [ -n "$key" ] || continue',
        '    etcdctl put "$key" "$value" </dev/null >/dev/null',
        "    put=$((put + 1))",
        'done <<<"$records"',
        "removed=0",
        'wanted=$(printf "%s\\n" "$records" | cut -d" " -f1)',
        'while read -r key; do',
        '    [ -n "$key" ] || continue',
        '    if ! grep -qxF -- "$key" <<<"$wanted"; then etcdctl del "$key" </dev/null >/dev/null; removed=$((removed + 1)); fi',
        'done < <(etcdctl get --prefix --keys-only "$prefix")',
        `echo "picloud: ${input.zone}: $put records put, $removed removed"`,
        "",
    ].join("\n");
}

/** What removes the zone's records when the registry leaves the stack (nothing to do when etcd is gone already). */
export function recordsRemoveCommand(zone: string, etcdctl: readonly string[]): string {
    return `${etcdctl.map(shellQuote).join(" ")} del --prefix ${shellQuote(zonePrefix(zone))} >/dev/null 2>&1 || true`;
}

/** CoreDNS on every Pi, host networking, its Corefile from {@link COREDNS_DIR}. */
export function corednsWorkload(options: RegistryConfig, pis: readonly PiConfig[]): Workload {
    const dns = options.dns;
    return {
        name: COREDNS_WORKLOAD,
        component: "registry",
        configKey: KEY,
        image: COREDNS_IMAGE,
        command: ["-conf", `${COREDNS_CONF_IN_CONTAINER}/Corefile`],
        pinnedTo: pis.map((p) => p.name),
        pinnedBecause: "CoreDNS runs on every Pi",
        hostAgent: true,
        hostNetwork: true,
        memoryMb: dns.memoryMb,
        cpus: dns.cpus,
        ports: [
            { container: 53, host: 53, protocol: "udp", configKey: KEY },
            { container: 53, host: 53, protocol: "tcp", configKey: KEY },
            { container: dns.metricsPort, host: dns.metricsPort, configKey: `${KEY}.metricsPort` },
        ],
        volumes: [{ hostPath: COREDNS_DIR, containerPath: COREDNS_CONF_IN_CONTAINER, readOnly: true }],
        metrics: { port: dns.metricsPort, path: "/metrics" },
        logLabels: { tier: "registry", service: "coredns" },
    };
}

/** Each Pi's Corefile: members read their own etcd member, the others forward the zone to the members. */
export function corefiles(options: RegistryConfig, pis: readonly PiConfig[], members: readonly ReplicaIdentity[], zone: string): Map<string, string> {
    const memberPis = new Set(members.map((m) => m.pi));
    return new Map(
        pis.map((pi) => [
            pi.name,
            renderCorefile({
                zone,
                bind: pi.address,
                metricsPort: options.dns.metricsPort,
                forwardTo: options.dns.forwardTo,
                source: memberPis.has(pi.name) ? { kind: "member", localClientPort: options.localClientPort } : { kind: "members", addresses: members.map((m) => m.address) },
            }),
        ]),
    );
}

/** CoreDNS's golden signals: down, failing answers, slow answers, no upstream left, panics. */
export function dnsSpecParts(options: RegistryConfig, pis: readonly PiConfig[]): Pick<MonitoringSpec, "scrapeTargets" | "alertRules"> & { panels: MonitoringSpec["dashboard"]["panels"] } {
    const sel = `job="${DNS_JOB}"`;
    const target = { job: DNS_JOB, targets: pis.map((p) => `${p.address}:${options.dns.metricsPort}`), labels: { tier: "registry" } };
    return {
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "CoreDNSErrorsHigh",
                expr: `sum by (instance) (rate(coredns_dns_responses_total{${sel},rcode="SERVFAIL"}[5m])) / sum by (instance) (rate(coredns_dns_responses_total{${sel}}[5m])) > 0.03`,
                for: "10m",
                severity: "warning",
                summary: "CoreDNS on {{ $labels.instance }} fails more than 3% of queries",
                description: "SERVFAIL answers: the zone's etcd member or the upstream resolvers do not answer. Clients on this Pi cannot find the cloud's services by name.",
            },
            {
                alert: "CoreDNSLatencyHigh",
                expr: `histogram_quantile(0.99, sum by (instance, le) (rate(coredns_dns_request_duration_seconds_bucket{${sel}}[5m]))) > 1`,
                for: "10m",
                severity: "warning",
                summary: "CoreDNS on {{ $labels.instance }} answers slowly",
                description: "The 99th percentile of answers takes over a second: an upstream or etcd is slow.",
            },
            {
                alert: "CoreDNSForwardUnhealthy",
                expr: `increase(coredns_forward_healthcheck_broken_total{${sel}}[5m]) > 0`,
                for: "5m",
                severity: "warning",
                summary: "CoreDNS on {{ $labels.instance }} has no healthy upstream",
                description: "Every server it forwards to failed its health check: names outside the zone (or, on a Pi without an etcd member, the zone itself) go unanswered.",
            },
            {
                alert: "CoreDNSPanics",
                expr: `increase(coredns_panics_total{${sel}}[10m]) > 0`,
                for: "0m",
                severity: "critical",
                summary: "CoreDNS on {{ $labels.instance }} panicked",
                description: "A CoreDNS plugin panicked while answering; the answer was lost. Its log says which.",
            },
        ],
        panels: [
            { title: "DNS queries per second", expr: `sum by (instance) (rate(coredns_dns_requests_total{${sel}}[5m]))` },
            { title: "DNS SERVFAIL share", expr: `sum by (instance) (rate(coredns_dns_responses_total{${sel},rcode="SERVFAIL"}[5m])) / sum by (instance) (rate(coredns_dns_responses_total{${sel}}[5m]))` },
            { title: "DNS answer p99", expr: `histogram_quantile(0.99, sum by (instance, le) (rate(coredns_dns_request_duration_seconds_bucket{${sel}}[5m])))`, unit: "s" },
        ],
    };
}

/** DNS to every Pi from its own containers, the operator and the other Pis; the Pis without a member to the members. */
export function dnsFlows(pis: readonly PiConfig[], members: readonly ReplicaIdentity[]): Flow[] {
    const flows: Flow[] = [];
    const memberPis = new Set(members.map((m) => m.pi));
    for (const to of pis) {
        for (const protocol of ["udp", "tcp"] as const) {
            flows.push({ from: { pi: to.name }, to: to.name, protocol, port: 53, purpose: `dns (${protocol}) from the Pi itself and its containers`, declaredBy: KEY });
            flows.push({ from: { zone: "mgmt" }, to: to.name, protocol, port: 53, purpose: `dns (${protocol}) from the operator`, declaredBy: KEY });
            if (memberPis.has(to.name)) {
                for (const from of pis.filter((p) => !memberPis.has(p.name))) {
                    flows.push({ from: { pi: from.name }, to: to.name, protocol, port: 53, purpose: `dns (${protocol}) zone forwarded from ${from.name}`, declaredBy: KEY });
                }
            }
        }
    }
    return flows;
}
