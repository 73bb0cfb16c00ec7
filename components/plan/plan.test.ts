import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../../test/support/tempDirs";
import { GENERATED_PLACEHOLDER } from "./mockRuntime";
import { picloudProgram } from "../cloud/program";
import { installMockRuntime } from "./mockRuntime";
import { SECRET_PLACEHOLDER, runPlan, toPulumiConfig } from "./plan";
import { formatPlan } from "./report";
import { scriptPath } from "../renderers/remoteCommands";

const root = path.resolve(__dirname, "..", "..");
const stackFile = (stack: string) => path.join(root, "stacks", `Pulumi.${stack}.yaml`);
const tmp = tempDirs("picloud-plan-");

describe("offline plan of the example stacks", () => {
    for (const [stack, pis] of [["lab", 1], ["dev", 3], ["prod", 6]] as const) {
        it(`plans ${stack}: a PiHost per Pi, containers on the Pi placement chose, files written`, async () => {
            const outDir = tmp();
            const plan = await runPlan({ stack, source: { file: stackFile(stack) }, outDir });
            if (!plan.ok) throw new Error(plan.error);

            const hosts = plan.resources.filter((r) => r.type === "picloud:host:PiHost");
            // Named after the cloud, so two PiClouds in one program never share a URN.
            expect(hosts.map((h) => h.name).sort()).toEqual(Object.keys(plan.outputs.pis).map((pi) => `picloud-${pi}`).sort());
            expect(hosts).toHaveLength(pis);

            // Every container runs under its tier component and through the Docker provider of
            // the very Pi placement put it on.
            const byUrn = new Map(plan.resources.map((r) => [r.urn, r]));
            const containers = plan.resources.filter((r) => r.type === "docker:index/container:Container");
            expect(containers.length).toBeGreaterThan(0);
            for (const c of containers) {
                expect(["picloud:apps:AppServers", "picloud:monitoring:Monitoring", "picloud:loadbalancer:LoadBalancer", "picloud:registry:ServiceRegistry", "picloud:blob:BlobStorage", "picloud:database:Database", "picloud:monitoring:VictoriaMetrics", "picloud:monitoring:VictoriaLogs"]).toContain(byUrn.get(c.parent)?.type);
                const provider = byUrn.get(c.provider.split("::").slice(0, -1).join("::"));
                expect(provider?.type).toBe("pulumi:providers:docker");
                const piOfProvider = byUrn.get(provider!.parent)!.name.replace(/^picloud-/, "");
                expect(plan.outputs.placement[piOfProvider].replicas).toContain(c.inputs.name);
            }

            for (const pi of Object.keys(plan.outputs.pis)) {
                expect(fs.readFileSync(path.join(outDir, pi, scriptPath("bootstrap.sh")), "utf8")).toMatch(/^#!\/usr\/bin\/env bash/);
                // Scripts are kept where a reboot does not empty them; nothing is shipped to /tmp.
                expect(fs.existsSync(path.join(outDir, pi, "tmp"))).toBe(false);
            }
            const knownHosts = fs.readFileSync(path.join(outDir, "known_hosts"), "utf8");
            expect(knownHosts.trim().split("\n")).toHaveLength(pis);
            expect(plan.placeholders).toContain("picloud:sshPrivateKey");
        });
    }

    it("counts the monitoring Pi's services, not its host agents, in the single-Pi loss", async () => {
        const plan = await runPlan({ stack: "lab", source: { file: stackFile("lab") } });
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.outputs.singlePiLoss).toEqual({ "lab-pi": ["apps", "functions", "loadbalancer", "monitoring", "registry", "quorum etcd"] });
    });

    it("never writes a secret, not even its placeholder, into a rendered file", async () => {
        const outDir = tmp();
        const plan = await runPlan({ stack: "prod", source: { file: stackFile("prod") }, outDir });
        if (!plan.ok) throw new Error(plan.error);
        expect(plan.placeholders).toEqual(["picloud:edgeTlsPem", "picloud:helloApiToken", "picloud:sshPrivateKey"]);
        // Nor a generated password (Grafana's, the functions gateway's): those travel on stdin or as secret env.
        for (const f of plan.files) expect(f.text).not.toContain(SECRET_PLACEHOLDER);
        for (const f of plan.files) expect(f.text).not.toContain(GENERATED_PLACEHOLDER);
    });

    it("prints resources per component, workloads per Pi and the single-Pi loss", async () => {
        const plan = await runPlan({ stack: "dev", source: { file: stackFile("dev") } });
        if (!plan.ok) throw new Error(plan.error);
        const text = formatPlan(plan);
        expect(text).toContain('picloud offline plan: stack "dev", 3 Pis');
        expect(text).toMatch(/picloud:host:PiHost "picloud-dev-2": pulumi:providers:docker, 7× command:remote:Command, 8× docker:index\/remoteImage:RemoteImage/);
        expect(text).toMatch(/picloud:registry:ServiceRegistry "picloud-registry": 13× command:remote:Command, 6× docker:index\/container:Container\n +picloud:monitoring:Attachment "picloud-registry-monitoring"/);
        expect(text).toMatch(/picloud:blob:BlobStorage "picloud-blob": 3× random:index\/randomBytes:RandomBytes, 2× random:index\/randomId:RandomId, random:index\/randomPassword:RandomPassword, 8× command:remote:Command, 3× docker:index\/container:Container\n +picloud:monitoring:Attachment "picloud-blob-monitoring"/);
        expect(text).toMatch(/picloud:apps:AppServers "picloud-hello": 3× docker:index\/container:Container\n +picloud:monitoring:Attachment "picloud-hello-monitoring"/);
        // Each data tier: its members on distinct Pis with their storage, what writes need and what it may lose.
        expect(text).toMatch(/\n  etcd +registry +etcd-0 dev-\d \(sd\), etcd-1 dev-\d \(sd\), etcd-2 dev-\d \(sd\) +2 of 3 members +1 member\n/);
        expect(text).toMatch(/\n  garage +blob +garage-0 dev-\d \(sd\), garage-1 dev-\d \(sd\), garage-2 dev-\d \(sd\) +2 of 3 members +1 member\n/);
        expect(text).toMatch(/\n  postgres +database +postgres-0 dev-\d \(sd\), postgres-1 dev-\d \(sd\), postgres-2 dev-\d \(sd\) +the primary \(a standby is promoted\) +2 members\n/);
        expect(text).toMatch(/dev-2 +2192\/3584 MB \(61%\) +2\.65\/4 +app-hello-\d, cadvisor-1, coredns-1, etcd-\d, faasd-0, garage-\d, haproxy-\d, node-exporter-1, postgres-\d, postgres-exporter-\d/);
        expect(text).toMatch(/picloud:database:Database "picloud-database": 6× random:index\/randomPassword:RandomPassword, 29× command:remote:Command, 6× docker:index\/container:Container\n +picloud:monitoring:Attachment "picloud-database-monitoring"/);
        // Behind the load balancer the app also has its four golden signals from HAProxy.
        expect(text).toMatch(/picloud:apps:AppServers "picloud-hello" +1 job, 3 targets +8 alerts +picloud \/ app hello +within 180 s +app=hello,tier=apps/);
        // Monitoring has a replica on dev-1 and dev-3: losing either leaves alerting; VictoriaLogs is one store on dev-3.
        expect(text).toContain("dev-1: every tier keeps a replica");
        expect(text).toContain("dev-3: tiers left with no replica: monitoring-victoria-logs\n");
        expect(text).not.toContain("alerting goes with");
        // faasd is a single-host system: its Pi is the one place functions run.
        expect(text).toContain("dev-2: tiers left with no replica: functions");
    });
});

