import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["components/**/*.test.ts", "policies/**/*.test.ts", "test/**/*.test.ts"],
        // The host suite and the engine lane boot namespaced Debian hosts: `npm run test:hosts` and
        // `npm run test:engine` run them.
        exclude: ["**/node_modules/**", "test/hosts/**", "test/engine/**"],
        // The validators (shellcheck, promtool, haproxy …) are fetched once, before any file runs.
        globalSetup: ["test/support/globalSetup.ts"],
        // Names a test that blocks its worker long enough to risk vitest's fixed 60 s call timeout.
        setupFiles: ["test/support/eventLoopWatch.ts"],
        // Each file gets its own process: the Pulumi SDK's runtime state is global per process.
        pool: "forks",
        testTimeout: 60_000,
        // Hooks plan whole stacks or start namespaced servers; on a loaded 2-core machine that takes
        // many times what it takes on an idle one, so they get the tests' time, not vitest's 10 s.
        hookTimeout: 60_000,
    },
});
