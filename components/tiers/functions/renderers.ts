/**
 * faasd (OpenFaaS CE on containerd) on a Pi, as pure text: the files `faasd install` would write,
 * rendered here instead so that every port is ours to choose, and the idempotent script that
 * installs them. Mirrors what faasd's own installer does (openfaas/faasd hack/install.sh and
 * cmd/install.go) with three deliberate differences:
 *
 * - **No second containerd.** faasd only needs a containerd on /run/containerd/containerd.sock
 *   (hard-coded in faasd's cmd/up.go; the provider's default in pkg/provider/config/read.go). The
 *   Pi already runs one: Docker's `containerd.io`. A second daemon would fight it for that socket,
 *   so faasd uses Docker's. They do not see each other's containers: Docker keeps to containerd
 *   namespace `moby`, faasd to `openfaas` (core services) and `openfaas-fn` (functions)
 *   (pkg/constants.go). Docker's package disables containerd's CRI plugin
 *   (docker/containerd-packaging common/containerd.toml), which faasd does not use. faasd's README
 *   advises against Docker on the same host because the two may need different containerd versions
 *   and Docker's iptables rules may disturb faasd's networking. picloud takes that on knowingly:
 *   there is one containerd, so one version; and faasd's CNI chain ends in the `firewall` plugin,
 *   which puts a jump to its CNI-FORWARD chain first in FORWARD and accepts its containers'
 *   traffic there (containernetworking/plugins plugins/meta/firewall/iptables.go), ahead of the
 *   DROP policy Docker gives FORWARD. faasd's port proxies run in the host's network namespace,
 *   so requests to the gateway do not cross FORWARD at all.
 * - **No `apt-get install runc`** (which faasd's installer does): `containerd.io` Provides,
 *   Conflicts and Replaces `runc` (docker/containerd-packaging debian/control), so installing
 *   Debian's runc would remove Docker.
 * - **Ports are inputs.** faasd's compose publishes the gateway on 8080 and its Prometheus on
 *   127.0.0.1:9090; both clash with picloud (apps publish 8080, picloud's Prometheus is 9090). Here
 *   the gateway and its metrics port are inputs, faasd's internal Prometheus is not published at
 *   all (only the gateway reads it, over the CNI bridge), and faasd-provider's port is an input too.
 */
import { stringify } from "yaml";
import { isIPv4 } from "node:net";
import { pinnedImage } from "../../config/fields";
import { SCRIPT_HELPERS, shellQuote } from "../../renderers/shellSteps";
import { cniPluginsDownloadUrl, type FaasdArch, faasdDownloadUrl, FAASD_VERSIONS, type FaasdVersions } from "./versions";

/** Where faasd and its files live on the Pi; faasd hard-codes the working directories (cmd/install.go). */
export const FAASD_PATHS = {
    binary: "/usr/local/bin/faasd",
    workDir: "/var/lib/faasd",
    providerDir: "/var/lib/faasd-provider",
    secretsDir: "/var/lib/faasd/secrets",
    cniBinDir: "/opt/cni/bin",
    faasdUnit: "/etc/systemd/system/faasd.service",
    providerUnit: "/etc/systemd/system/faasd-provider.service",
    sysctl: "/etc/sysctl.d/60-picloud-faasd.conf",
    /** What the install script records about the faasd binary it verified: `<version> <sha256>`. */
    binaryMarker: "/usr/local/lib/picloud/faasd.installed",
    /** What it records about the CNI plugins it verified: `<version> <sha256>`. */
    cniMarker: "/opt/cni/bin/.picloud-cni-plugins",
    /** The install script's file name under picloud's scripts folder (`scriptPath`). */
    installScriptName: "faasd.sh",
} as const;

/**
 * faasd's container network: the CNI bridge and subnet it creates for its core services and
 * functions (openfaas/faasd pkg/cninetwork/cni_network.go). Docker networks and nftables rules on
 * the same Pi must leave this subnet alone.
 */
export const FAASD_NETWORK = { bridge: "openfaas0", subnet: "10.62.0.0/16", cniConfig: "/etc/cni/net.d/10-openfaas.conflist" } as const;