describe("the plan on monitoring that cannot survive its Pi", () => {
    it("says plainly on lab that alerting goes with its one Pi, and on dev with one replica what puts a second on another", async () => {
        const lab = await runPlan({ stack: "lab", source: { file: stackFile("lab") } });
        if (!lab.ok) throw new Error(lab.error);
        expect(formatPlan(lab)).toMatch(/\n  lab-pi: tiers left with no replica: [^\n]*monitoring[^\n]*\n    alerting goes with lab-pi: only the dead man's switch notices \(a second monitoring replica needs a second Pi\)\n/);
        const doc = YAML.parse(fs.readFileSync(stackFile("dev"), "utf8"));
        doc.config["picloud:tiers"].monitoring.pis = ["dev-1"];
        const one = await runPlan({ stack: "dev", source: { document: doc } });
        if (!one.ok) throw new Error(one.error);
        expect(formatPlan(one)).toContain("    alerting goes with dev-1: only the dead man's switch notices (picloud:tiers.monitoring.replicas: 2 puts a second replica on another Pi)\n");
    });
});

describe("offline plan failures", () => {
    const dev = () => YAML.parse(fs.readFileSync(stackFile("dev"), "utf8"));

    it("fails over capacity naming the workload and each Pi's budget, registering no container", async () => {
        const doc = dev();
        doc.config["picloud:tiers"].apps.hello.memoryMb = 2500;
        doc.config["picloud:tiers"].apps.big = { ...doc.config["picloud:tiers"].apps.hello, hostPort: 8081, metrics: { port: 9798 }, replicas: 1, memoryMb: 1000, route: { pathPrefix: "/big" } };
        const plan = await runPlan({ stack: "dev", source: { document: doc } });
        expect(plan.ok).toBe(false);
        if (plan.ok) return;
        expect(plan.error).toContain('picloud:tiers.apps.big: replica 1 of 1 of "app-big" (1000 MB, 0.25 CPU) does not fit');
        expect(plan.error).toMatch(/dev-1: budget 3584 MB .* used 3572 MB .* by prometheus#0 512 MB, .*coredns#0 64 MB, .*app-hello#\d 2500 MB; needs 1000 MB, 12 MB free/);
        expect(plan.error).toMatch(/dev-2: budget 3584 MB .* used 2740 MB .*; needs 1000 MB, 844 MB free/);
    });

    it("fails on invalid config with the program's message", async () => {
        const doc = dev();
        doc.config["picloud:pis"][2].address = "192.168.10.300";
        const plan = await runPlan({ stack: "dev", source: { document: doc } });
        expect(plan.ok).toBe(false);
        if (!plan.ok) expect(plan.error).toContain('picloud:pis[2].address: expected an IPv4 address such as 192.168.1.20, got "192.168.10.300"');
    });

    it("names the stacks there are when asked for one that is not", async () => {
        const plan = await runPlan({ stack: "nope", source: { file: stackFile("nope") } });
        expect(plan.ok).toBe(false);
        if (!plan.ok) expect(plan.error).toMatch(/no stack config at .*Pulumi\.nope\.yaml; stacks here: dev, lab, prod/);
    });
});

describe("npm run plan", () => {
    const cli = (...args: string[]) =>
        spawnSync(process.execPath, [path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), path.join(root, "components", "plan", "cli.ts"), ...args], {
            cwd: root,
            encoding: "utf8",
        });

    it("exits 0 and writes out/<stack> for a good stack", () => {
        const out = tmp();
        const r = cli("--stack", "lab", "--out", out);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain('stack "lab", 1 Pi');
        expect(fs.existsSync(path.join(out, "lab", "lab-pi", scriptPath("bootstrap.sh")))).toBe(true);
    });

    it("exits 1 with the message for a stack that does not exist, 2 for bad usage", () => {
        const missing = cli("--stack", "missing", "--out", tmp());
        expect(missing.status).toBe(1);
        expect(missing.stderr).toContain("no stack config at");
        expect(cli("--stak", "lab").status).toBe(2);
    });
});

describe("the placement lock", () => {
    const cli = (...args: string[]) =>
        spawnSync(process.execPath, [path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), path.join(root, "components", "plan", "cli.ts"), ...args], {
            cwd: root,
            encoding: "utf8",
        });
    /** A copy of the dev stack in a folder of its own, with `edit` applied to its config. */
    const devStack = (dir: string, edit: (config: Record<string, any>) => void = () => undefined) => {
        const doc = YAML.parse(fs.readFileSync(stackFile("dev"), "utf8"));
        edit(doc.config);
        fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), YAML.stringify(doc));
    };
    const lockOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "placement.dev.json"), "utf8")).replicas;
    const fourthPi = (config: Record<string, any>) =>
        config["picloud:pis"].push({ ...config["picloud:pis"][0], name: "dev-4", address: "192.168.10.14", memoryMb: 8192, labels: {} });

    it("is written by the plan, then keeps every replica when a roomy Pi is added and a Pi's memory changes", () => {
        const dir = tmp();
        devStack(dir);
        const first = cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp());
        expect(first.status, first.stderr).toBe(0);
        expect(first.stdout).toMatch(/app-hello#0: \(new\) → dev-\d \(new replica\)/);
        expect(first.stdout).toContain("Wrote the placement lock");
        const locked = lockOf(dir);

        devStack(dir, (config) => {
            fourthPi(config);
            config["picloud:pis"][1].memoryMb = 8192;
        });
        const again = cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp(), "--frozen-lock");
        expect(again.status, again.stderr).toBe(0);
        expect(again.stdout).toContain("none: every replica stays on its Pi");
        expect(lockOf(dir)).toEqual(locked);

        // Asked for, a rebalance moves replicas onto the new Pi, lists each move, and writes the lock.
        const rebalanced = cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp(), "--rebalance");
        expect(rebalanced.status, rebalanced.stderr).toBe(0);
        expect(rebalanced.stdout).toMatch(/→ dev-4 \(rebalance asked for\)/);
        expect(lockOf(dir)).not.toEqual(locked);
        expect(cli("--stack", "dev", "--stacks-dir", dir, "--rebalance", "nope").stderr).toMatch(/--rebalance: expected workloads of stack "dev" \(.*app-hello.*\), got "nope"/);
    });

    it("lists the moves a removed Pi causes, and --frozen-lock refuses them", () => {
        const dir = tmp();
        devStack(dir);
        expect(cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp()).status).toBe(0);
        const locked = lockOf(dir);
        // dev-3 dies; a new Pi takes its place, among the monitoring Pis the config names too.
        const replaced = (config: Record<string, any>) => {
            fourthPi(config);
            config["picloud:pis"].splice(2, 1);
            config["picloud:tiers"].monitoring.pis = ["dev-1", "dev-4"];
        };
        devStack(dir, replaced);
        const frozen = cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp(), "--frozen-lock");
        expect(frozen.status).toBe(1);
        expect(frozen.stderr).toContain("placement.dev.json is out of date");
        const helloOnDev3 = (locked["app-hello"] as string[]).indexOf("dev-3");
        expect(frozen.stdout).toContain(`app-hello#${helloOnDev3}: dev-3 → `);
        expect(frozen.stdout).toContain("(dev-3 is no longer in picloud:pis)");
        expect(lockOf(dir)).toEqual(locked);
    });

    it("is what pulumi up places by: the program refuses a missing lock and one the config would change", async () => {
        const dir = tmp();
        const run = async (edit?: (config: Record<string, any>) => void) => {
            devStack(dir, edit);
            const document = YAML.parse(fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8"));
            const { config, secretKeys } = toPulumiConfig({ ...document.config, "picloud:sshPrivateKey": { secure: "v1:AAAA" } });
            const mock = await installMockRuntime({ project: "picloud", stack: "dev", config, secretKeys });
            try {
                return picloudProgram({ lockFile: path.join(dir, "placement.dev.json"), planCommand: "npm run plan -- --stack dev" });
            } finally {
                await mock.settle().catch(() => undefined);
            }
        };
        await expect(run()).rejects.toThrow(/placement\.dev\.json: expected the stack's placement lock, got no file; run `npm run plan -- --stack dev`/);
        expect(cli("--stack", "dev", "--stacks-dir", dir, "--out", tmp()).status).toBe(0);
        const { cloud } = await run(fourthPi);
        expect(cloud.plan.changes).toEqual([]);
        await expect(run((config) => { fourthPi(config); config["picloud:pis"].splice(2, 1); config["picloud:tiers"].monitoring.pis = ["dev-1", "dev-4"]; })).rejects.toThrow(/the placement lock is out of date; this config would change it:\n(?: {2}.*\n)*? {2}app-hello#\d: dev-3 → dev-4 \(dev-3 is no longer in picloud:pis\)/);
    });
});
