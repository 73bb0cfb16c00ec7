import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { prepareHostImages } from "./testbed";

/**
 * Before any test's timeout starts: installs what the test bed needs on this machine (only what is
 * missing, from Debian), then builds the hosts' rootfs and apt repository if they are not cached,
 * and VictoriaLogs from its Go module if it is not.
 */
export default async function setup(): Promise<void> {
    const script = path.resolve(__dirname, "install-host-tools.sh");
    const r = spawnSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new Error(`${script} exited ${r.status ?? r.signal}: the host suite needs systemd-container, debootstrap, apt-utils, openssh-client and iproute2 (apt-get install them as root)`);
    await prepareHostImages();
    // VictoriaLogs, built from its Go module, receives the hosts' journals (logShipping.test.ts).
    const victoria = path.resolve(__dirname, "../support/build-victoria.sh");
    const built = spawnSync("bash", [victoria], { stdio: ["ignore", "inherit", "inherit"] });
    if (built.status !== 0) throw new Error(`${victoria} exited ${built.status ?? built.signal}: the host suite needs VictoriaLogs built from its Go module (Go 1.26.6 or later)`);
}