/** The containerd namespace faasd deploys functions into, and the only one faasd CE allows. */
export const FAASD_FUNCTION_NAMESPACE = "openfaas-fn";

/** The containerd namespace of faasd's core services (pkg/constants.go). */
export const FAASD_CORE_NAMESPACE = "openfaas";

/** Ports inside the gateway container: the API on 8080, Prometheus metrics on 8082 (openfaas/faas gateway/main.go). */
export const GATEWAY_CONTAINER_PORTS = { api: 8080, metrics: 8082 } as const;

/** The basic-auth user `faasd up` writes when none exists (cmd/up.go `makeBasicAuthFiles`). */
export const FAASD_DEFAULT_ADMIN_USER = "admin";

/** faasd's internal Prometheus only answers the gateway's invocation counts; picloud's Prometheus keeps history. */
export const FAASD_PROMETHEUS_RETENTION = "1d";

/** The install script's last stdout line: how many steps changed. */
export const FAASD_INSTALL_SUMMARY = /^picloud-faasd: changed=(\d+)$/m;

/** What faasd on one Pi needs to know. */
export interface FaasdInput {
    /** Host port of the gateway: REST API, UI and `/function/<name>` (faasd's own default is 8080). */
    readonly gatewayPort: number;
    /** Host port serving the gateway's Prometheus metrics on {@link GATEWAY_METRICS_PATH}; faasd does not publish them at all. */
    readonly metricsPort: number;
    /** Port faasd-provider listens on, on every host interface (faasd's default is 8081, pkg/provider/config/read.go). */
    readonly providerPort: number;
    /** Nameservers written to faasd's resolv.conf, which core services and functions use (faasd's default is 8.8.8.8). */
    readonly nameservers: readonly string[];
    /** The gateway's basic-auth user; default {@link FAASD_DEFAULT_ADMIN_USER}. */
    readonly adminUser?: string;
    /** Seconds the install script waits for the gateway to answer after (re)starting faasd; default 180. */
    readonly readyTimeoutSeconds?: number;
    /** Pinned downloads and images; default {@link FAASD_VERSIONS}. */
    readonly versions?: FaasdVersions;
}

/** Path of the gateway's metrics on its metrics port (openfaas/faas gateway/main.go `runMetricsServer`). */
export const GATEWAY_METRICS_PATH = "/metrics";

// Unprivileged and well-known ports are both allowed: faasd runs as root and binds either.
function checkPort(name: string, value: number): number {
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw new RangeError(`${name} must be a port between 1 and 65535, got ${value}`);
    return value;
}

const HOST_PORT_FIELDS = ["gatewayPort", "metricsPort", "providerPort"] as const;

/**
 * The host TCP ports faasd occupies with this input, in the order gateway, gateway metrics,
 * faasd-provider, each on every interface. Nothing else of faasd listens on the host: NATS, the
 * queue worker and faasd's Prometheus stay on the CNI bridge. Throws, naming the fields, when two
 * inputs are the same port.
 */
export function faasdHostPorts(input: Pick<FaasdInput, (typeof HOST_PORT_FIELDS)[number]>): number[] {
    const seen = new Map<number, string>();
    for (const field of HOST_PORT_FIELDS) {
        const port = checkPort(field, input[field]);
        const other = seen.get(port);
        if (other !== undefined) throw new Error(`${other} and ${field} are both ${port}: each port faasd listens on needs its own number`);
        seen.set(port, field);
    }
    return HOST_PORT_FIELDS.map((f) => input[f]);
}

// The gateway reads `user:password` from two files; a ':' or whitespace in the user would break it.
const ADMIN_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

interface CheckedInput {
    readonly gatewayPort: number;
    readonly metricsPort: number;
    readonly providerPort: number;
    readonly nameservers: readonly string[];
    readonly adminUser: string;
    readonly readyTimeoutSeconds: number;
    readonly versions: FaasdVersions;
}

