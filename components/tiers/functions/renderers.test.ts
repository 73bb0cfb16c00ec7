import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { shellcheck, tempDirs } from "../../../test/support/scripts";
import { isAlias, parse, parseDocument, visit } from "yaml";
import { pinnedImage } from "../../config/fields";
import { validator } from "../../../test/support/validators";
import {
    FAASD_INSTALL_SUMMARY,
    FAASD_PATHS,
    type FaasdInput,
    faasdHostPorts,
    fullyQualifiedImage,
    renderFaasdCompose,
    renderFaasdInstallScript,
    renderFaasdPrometheusConfig,
    renderFaasdProviderUnit,
    renderFaasdResolvConf,
    renderFaasdUnit,
} from "./renderers";
import { cniPluginsDownloadUrl, faasdDownloadUrl, FAASD_VERSIONS, type FaasdVersions } from "./versions";

const base: FaasdInput = { gatewayPort: 8080, metricsPort: 8082, providerPort: 8081, nameservers: ["192.168.1.1"] };
// One Pi carrying everything: the load balancer's stats, picloud's Prometheus and an app all elsewhere.
const moved: FaasdInput = { gatewayPort: 31112, metricsPort: 31113, providerPort: 31114, nameservers: ["10.0.0.53", "10.0.0.54"], adminUser: "ops" };

const tempDir = tempDirs("picloud-faasd");


