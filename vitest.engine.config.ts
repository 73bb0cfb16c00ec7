import { defineConfig } from "vitest/config";

/**
 * The engine lane (test/engine): the real Pulumi CLI and command provider against the host
 * suite's namespaced Debian hosts. Needs root; `npm run test:engine` runs it.
 */
export default defineConfig({
    test: {
        include: ["test/engine/**/*.test.ts"],
        // Host tools, the hosts' rootfs, the Pulumi CLI (built from its Go module the first time)
        // and the command provider are set up here, before any timeout starts.
        globalSetup: ["test/engine/globalSetup.ts"],
        pool: "forks",
        fileParallelism: false,
        // A first `pulumi up` bootstraps three hosts; generous for a loaded CI machine.
        hookTimeout: 300_000,
        testTimeout: 900_000,
    },
});