/** Docker's reference normalisation: `prom/prometheus` is `docker.io/prom/prometheus`, `nats` is `docker.io/library/nats`. */
export function fullyQualifiedImage(ref: string): string {
    const slash = ref.indexOf("/");
    if (slash === -1) return `docker.io/library/${ref}`;
    const first = ref.slice(0, slash);
    return first.includes(".") || first.includes(":") || first === "localhost" ? ref : `docker.io/${ref}`;
}

function checkVersions(v: FaasdVersions): FaasdVersions {
    if (!/^\d+\.\d+\.\d+$/.test(v.faasd.version)) throw new Error(`versions.faasd.version must be a release tag like 0.18.6, got "${v.faasd.version}"`);
    if (!/^v\d+\.\d+\.\d+$/.test(v.cniPlugins.version)) throw new Error(`versions.cniPlugins.version must be a release tag like v1.7.1, got "${v.cniPlugins.version}"`);
    const sums: [string, string | undefined][] = [
        ["versions.faasd.sha256.arm64", v.faasd.sha256.arm64],
        ["versions.faasd.sha256.amd64", v.faasd.sha256.amd64],
        ["versions.cniPlugins.sha256.arm64", v.cniPlugins.sha256.arm64],
        ["versions.cniPlugins.sha256.amd64", v.cniPlugins.sha256.amd64],
    ];
    for (const [name, sum] of sums) {
        if (sum !== undefined && !/^[0-9a-f]{64}$/.test(sum)) throw new Error(`${name} must be 64 lowercase hex digits, got "${sum}"`);
    }
    for (const [name, image] of Object.entries(v.images)) {
        if (!pinnedImage().safeParse(image).success) throw new Error(`versions.images.${name} must be an image pinned by digest (repo:tag@sha256:<64 hex>), got "${image}"`);
    }
    return v;
}

function checkInput(input: FaasdInput): CheckedInput {
    faasdHostPorts(input);
    if (input.nameservers.length === 0) throw new Error("nameservers must list at least one IPv4 address: faasd's containers resolve names through them");
    input.nameservers.forEach((n, i) => {
        if (!isIPv4(n)) throw new Error(`nameservers[${i}] must be an IPv4 address, got "${n}"`);
    });
    const adminUser = input.adminUser ?? FAASD_DEFAULT_ADMIN_USER;
    if (!ADMIN_USER.test(adminUser)) throw new Error(`adminUser must be 1-32 characters of a-z, 0-9, '_' and '-', starting with a letter or '_', got "${adminUser}"`);
    const readyTimeoutSeconds = input.readyTimeoutSeconds ?? 180;
    if (!Number.isInteger(readyTimeoutSeconds) || readyTimeoutSeconds < 1) throw new RangeError(`readyTimeoutSeconds must be a positive whole number, got ${readyTimeoutSeconds}`);
    return { ...input, adminUser, readyTimeoutSeconds, versions: checkVersions(input.versions ?? FAASD_VERSIONS) };
}

const HEADER = "Rendered by picloud (components/tiers/functions/renderers.ts); edits are overwritten.";

// Every string double-quoted: faasd's compose loader is not guaranteed to read YAML 1.2, and in
// YAML 1.1 an unquoted 8080:8080 is a base-60 number.
const yamlText = (header: string, doc: unknown): string =>
    `# ${header}\n${stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN", lineWidth: 0, aliasDuplicateObjects: false })}`;

const secretMounts = [
    { type: "bind", source: "./secrets/basic-auth-password", target: "/run/secrets/basic-auth-password" },
    { type: "bind", source: "./secrets/basic-auth-user", target: "/run/secrets/basic-auth-user" },
];

/**
 * faasd's `docker-compose.yaml` (read by `faasd up` from /var/lib/faasd): NATS Streaming, faasd's
 * Prometheus, the gateway and the queue worker, as in openfaas/faasd docker-compose.yaml of the
 * pinned release period (commit 1c1bfa6), with pinned images and picloud's ports. The gateway is
 * published on `gatewayPort` (API) and `metricsPort` (metrics); nothing else is. faasd replaces a
 * service's whole argv with `command` (pkg/supervisor.go `withOCIArgs`), hence the binary first.
 */
