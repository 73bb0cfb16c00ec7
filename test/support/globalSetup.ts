import { spawnSync } from "node:child_process";
import * as path from "node:path";

/**
 * Fetches, once per `npm test` and before any test file starts, the real programs the suite
 * judges rendered files with (shellcheck, nft, promtool, amtool, haproxy, keepalived, sshd,
 * ssh-audit, fail2ban …), from Debian, and only what is missing: `npm ci && npm test` is the
 * whole setup. When fetching fails, this says so and the run goes on: each test that needs a
 * missing tool then fails naming it and how to install it.
 */
export default function setup(): void {
    const script = path.resolve(__dirname, "install-validators.sh");
    const r = spawnSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) {
        console.error(`picloud: fetching the validators failed (${script} exited ${r.status ?? r.signal}); tests that need one will fail naming it`);
    }
}
