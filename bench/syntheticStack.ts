import * as fs from "node:fs";
import * as path from "node:path";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0";
const IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1@sha256:862ca45e61b32392f7941a1bdfdbe5ff8b6899070135f1bdca1c287d0057fc94";

/**
 * A stack document with `pis` Pis (Pi 4 and Pi 5, 8 GB, a third on SSD) and work that grows with
 * them: one app of two spread replicas per two Pis, and the service registry (CoreDNS on every
 * Pi), so the plan's size is linear in the Pi count.
 */
export function syntheticStack(pis: number): { config: Record<string, unknown> } {
    const apps: Record<string, unknown> = {};
    for (let i = 0; i < Math.ceil(pis / 2); i++) {
        apps[`app${i}`] = { image: IMAGE, replicas: Math.min(2, pis), memoryMb: 128, cpus: 0.25, port: 9898, metrics: { port: 10000 + i } };
    }
    return {
        config: {
            "picloud:pis": Array.from({ length: pis }, (_, i) => ({
                name: `pi-${i}`,
                address: `10.${Math.floor(i / 250)}.${i % 250}.10`,
                hostKey: HOST_KEY,
                model: i % 2 ? "pi5" : "pi4",
                memoryMb: 8192,
                storage: i % 3 ? "sd" : "ssd",
            })),
            "picloud:sshPrivateKey": { secure: "v1:bench" },
            // The service registry too, CoreDNS on every Pi and three etcd members at every size
            // (SD cards allowed, as on dev), so a comparison of sizes scales the Pis, not the cluster.
            "picloud:tiers": { apps, registry: { allowSdCard: true } },
        },
    };
}

/** Runs `script --child <args>` in a fresh Node process (the Pulumi runtime is per process). */
export function childArgs(script: string, args: string[]): string[] {
    return [path.join(path.dirname(require.resolve("tsx/package.json")), "dist", "cli.mjs"), script, "--child", ...args];
}

/** Median of numbers. */
export function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}

export const benchRoot = fs.realpathSync(path.join(__dirname, ".."));
