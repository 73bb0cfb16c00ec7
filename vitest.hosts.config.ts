import { defineConfig } from "vitest/config";

/**
 * The host suite (test/hosts): picloud's host scripts run for real over SSH against Debian hosts
 * booted with systemd-nspawn. Needs root; `npm run test:hosts` runs it.
 */
export default defineConfig({
    test: {
        include: ["test/hosts/**/*.test.ts"],
        // A cold first run builds the hosts' rootfs (debootstrap, about a minute) here, untimed.
        globalSetup: ["test/hosts/globalSetup.ts"],
        // Processes, not worker threads: a test bed's machines die with the thread that started
        // them (PR_SET_PDEATHSIG), which must live as long as its process.
        pool: "forks",
        // One test bed per machine at a time: the bridge, its subnet and the `pct-` names are fixed.
        fileParallelism: false,
        // Booting a test bed takes seconds; generous for a loaded CI machine.
        hookTimeout: 120_000,
        testTimeout: 120_000,
    },
});
