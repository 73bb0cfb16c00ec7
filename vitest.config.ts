import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["components/**/*.test.ts", "policies/**/*.test.ts", "test/**/*.test.ts"],
        // Each file gets its own process: the Pulumi SDK's runtime state is global per process.
        pool: "forks",
        testTimeout: 60_000,
    },
});