describe("FAASD_VERSIONS", () => {
    it("pins every core image by digest, and each resolves to a fully qualified reference", () => {
        for (const [name, image] of Object.entries(FAASD_VERSIONS.images)) {
            expect(pinnedImage().safeParse(image).success, name).toBe(true);
            expect(fullyQualifiedImage(image), name).toMatch(/^(ghcr\.io|docker\.io)\//);
        }
    });

    it("pins the CNI plugins by SHA-256 for both architectures and leaves no malformed faasd checksum", () => {
        expect(FAASD_VERSIONS.cniPlugins.sha256.arm64).toBe("119fcb508d1ac2149e49a550752f9cd64d023a1d70e189b59c476e4d2bf7c497");
        expect(FAASD_VERSIONS.cniPlugins.sha256.amd64).toMatch(/^[0-9a-f]{64}$/);
        for (const sum of Object.values(FAASD_VERSIONS.faasd.sha256)) expect(sum).toMatch(/^[0-9a-f]{64}$/);
        expect(FAASD_VERSIONS.faasd.version).toMatch(/^\d+\.\d+\.\d+$/);
    });

    it("downloads the release assets faasd's installer names", () => {
        expect(faasdDownloadUrl("0.18.6", "arm64")).toBe("https://github.com/openfaas/faasd/releases/download/0.18.6/faasd-arm64");
        expect(faasdDownloadUrl("0.18.6", "amd64")).toBe("https://github.com/openfaas/faasd/releases/download/0.18.6/faasd");
        expect(cniPluginsDownloadUrl("v1.7.1", "arm64")).toBe("https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz");
    });

    it("normalises image references as Docker does", () => {
        expect(fullyQualifiedImage("prom/prometheus:v3@sha256:x")).toBe("docker.io/prom/prometheus:v3@sha256:x");
        expect(fullyQualifiedImage("nats:2")).toBe("docker.io/library/nats:2");
        expect(fullyQualifiedImage("ghcr.io/openfaas/gateway:1")).toBe("ghcr.io/openfaas/gateway:1");
        expect(fullyQualifiedImage("localhost:5000/x:1")).toBe("localhost:5000/x:1");
    });
});

describe("faasdHostPorts", () => {
    it("lists the gateway, its metrics and the provider, nothing else", () => {
        expect(faasdHostPorts(base)).toEqual([8080, 8082, 8081]);
        expect(faasdHostPorts(moved)).toEqual([31112, 31113, 31114]);
    });

    it.each([
        [{ ...base, metricsPort: 8080 }, /gatewayPort and metricsPort are both 8080/],
        [{ ...base, providerPort: 8082 }, /metricsPort and providerPort are both 8082/],
        [{ ...base, providerPort: 8080 }, /gatewayPort and providerPort are both 8080/],
        [{ ...base, gatewayPort: 0 }, /gatewayPort must be a port between 1 and 65535, got 0/],
        [{ ...base, metricsPort: 70000 }, /metricsPort must be a port/],
        [{ ...base, providerPort: 80.5 }, /providerPort must be a port/],
    ])("refuses %j", (input, message) => {
        expect(() => faasdHostPorts(input)).toThrow(message);
        expect(() => renderFaasdInstallScript(input)).toThrow(message);
    });
});

describe("renderFaasdCompose", () => {
    const compose = (input: FaasdInput) => parse(renderFaasdCompose(input)) as { services: Record<string, Record<string, unknown>> };

    it("runs faasd's four core services from the pinned images", () => {
        const c = compose(base);
        expect(Object.keys(c.services).sort()).toEqual(["gateway", "nats", "prometheus", "queue-worker"]);
        expect(c.services.gateway.image).toBe(FAASD_VERSIONS.images.gateway);
        expect(c.services["queue-worker"].image).toBe(FAASD_VERSIONS.images.queueWorker);
        expect(c.services.nats.image).toBe(FAASD_VERSIONS.images.nats);
        expect(c.services.prometheus.image).toBe(fullyQualifiedImage(FAASD_VERSIONS.images.prometheus));
    });

    it("publishes only the gateway, on the chosen API and metrics ports", () => {
        for (const input of [base, moved]) {
            const c = compose(input);
            expect(c.services.gateway.ports).toEqual([`${input.gatewayPort}:8080`, `${input.metricsPort}:8082`]);
            for (const name of ["nats", "prometheus", "queue-worker"]) expect(c.services[name].ports, name).toBeUndefined();
        }
        expect(renderFaasdCompose(moved)).not.toMatch(/9090:9090|8080:8080/);
    });

    it("points the gateway at the provider's port and the function namespace", () => {
        const env = compose(moved).services.gateway.environment as string[];
        expect(env).toContain("functions_provider_url=http://faasd-provider:31114/");
        expect(env).toContain("function_namespace=openfaas-fn");
        expect(env).toContain("basic_auth=true");
    });

    it("reads the same in YAML 1.1, without aliases, ports as strings", () => {
        const text = renderFaasdCompose(base);
        expect(text).toContain('- "8080:8080"');
        const old = parse(text, { version: "1.1" }) as { services: { gateway: { ports: unknown[] } } };
        expect(old.services.gateway.ports).toEqual(["8080:8080", "8082:8082"]);
        let aliases = 0;
        visit(parseDocument(text), {
            Alias: () => {
                aliases++;
            },
        });
        expect(aliases).toBe(0);
        expect(isAlias(parseDocument(text).contents)).toBe(false);
    });

    it("mounts the basic-auth files and the data directories relative to /var/lib/faasd", () => {
        const c = compose(base);
        const targets = (s: string) => (c.services[s].volumes as { source: string; target: string }[]).map((v) => `${v.source}>${v.target}`);
        expect(targets("gateway")).toEqual(["./secrets/basic-auth-password>/run/secrets/basic-auth-password", "./secrets/basic-auth-user>/run/secrets/basic-auth-user"]);
        expect(targets("queue-worker")).toEqual(targets("gateway"));
        expect(targets("nats")).toEqual(["./nats>/nats"]);
        expect(targets("prometheus")).toEqual(["./prometheus.yml>/etc/prometheus/prometheus.yml", "./prometheus>/prometheus"]);
        // faasd replaces the whole argv with `command`, so each starts with the binary.
        expect((c.services.prometheus.command as string[])[0]).toBe("/bin/prometheus");
        expect((c.services.nats.command as string[])[0]).toBe("/nats-streaming-server");
    });

    it.each([
        [{ ...base, nameservers: [] }, /nameservers must list at least one IPv4 address/],
        [{ ...base, nameservers: ["dns.lan"] }, /nameservers\[0\] must be an IPv4 address, got "dns.lan"/],
        [{ ...base, adminUser: "ad:min" }, /adminUser must be/],
        [{ ...base, readyTimeoutSeconds: 0 }, /readyTimeoutSeconds must be a positive whole number/],
        [{ ...base, versions: { ...FAASD_VERSIONS, images: { ...FAASD_VERSIONS.images, gateway: "ghcr.io/openfaas/gateway:0.27.5" } } }, /versions\.images\.gateway must be an image pinned by digest/],
        [{ ...base, versions: { ...FAASD_VERSIONS, faasd: { version: "latest", sha256: {} } } }, /versions\.faasd\.version must be a release tag/],
        [{ ...base, versions: { ...FAASD_VERSIONS, cniPlugins: { version: "v1.7.1", sha256: { arm64: "abc", amd64: "0".repeat(64) } } } }, /versions\.cniPlugins\.sha256\.arm64 must be 64 lowercase hex digits/],
    ])("refuses bad input %#", (input, message) => {
        expect(() => renderFaasdCompose(input)).toThrow(message);
    });
});

describe("renderFaasdPrometheusConfig", () => {
    it("passes promtool check config and scrapes the gateway and the provider's port", () => {
        const dir = tempDir();
        const file = join(dir, "prometheus.yml");
        const text = renderFaasdPrometheusConfig(moved);
        writeFileSync(file, text);
        const r = spawnSync(validator("promtool"), ["check", "config", file], { encoding: "utf8" });
        expect(r.status, r.stdout + r.stderr).toBe(0);
        const targets = (parse(text) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] }).scrape_configs.map((s) => s.static_configs[0].targets[0]);
        expect(targets).toEqual(["localhost:9090", "gateway:8082", "faasd-provider:31114"]);
    });
});