export function renderFaasdCompose(input: FaasdInput): string {
    const c = checkInput(input);
    const img = (ref: string) => fullyQualifiedImage(ref);
    const doc = {
        version: "3.7",
        services: {
            nats: {
                image: img(c.versions.images.nats),
                user: "65534",
                command: ["/nats-streaming-server", "-m", "8222", "--store=file", "--dir=/nats", "--cluster_id=faas-cluster"],
                volumes: [{ type: "bind", source: "./nats", target: "/nats" }],
            },
            prometheus: {
                image: img(c.versions.images.prometheus),
                user: "65534",
                command: ["/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", `--storage.tsdb.retention.time=${FAASD_PROMETHEUS_RETENTION}`],
                volumes: [
                    { type: "bind", source: "./prometheus.yml", target: "/etc/prometheus/prometheus.yml" },
                    { type: "bind", source: "./prometheus", target: "/prometheus" },
                ],
                cap_add: ["CAP_NET_RAW"],
            },
            gateway: {
                image: img(c.versions.images.gateway),
                environment: [
                    "basic_auth=true",
                    `functions_provider_url=http://faasd-provider:${c.providerPort}/`,
                    "direct_functions=false",
                    "read_timeout=60s",
                    "write_timeout=60s",
                    "upstream_timeout=65s",
                    "faas_nats_address=nats",
                    "faas_nats_port=4222",
                    "secret_mount_path=/run/secrets",
                    "scale_from_zero=true",
                    `function_namespace=${FAASD_FUNCTION_NAMESPACE}`,
                ],
                volumes: secretMounts,
                cap_add: ["CAP_NET_RAW"],
                depends_on: ["nats", "prometheus"],
                ports: [`${c.gatewayPort}:${GATEWAY_CONTAINER_PORTS.api}`, `${c.metricsPort}:${GATEWAY_CONTAINER_PORTS.metrics}`],
            },
            "queue-worker": {
                image: img(c.versions.images.queueWorker),
                environment: [
                    "faas_nats_address=nats",
                    "faas_nats_port=4222",
                    "gateway_invoke=true",
                    "faas_gateway_address=gateway",
                    "ack_wait=5m5s",
                    "max_inflight=1",
                    "write_debug=false",
                    "basic_auth=true",
                    "secret_mount_path=/run/secrets",
                ],
                volumes: secretMounts,
                cap_add: ["CAP_NET_RAW"],
                depends_on: ["nats"],
            },
        },
    };
    return yamlText(HEADER, doc);
}

/**
 * faasd's `prometheus.yml`: the scrape config of faasd's repository (prometheus.yml), with the
 * provider's port from the input. The gateway asks this Prometheus for invocation counts; service
 * names resolve through faasd's hosts file on the CNI bridge.
 */
export function renderFaasdPrometheusConfig(input: Pick<FaasdInput, "providerPort">): string {
    const provider = checkPort("providerPort", input.providerPort);
    return yamlText(HEADER, {
        global: { scrape_interval: "15s", evaluation_interval: "15s" },
        scrape_configs: [
            { job_name: "prometheus", static_configs: [{ targets: ["localhost:9090"] }] },
            { job_name: "gateway", static_configs: [{ targets: [`gateway:${GATEWAY_CONTAINER_PORTS.metrics}`] }] },
            { job_name: "provider", static_configs: [{ targets: [`faasd-provider:${provider}`] }] },
        ],
    });
}

/** faasd's `resolv.conf`, bind-mounted into every core service and function. */
export function renderFaasdResolvConf(input: Pick<FaasdInput, "nameservers">): string {
    if (input.nameservers.length === 0) throw new Error("nameservers must list at least one IPv4 address");
    input.nameservers.forEach((n, i) => {
        if (!isIPv4(n)) throw new Error(`nameservers[${i}] must be an IPv4 address, got "${n}"`);
    });
    return `# ${HEADER}\n${input.nameservers.map((n) => `nameserver ${n}`).join("\n")}\n`;
}

