import { accessSync, constants } from "node:fs";
import * as path from "node:path";

/** Programs that judge rendered artifacts (or run them for real) in tests. */
export type ValidatorName = "promtool" | "prometheus" | "amtool" | "alertmanager" | "haproxy" | "keepalived" | "etcd" | "etcdctl" | "coredns" | "victoria-metrics" | "vmbackup" | "vmrestore" | "victoria-logs" | "dig" | "garage" | "patroni" | "patronictl" | "cqlsh" | "cassandra-lib" | "nats-server" | "nats" | "rabbitmq-server" | "rabbitmqctl" | "rabbitmq-queues" | "pika-python";

/** Where `install-validators.sh` puts binaries unless `$PICLOUD_VALIDATORS_DIR` says otherwise. */
export const DEFAULT_VALIDATORS_DIR = path.resolve(__dirname, "../../.cache/validators/bin");

/** True when `file` exists and may be executed. */
export function executable(file: string): boolean {
    try {
        accessSync(file, constants.X_OK);
        return true;
    } catch {
        return false;
    }
}

/**
 * Absolute path of a validator binary: first `$PICLOUD_VALIDATORS_DIR/<name>` (default
 * `<repo>/.cache/validators/bin`), then `$PATH`. Throws when neither has it, naming the script
 * that installs it, so a missing tool fails loudly instead of a test being skipped.
 */
export function validator(name: ValidatorName): string {
    const dirs = [process.env.PICLOUD_VALIDATORS_DIR || DEFAULT_VALIDATORS_DIR, ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean)];
    for (const dir of dirs) {
        const candidate = path.resolve(dir, name);
        if (executable(candidate)) return candidate;
    }
    throw new Error(`validator "${name}" not found in ${dirs[0]} nor on PATH: run \`bash test/support/install-validators.sh\` from the repository root`);
}