describe("renderFaasdResolvConf", () => {
    it("lists the nameservers", () => {
        expect(renderFaasdResolvConf(moved)).toMatch(/^# .*\nnameserver 10\.0\.0\.53\nnameserver 10\.0\.0\.54\n$/);
    });
});

describe("the systemd units", () => {
    it.each([
        ["faasd-provider.service", renderFaasdProviderUnit(moved)],
        ["faasd.service", renderFaasdUnit()],
    ])("%s passes systemd-analyze verify without a warning", (name, unit) => {
        const dir = tempDir();
        // verify insists that ExecStart's binary exists; the directives are what is checked here.
        writeFileSync(join(dir, name), unit.replace(FAASD_PATHS.binary, "/usr/bin/true"));
        const r = spawnSync("systemd-analyze", ["verify", join(dir, name)], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe("");
    });

    it("runs the provider on the chosen port, pulling only what it lacks", () => {
        const unit = renderFaasdProviderUnit(moved);
        expect(unit).toContain('Environment="port=31114"');
        expect(unit).toContain(`ExecStart=${FAASD_PATHS.binary} provider --pull-policy=IfNotPresent`);
        expect(unit).toContain(`Environment="secret_mount_path=${FAASD_PATHS.secretsDir}"`);
        expect(renderFaasdUnit()).toContain(`ExecStart=${FAASD_PATHS.binary} up\nRestart=on-failure`);
    });
});

describe("renderFaasdInstallScript", () => {
    it.each([
        ["default ports", base],
        ["moved ports", moved],
    ])("passes shellcheck -S style (%s)", (_, input) => {
        const result = shellcheck(renderFaasdInstallScript(input));
        expect(result.status, result.output).toBe(0);
        expect(result.output).toBe("");
    });

    it("starts with set -euo pipefail before any command", () => {
        const lines = renderFaasdInstallScript(base).split("\n");
        expect(lines[0]).toBe("#!/usr/bin/env bash");
        expect(lines.slice(1).find((l) => l.trim() !== "" && !l.startsWith("#"))).toBe("set -euo pipefail");
    });

    it("embeds the rendered files, and takes the password from stdin only", () => {
        const script = renderFaasdInstallScript(moved);
        const block = script.slice(script.indexOf("readonly FAASD_VERSION="), script.indexOf("\nexport DEBIAN_FRONTEND"));
        // Evaluating the variable block gives back the exact files the script writes.
        const r = spawnSync("bash", ["-c", `${block}\nprintf '%s\\n' "$COMPOSE_YAML" "$PROVIDER_UNIT"`], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe(renderFaasdCompose(moved) + renderFaasdProviderUnit(moved));
        expect(script).toContain("gateway_password=$(cat)");
        expect(script).not.toMatch(/password=['"]/);
    });

    it("verifies downloads against the pinned checksums, or the published one where none is pinned", () => {
        const script = renderFaasdInstallScript(base);
        expect(script).toContain(`readonly CNI_SHA256_ARM64='${FAASD_VERSIONS.cniPlugins.sha256.arm64}'`);
        expect(script).toContain("readonly FAASD_SHA256_ARM64=''");
        expect(script).toContain('fetch "$faasd_url.sha256" "$work/faasd.sha256"');
        const pinned = renderFaasdInstallScript({ ...base, versions: { ...FAASD_VERSIONS, faasd: { version: "0.18.6", sha256: { arm64: "f".repeat(64) } } } });
        expect(pinned).toContain(`readonly FAASD_SHA256_ARM64='${"f".repeat(64)}'`);
    });

    it("never installs Debian's runc or a containerd of its own", () => {
        const script = renderFaasdInstallScript(base);
        expect(script).not.toMatch(/apt_install[^\n]*runc|for pkg in [^\n]*runc/);
        expect(script).not.toMatch(/containerd\/releases|arkade/);
        expect(script).toContain("is_installed containerd.io");
    });
});

/**
 * A real run of the install script as root in a private mount namespace: the directories it
 * writes are bind mounts of a temporary tree, and the commands that would reach the network,
 * systemd, containerd or dpkg are stand-ins on PATH. Nothing outside the temporary tree changes.
 */
describe("renderFaasdInstallScript, run in a mount namespace", () => {
    const MOUNTS: Record<string, string> = {
        varlib: "/var/lib",
        opt: "/opt",
        usrlocalbin: "/usr/local/bin",
        usrlocallib: "/usr/local/lib",
        systemd: "/etc/systemd/system",
        sysctld: "/etc/sysctl.d",
        run: "/run",
    };

    interface Host {
        readonly root: string;
        readonly state: string;
        readonly fakes: string;
        readonly fixtures: string;
        readonly versions: FaasdVersions;
    }

    /** A temporary Pi: its file tree, the stand-in commands, and release fixtures served by the fake curl. */
    function host(): Host {
        const root = tempDir();
        for (const dir of Object.keys(MOUNTS)) mkdirSync(join(root, "fs", dir), { recursive: true });
        const state = join(root, "state");
        const fixtures = join(root, "fixtures");
        const fakes = join(root, "bin");
        for (const dir of [state, fixtures, fakes]) mkdirSync(dir);
        writeFileSync(join(state, "forwarding"), "0\n");
        writeFileSync(join(state, "images"), "");

        // The release assets: a stand-in faasd binary with its published checksum file, and a CNI archive.
        writeFileSync(join(fixtures, "faasd-arm64"), "#!/bin/sh\necho faasd\n");
        writeFileSync(join(fixtures, "faasd-arm64.sha256"), `${sha256File(join(fixtures, "faasd-arm64"))}  bin/faasd-arm64\n`);
        const plugins = join(root, "plugins");
        mkdirSync(plugins);
        for (const p of ["bridge", "host-local", "firewall", "loopback", "portmap"]) {
            writeFileSync(join(plugins, p), "#!/bin/sh\n");
            chmodSync(join(plugins, p), 0o755);
        }
        const tgz = join(fixtures, "cni-plugins-linux-arm64-v1.7.1.tgz");
        const tar = spawnSync("tar", ["-czf", tgz, "-C", plugins, "."], { encoding: "utf8" });
        expect(tar.status, tar.stderr).toBe(0);
        const versions: FaasdVersions = {
            ...FAASD_VERSIONS,
            cniPlugins: { version: "v1.7.1", sha256: { arm64: sha256File(tgz), amd64: "0".repeat(64) } },
        };

        const fake = (name: string, body: string) => {
            writeFileSync(join(fakes, name), `#!/bin/sh\n${body}\n`);
            chmodSync(join(fakes, name), 0o755);
        };
        fake("dpkg", `[ "$1" = --print-architecture ] && echo arm64`);
        fake("dpkg-query", `echo "install ok installed"`);
        fake("apt-get", `echo "apt-get $*" >>"${state}/apt.log"`);
        fake("sysctl", `case $1 in -n) cat "${state}/forwarding" ;; -q) echo 1 >"${state}/forwarding" ;; esac`);
        fake(
            "systemctl",
            `echo "systemctl $*" >>"${state}/systemctl.log"
case $1 in
is-enabled) [ -f "${state}/enabled-$3" ] ;;
is-active) [ -f "${state}/active-$3" ] ;;
enable) touch "${state}/enabled-$2" ;;
restart) touch "${state}/active-$2" ;;
esac`,
        );
        fake(
            "ctr",
            `case "$3 $4" in
"images ls") cat "${state}/images" ;;
"images pull") echo "$7" >>"${state}/images"; echo "ctr $*" >>"${state}/ctr.log" ;;
*) exit 1 ;;
esac`,
        );
        // Serves release URLs from the fixtures (by file name) and answers the gateway's health checks.
        fake(
            "curl",
            `out="" url=""
while [ $# -gt 0 ]; do
    case $1 in
    -o) out=$2; shift ;;
    --retry|--max-time|--proto) shift ;;
    -*) ;;
    *) url=$1 ;;
    esac
    shift
done
case $url in
http://127.0.0.1:*) exit 0 ;;
https://github.com/*)
    echo "$url" >>"${state}/downloads.log"
    file="${fixtures}/\${url##*/}"
    [ -f "$file" ] || exit 22
    cp "$file" "$out" ;;
*) exit 6 ;;
esac`,
        );
        return { root, state, fakes, fixtures, versions };
    }

    function sha256File(file: string): string {
        return spawnSync("sha256sum", [file], { encoding: "utf8" }).stdout.split(" ")[0];
    }

    /** Runs the script as root in a new mount namespace over the host's tree; stdin is `password`. */
    function run(h: Host, script: string, password: string, env: Record<string, string> = {}) {
        const file = join(h.root, "install.sh");
        writeFileSync(file, script);
        const binds = Object.entries(MOUNTS)
            .map(([dir, target]) => `mount --bind ${join(h.root, "fs", dir)} ${target}`)
            .join("\n");
        const wrapper = `set -e
${binds}
if [ -f ${h.state}/containerd-socket ]; then
    mkdir -p /run/containerd
    rm -f /run/containerd/containerd.sock
    python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("/run/containerd/containerd.sock")'
fi
exec bash ${file}`;
        const r = spawnSync("unshare", ["-m", "--propagation", "private", "bash", "-c", wrapper], {
            input: password,
            encoding: "utf8",
            env: { ...process.env, ...env, PATH: `${h.fakes}:/usr/sbin:/usr/bin:/sbin:/bin` },
            timeout: 60_000,
        });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    const fs = (h: Host, dir: keyof typeof MOUNTS | string, ...rest: string[]) => join(h.root, "fs", dir, ...rest);
    const log = (h: Host, name: string) => (existsSync(join(h.state, name)) ? readFileSync(join(h.state, name), "utf8") : "");
    const PASSWORD = "s3cr3t-p4ss!word#1";

    it("installs faasd, then changes nothing on a second run", () => {
        const h = host();
        writeFileSync(join(h.state, "containerd-socket"), "");
        const script = renderFaasdInstallScript({ ...moved, versions: h.versions, readyTimeoutSeconds: 5 });

        const first = run(h, script, PASSWORD);
        expect(first.status, first.stderr).toBe(0);
        expect(first.stdout).toMatch(FAASD_INSTALL_SUMMARY);
        for (const step of ["ip-forwarding", "cni-plugins: v1.7.1", "faasd-binary: 0.18.6", "faasd-config", "faasd-secrets", "faasd-units", "faasd-images", "faasd-services"]) {
            expect(first.stdout).toContain(`picloud: changed ${step}`);
        }
        expect(first.stdout).toContain("picloud: ok faasd-gateway");

        // What is on the Pi now.
        expect(readFileSync(fs(h, "varlib", "faasd", "docker-compose.yaml"), "utf8")).toBe(renderFaasdCompose(moved));
        expect(readFileSync(fs(h, "varlib", "faasd", "prometheus.yml"), "utf8")).toBe(renderFaasdPrometheusConfig(moved));
        expect(readFileSync(fs(h, "systemd", "faasd-provider.service"), "utf8")).toBe(renderFaasdProviderUnit(moved));
        expect(readFileSync(fs(h, "varlib", "faasd", "secrets", "basic-auth-password"), "utf8")).toBe(PASSWORD);
        expect(readFileSync(fs(h, "varlib", "faasd", "secrets", "basic-auth-user"), "utf8")).toBe("ops");
        expect(statSync(fs(h, "varlib", "faasd", "secrets")).mode & 0o777).toBe(0o700);
        expect(statSync(fs(h, "varlib", "faasd", "secrets", "basic-auth-password")).mode & 0o777).toBe(0o644);
        expect(statSync(fs(h, "varlib", "faasd", "nats")).uid).toBe(65534);
        expect(statSync(fs(h, "usrlocalbin", "faasd")).mode & 0o777).toBe(0o755);
        expect(existsSync(fs(h, "opt", "cni", "bin", "firewall"))).toBe(true);
        expect(readFileSync(fs(h, "sysctld", "60-picloud-faasd.conf"), "utf8")).toContain("net.ipv4.conf.all.forwarding = 1");
        expect(log(h, "images").trim().split("\n").sort()).toEqual(Object.values(FAASD_VERSIONS.images).map(fullyQualifiedImage).sort());
        expect(log(h, "ctr.log")).toContain("--platform linux/arm64");
        expect(log(h, "systemctl.log")).toMatch(/daemon-reload[\s\S]*restart faasd-provider\nsystemctl restart faasd\n/);
        expect(log(h, "downloads.log").trim().split("\n")).toEqual([
            cniPluginsDownloadUrl("v1.7.1", "arm64"),
            faasdDownloadUrl("0.18.6", "arm64"),
            `${faasdDownloadUrl("0.18.6", "arm64")}.sha256`,
        ]);
        expect(log(h, "apt.log")).toBe("");

        const second = run(h, script, PASSWORD);
        expect(second.status, second.stderr).toBe(0);
        expect(second.stdout).not.toContain("picloud: changed");
        expect(second.stdout).toMatch(/^picloud-faasd: changed=0$/m);
        expect(log(h, "downloads.log").trim().split("\n")).toHaveLength(3);
        expect(log(h, "systemctl.log").match(/restart/g)).toHaveLength(2);

        // A new password rewrites the secret and restarts faasd, and never shows up in the output.
        const third = run(h, script, "an0ther-pass");
        expect(third.status, third.stderr).toBe(0);
        expect(third.stdout).toContain("picloud: changed faasd-secrets");
        expect(third.stdout).toContain("picloud: changed faasd-services");
        expect(readFileSync(fs(h, "varlib", "faasd", "secrets", "basic-auth-password"), "utf8")).toBe("an0ther-pass");
        for (const r of [first, second, third]) {
            expect(r.stdout + r.stderr).not.toContain(PASSWORD);
            expect(r.stdout + r.stderr).not.toContain("an0ther-pass");
        }
    });

    it("refuses a download whose SHA-256 is not the pinned one, and installs nothing from it", () => {
        const h = host();
        const wrong = { ...h.versions, cniPlugins: { ...h.versions.cniPlugins, sha256: { ...h.versions.cniPlugins.sha256, arm64: "0".repeat(64) } } };
        const r = run(h, renderFaasdInstallScript({ ...base, versions: wrong }), PASSWORD, { PICLOUD_SKIP_START: "1" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/cni-plugins-linux-arm64-v1\.7\.1\.tgz has SHA-256 [0-9a-f]{64}, expected 0{64}: refusing to install it/);
        expect(existsSync(fs(h, "opt", "cni", "bin", "bridge"))).toBe(false);
    });

    it("refuses a faasd binary that does not match its published checksum", () => {
        const h = host();
        writeFileSync(join(h.fixtures, "faasd-arm64.sha256"), `${"1".repeat(64)}  bin/faasd-arm64\n`);
        const r = run(h, renderFaasdInstallScript({ ...base, versions: h.versions }), PASSWORD, { PICLOUD_SKIP_START: "1" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(/faasd-arm64 has SHA-256 [0-9a-f]{64}, expected 1{64}: refusing to install it/);
        expect(existsSync(fs(h, "usrlocalbin", "faasd"))).toBe(false);
    });

    it("skips what needs containerd on a test host, and says so", () => {
        const h = host();
        const r = run(h, renderFaasdInstallScript({ ...base, versions: h.versions }), PASSWORD, { PICLOUD_SKIP_START: "1" });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain("picloud: skipped faasd-prerequisites: PICLOUD_SKIP_START=1");
        expect(r.stdout).toContain("picloud: skipped faasd-services: PICLOUD_SKIP_START=1");
        expect(log(h, "systemctl.log")).not.toContain("restart");
    });

    it.each([
        ["no containerd socket", (h: Host) => h, /containerd does not listen on \/run\/containerd\/containerd\.sock/],
        [
            "a second containerd",
            (h: Host) => {
                writeFileSync(join(h.state, "containerd-socket"), "");
                writeFileSync(fs(h, "usrlocalbin", "containerd"), "");
                return h;
            },
            /\/usr\/local\/bin\/containerd exists/,
        ],
    ])("stops before changing anything with %s", (_, prepare, message) => {
        const h = prepare(host());
        const r = run(h, renderFaasdInstallScript({ ...base, versions: h.versions }), PASSWORD);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(message);
        expect(existsSync(fs(h, "varlib", "faasd"))).toBe(false);
    });

    it.each([
        ["an empty stdin", "", /stdin held no gateway admin password/],
        ["a password with a newline inside", "abc\ndef", /holds a control character/],
    ])("refuses %s without echoing it", (_, password, message) => {
        const h = host();
        const r = run(h, renderFaasdInstallScript({ ...base, versions: h.versions }), password, { PICLOUD_SKIP_START: "1" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(message);
        if (password) expect(r.stderr).not.toContain("def");
    });
});