/**
 * faasd-provider's systemd unit: openfaas/faasd hack/faasd-provider.service with the port set
 * (`port`, read in pkg/provider/config/read.go) and `MemoryMax=` for the deprecated `MemoryLimit=`.
 * Digest-pinned function images never change under their reference, so the provider pulls only
 * what it lacks (`--pull-policy`, cmd/provider.go).
 */
export function renderFaasdProviderUnit(input: Pick<FaasdInput, "providerPort">): string {
    const port = checkPort("providerPort", input.providerPort);
    return `# ${HEADER}
[Unit]
Description=faasd-provider: OpenFaaS CE functions on containerd
Wants=containerd.service network-online.target
After=containerd.service network-online.target

[Service]
MemoryMax=500M
Environment="secret_mount_path=${FAASD_PATHS.secretsDir}"
Environment="basic_auth=true"
Environment="hosts_dir=${FAASD_PATHS.workDir}"
Environment="port=${port}"
ExecStart=${FAASD_PATHS.binary} provider --pull-policy=IfNotPresent
Restart=on-failure
RestartSec=10s
WorkingDirectory=${FAASD_PATHS.providerDir}

[Install]
WantedBy=multi-user.target
`;
}

/** faasd's systemd unit (`faasd up`): openfaas/faasd hack/faasd.service, ordered after containerd as Docker's own unit is. */
export function renderFaasdUnit(): string {
    return `# ${HEADER}
[Unit]
Description=faasd: OpenFaaS CE core services on containerd
Wants=containerd.service network-online.target
After=containerd.service network-online.target faasd-provider.service

[Service]
MemoryMax=500M
ExecStart=${FAASD_PATHS.binary} up
Restart=on-failure
RestartSec=10s
WorkingDirectory=${FAASD_PATHS.workDir}

[Install]
WantedBy=multi-user.target
`;
}

const ARCHES: readonly FaasdArch[] = ["arm64", "amd64"];

const artifactVars = (v: FaasdVersions): string =>
    ARCHES.map((a) => {
        const A = a.toUpperCase();
        return [
            `readonly FAASD_URL_${A}=${shellQuote(faasdDownloadUrl(v.faasd.version, a))}`,
            `readonly FAASD_SHA256_${A}=${shellQuote(v.faasd.sha256[a] ?? "")}`,
            `readonly CNI_URL_${A}=${shellQuote(cniPluginsDownloadUrl(v.cniPlugins.version, a))}`,
            `readonly CNI_SHA256_${A}=${shellQuote(v.cniPlugins.sha256[a])}`,
        ].join("\n");
    }).join("\n");

/**
 * The idempotent installer, run as root (`sudo -n bash <script>`) with the
 * gateway admin password on stdin, so it is in neither this text nor any command line. It checks
 * the Pi (Docker's containerd.io present, no second containerd), installs curl and iptables, turns
 * on IP forwarding, installs the CNI plugins and the faasd binary after checking their SHA-256,
 * writes faasd's compose file, Prometheus config, resolv.conf, secrets and systemd units, pulls
 * the core images by digest into containerd, (re)starts faasd only when something changed, and
 * waits for the gateway. One stdout line per step (`picloud: ok|changed|skipped <step>`), then
 * `picloud-faasd: changed=<N>` ({@link FAASD_INSTALL_SUMMARY}); a second run changes nothing.
 *
 * The secrets directory is 0700 root, so no other user on the Pi can read the password. The two
 * files in it are 0644, as `faasd install` writes them: they are bind-mounted into the gateway and
 * the queue worker, which run as an unprivileged user (`USER app` in openfaas/faas
 * gateway/Dockerfile) and could not read a 0600 root file.
 *
 * `PICLOUD_SKIP_START=1` in the environment skips what needs a running containerd (image pulls,
 * services, readiness): for test hosts without one.
 */
export function renderFaasdInstallScript(input: FaasdInput): string {
    const c = checkInput(input);
    const images = Object.values(c.versions.images).map((i) => shellQuote(fullyQualifiedImage(i)));
    const P = FAASD_PATHS;
    return `#!/usr/bin/env bash
# picloud faasd install: rendered by picloud, run as root with the gateway admin password on stdin.
# Safe to re-run.
set -euo pipefail

readonly FAASD_VERSION=${shellQuote(c.versions.faasd.version)}
readonly CNI_VERSION=${shellQuote(c.versions.cniPlugins.version)}
${artifactVars(c.versions)}
readonly -a CORE_IMAGES=(${images.join(" ")})
readonly GATEWAY_PORT=${shellQuote(String(c.gatewayPort))}
readonly METRICS_PORT=${shellQuote(String(c.metricsPort))}
readonly ADMIN_USER=${shellQuote(c.adminUser)}
readonly READY_TIMEOUT_SECONDS=${shellQuote(String(c.readyTimeoutSeconds))}
readonly COMPOSE_YAML=${shellQuote(renderFaasdCompose(input).replace(/\n$/, ""))}
readonly PROMETHEUS_YML=${shellQuote(renderFaasdPrometheusConfig(input).replace(/\n$/, ""))}
readonly RESOLV_CONF=${shellQuote(renderFaasdResolvConf(input).replace(/\n$/, ""))}
readonly FAASD_UNIT=${shellQuote(renderFaasdUnit().replace(/\n$/, ""))}
readonly PROVIDER_UNIT=${shellQuote(renderFaasdProviderUnit(input).replace(/\n$/, ""))}
${SCRIPT_HELPERS}
restart=0
skip_start=0
if [[ \${PICLOUD_SKIP_START:-} == 1 ]]; then
    skip_start=1
fi

# The password arrives on stdin so that it sits in no file PiHost ships and on no command line.
[[ ! -t 0 ]] || die "pipe the gateway admin password to this script's stdin"
gateway_password=$(cat)
[[ -n $gateway_password ]] || die "stdin held no gateway admin password"
[[ $gateway_password != *[[:cntrl:]]* ]] || die "the gateway admin password on stdin holds a control character; send it without a newline inside"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

arch=$(dpkg --print-architecture)
case $arch in
arm64) faasd_url=$FAASD_URL_ARM64 faasd_sha256=$FAASD_SHA256_ARM64 cni_url=$CNI_URL_ARM64 cni_sha256=$CNI_SHA256_ARM64 ;;
# amd64 is accepted so that the script also runs on Debian test hosts.
amd64) faasd_url=$FAASD_URL_AMD64 faasd_sha256=$FAASD_SHA256_AMD64 cni_url=$CNI_URL_AMD64 cni_sha256=$CNI_SHA256_AMD64 ;;
*) die "faasd needs 64-bit Raspberry Pi OS (arm64); this system is $arch" ;;
esac

# fetch URL FILE: downloads over HTTPS only, failing with a message that names the URL.
fetch() {
    curl -fsSL --retry 3 --proto '=https' -o "$2" "$1" ||
        die "could not download $1: can the Pi reach github.com?"
}

# verify_sha256 FILE EXPECTED URL: refuses anything whose SHA-256 is not the expected one.
verify_sha256() {
    local actual
    actual=$(sha256sum "$1" | cut -d ' ' -f 1)
    [[ $actual == "$2" ]] || die "$3 has SHA-256 $actual, expected $2: refusing to install it"
}

step_prerequisites() {
    # faasd uses Docker's containerd; a second daemon would fight it for /run/containerd/containerd.sock.
    if [[ -e /usr/local/bin/containerd ]]; then
        die "/usr/local/bin/containerd exists (left by faasd's own installer?): it would compete with Docker's containerd.io for /run/containerd/containerd.sock. Remove it and any containerd unit under /etc/systemd/system, then run this again"
    fi
    if ((skip_start)); then
        skip faasd-prerequisites "PICLOUD_SKIP_START=1 (test host without containerd)"
        return 0
    fi
    is_installed containerd.io ||
        die "Docker's containerd.io package is not installed; faasd runs on it: run the picloud bootstrap (pulumi up) first"
    [[ -S /run/containerd/containerd.sock ]] ||
        die "containerd does not listen on /run/containerd/containerd.sock: sudo systemctl enable --now containerd"
    echo "picloud: ok faasd-prerequisites"
}

step_packages() {
    local needed=() pkg
    # Not runc: containerd.io ships it and conflicts with Debian's, which would take Docker away.
    # iptables: the CNI bridge (ipMasq) and firewall plugins call it.
    for pkg in ca-certificates curl iptables; do
        is_installed "$pkg" || needed+=("$pkg")
    done
    if ((\${#needed[@]})); then
        apt_install "\${needed[@]}"
        step_changed=1
    fi
    finish_step faasd-packages
}

step_ip_forwarding() {
    write_if_changed ${P.sysctl} 644 "# Written by picloud: faasd's CNI bridge routes container traffic through the host.
net.ipv4.conf.all.forwarding = 1"
    if ((wrote)) || [[ $(sysctl -n net.ipv4.conf.all.forwarding) != 1 ]]; then
        sysctl -q -w net.ipv4.conf.all.forwarding=1 >&2
        step_changed=1
    fi
    finish_step ip-forwarding
}

step_cni_plugins() {
    local want="$CNI_VERSION $cni_sha256" plugin missing=0
    # faasd's network config chains these (pkg/cninetwork/cni_network.go) plus the loopback.
    for plugin in bridge host-local firewall loopback; do
        [[ -x ${P.cniBinDir}/$plugin ]] || missing=1
    done
    if ((!missing)) && [[ $(cat ${P.cniMarker} 2>/dev/null || true) == "$want" ]]; then
        finish_step cni-plugins
        return 0
    fi
    fetch "$cni_url" "$work/cni.tgz"
    verify_sha256 "$work/cni.tgz" "$cni_sha256" "$cni_url"
    install -d -m 0755 ${P.cniBinDir}
    tar -xzf "$work/cni.tgz" -C ${P.cniBinDir} --no-same-owner
    printf '%s\\n' "$want" >${P.cniMarker}
    restart=1
    step_changed=1
    finish_step cni-plugins "$CNI_VERSION"
}

step_faasd_binary() {
    local installed_version="" installed_sum="" expected
    if [[ -x ${P.binary} && -f ${P.binaryMarker} ]]; then
        read -r installed_version installed_sum <${P.binaryMarker} || true
        if [[ $installed_version == "$FAASD_VERSION" && (-z $faasd_sha256 || $installed_sum == "$faasd_sha256") &&
            $(sha256sum ${P.binary} | cut -d ' ' -f 1) == "$installed_sum" ]]; then
            finish_step faasd-binary
            return 0
        fi
    fi
    fetch "$faasd_url" "$work/faasd"
    if [[ -n $faasd_sha256 ]]; then
        expected=$faasd_sha256
    else
        # No pinned checksum is known for this release: check against the one it publishes.
        fetch "$faasd_url.sha256" "$work/faasd.sha256"
        read -r expected _ <"$work/faasd.sha256" || true
        [[ $expected =~ ^[0-9a-f]{64}$ ]] || die "$faasd_url.sha256 holds no SHA-256"
    fi
    verify_sha256 "$work/faasd" "$expected" "$faasd_url"
    # Renamed into place: a running faasd keeps its old binary open without "text file busy".
    install -m 0755 -o root -g root "$work/faasd" ${P.binary}.picloud-new
    mv -f ${P.binary}.picloud-new ${P.binary}
    install -d -m 0755 "$(dirname ${P.binaryMarker})"
    printf '%s %s\\n' "$FAASD_VERSION" "$expected" >${P.binaryMarker}
    restart=1
    step_changed=1
    finish_step faasd-binary "$FAASD_VERSION"
}

step_faasd_config() {
    local any=0
    install -d -m 0755 ${P.workDir} ${P.providerDir}
    # NATS and Prometheus run as nobody (65534) and keep their data here.
    install -d -m 0755 -o 65534 -g 65534 ${P.workDir}/nats ${P.workDir}/prometheus
    write_if_changed ${P.workDir}/docker-compose.yaml 644 "$COMPOSE_YAML"
    any=$((any | wrote))
    write_if_changed ${P.workDir}/prometheus.yml 644 "$PROMETHEUS_YML"
    any=$((any | wrote))
    write_if_changed ${P.workDir}/resolv.conf 644 "$RESOLV_CONF"
    any=$((any | wrote))
    restart=$((restart | any))
    finish_step faasd-config
}

# write_secret PATH VALUE: like write_if_changed, without a trailing newline (as faasd writes
# these files), and never showing VALUE: printf is a builtin, so it reaches no command line.
write_secret() {
    local path=$1 value=$2 tmp
    if [[ -f $path ]] && cmp -s "$path" <(printf '%s' "$value") && [[ $(stat -c %a "$path") == 644 ]]; then
        return 0
    fi
    tmp=$(mktemp "${P.secretsDir}/.picloud.XXXXXX")
    printf '%s' "$value" >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$path"
    restart=1
    step_changed=1
}

step_faasd_secrets() {
    # 0700: only root reaches the files, which must stay readable by the gateway's own user.
    if [[ ! -d ${P.secretsDir} || $(stat -c '%a %U' ${P.secretsDir}) != "700 root" ]]; then
        install -d -m 0700 -o root -g root ${P.secretsDir}
        step_changed=1
    fi
    write_secret ${P.secretsDir}/basic-auth-user "$ADMIN_USER"
    write_secret ${P.secretsDir}/basic-auth-password "$gateway_password"
    finish_step faasd-secrets
}

step_faasd_units() {
    local any=0
    write_if_changed ${P.providerUnit} 644 "$PROVIDER_UNIT"
    any=$((any | wrote))
    write_if_changed ${P.faasdUnit} 644 "$FAASD_UNIT"
    any=$((any | wrote))
    if ((any)); then
        systemctl daemon-reload
        restart=1
    fi
    finish_step faasd-units
}

step_core_images() {
    local present image
    present=$(ctr -n ${FAASD_CORE_NAMESPACE} images ls -q)
    for image in "\${CORE_IMAGES[@]}"; do
        if ! grep -Fxq -- "$image" <<<"$present"; then
            # containerd checks every blob against the digest in the reference; faasd then finds
            # the image under this exact name and does not pull it again.
            ctr -n ${FAASD_CORE_NAMESPACE} images pull --platform "linux/$arch" "$image" >&2
            step_changed=1
        fi
    done
    finish_step faasd-images
}

step_faasd_services() {
    local unit
    for unit in faasd-provider faasd; do
        if ! systemctl is-enabled --quiet "$unit"; then
            systemctl enable "$unit" >&2
            step_changed=1
        fi
    done
    if ((restart)) || ! systemctl is-active --quiet faasd-provider || ! systemctl is-active --quiet faasd; then
        # The provider first: the gateway reaches it over the CNI bridge. faasd recreates its
        # core containers on every start, so this only happens when something changed.
        systemctl restart faasd-provider >&2
        systemctl restart faasd >&2
        step_changed=1
    fi
    finish_step faasd-services
}

wait_for_gateway() {
    local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
    until curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$GATEWAY_PORT/healthz" &&
        curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$METRICS_PORT${GATEWAY_METRICS_PATH}"; do
        ((SECONDS < deadline)) ||
            die "the faasd gateway does not answer on :$GATEWAY_PORT/healthz and :$METRICS_PORT${GATEWAY_METRICS_PATH} after $READY_TIMEOUT_SECONDS s: see journalctl -u faasd -u faasd-provider"
        sleep 3
    done
    echo "picloud: ok faasd-gateway"
}

step_prerequisites
step_packages
step_ip_forwarding
step_cni_plugins
step_faasd_binary
step_faasd_config
step_faasd_secrets
step_faasd_units
if ((skip_start)); then
    skip faasd-images "PICLOUD_SKIP_START=1 (test host without containerd)"
    skip faasd-services "PICLOUD_SKIP_START=1 (test host without containerd)"
else
    step_core_images
    step_faasd_services
    wait_for_gateway
fi
echo "picloud-faasd: changed=$changed"
`;
}
