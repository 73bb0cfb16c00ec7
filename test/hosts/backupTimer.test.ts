/**
 * Backups as timers, on a namespaced Debian host with systemd: picloud's backup setup script,
 * shipped and run as root as `runRootScript` runs it, with a stand-in backup command. It installs
 * the timer and runs a first backup; each run lands in a folder of its own and records its
 * success for node_exporter; older runs beyond `keep` go; a failing run records nothing and leaves
 * no folder, and neither does a run with nothing to back up (it succeeds); a second install changes nothing; the remove command takes the units and the metric
 * away and keeps the backups.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_METRIC, BACKUP_SKIPPED, backupTimerRemoveCommand, renderBackupTimerScript } from "../../components/renderers/backupTimer";
import { startTestbed, Testbed, TestHost } from "./testbed";

const TEXTFILE = "/var/lib/picloud/textfile";
const DIR = "/srv/picloud/backups/test";
const input = (command: string) => ({ name: "test", onCalendar: "daily", command, local: { directory: DIR, keep: 2 }, textfileDir: TEXTFILE });
// The stand-in backup: a file in the run's folder, unless /tmp/pct-backup-fails exists; nothing to
// back up (a standby's case) while /tmp/pct-backup-skips does.
const BACKUP = `if test -e /tmp/pct-backup-skips; then exit ${BACKUP_SKIPPED}; fi; test ! -e /tmp/pct-backup-fails && date +%s%N > "$BACKUP_DIR/dump"`;

describe("a backup timer on a namespaced Pi", () => {
    let bed: Testbed;
    let host: TestHost;
    const sh = async (command: string, stdin?: string) => {
        const r = await host.ssh(command, { input: stdin });
        if (r.code !== 0) throw new Error(`'${command}' exited ${r.code}: ${r.stderr}`);
        return r.stdout;
    };
    const runs = async () => (await sh(`sudo -n find ${DIR} -mindepth 1 -maxdepth 1 -type d | sort`)).split("\n").filter(Boolean);
    const recorded = async () => Number(/\{backup="test"\} (\d+)/.exec(await sh(`cat ${TEXTFILE}/backup-test.prom`))?.[1]);

    beforeAll(async () => {
        bed = await startTestbed({ hosts: ["backups"] });
        host = bed.hosts[0];
        // No node_exporter has made its textfile folder yet: the first backup makes it.
        expect((await host.ssh(`test -e ${TEXTFILE}`)).code).not.toBe(0);
    });
    afterAll(() => bed?.stop());

    it("installs the timer and takes a first backup, recording its success", async () => {
        const before = Math.floor(Date.now() / 1000) - 5;
        expect(await sh("sudo -n bash -s", renderBackupTimerScript(input(BACKUP)))).toBe("picloud backup test: changed\n");
        expect((await sh("systemctl is-enabled picloud-backup-test.timer")).trim()).toBe("enabled");
        expect((await sh("systemctl is-active picloud-backup-test.timer")).trim()).toBe("active");
        expect(await runs()).toHaveLength(1);
        expect(await sh(`sudo -n ls ${(await runs())[0]}`)).toBe("dump\n");
        expect(await sh(`cat ${TEXTFILE}/backup-test.prom`)).toContain(`# TYPE ${BACKUP_METRIC} gauge`);
        expect(await recorded()).toBeGreaterThanOrEqual(before);
    });

    it("keeps the newest `keep` runs, and a second install changes nothing", async () => {
        for (let i = 0; i < 3; i++) await sh("sudo -n systemctl start picloud-backup-test.service");
        expect(await runs()).toHaveLength(2);
        expect(await sh("sudo -n bash -s", renderBackupTimerScript(input(BACKUP)))).toBe("picloud backup test: ok\n");
    });

    it("records nothing for a failed run and leaves no folder of it", async () => {
        const last = await recorded();
        const folders = await runs();
        await sh("touch /tmp/pct-backup-fails");
        const failed = await host.ssh("sudo -n systemctl start picloud-backup-test.service");
        expect(failed.code).not.toBe(0);
        expect((await sh("systemctl is-failed picloud-backup-test.service || true")).trim()).toBe("failed");
        expect(await runs()).toEqual(folders);
        expect(await recorded()).toBe(last);
        await sh("rm -f /tmp/pct-backup-fails && sudo -n systemctl reset-failed picloud-backup-test.service");
    });

    it("succeeds without recording anything or leaving a folder when the command has nothing to back up", async () => {
        const last = await recorded();
        const folders = await runs();
        await sh("touch /tmp/pct-backup-skips");
        await sh("sudo -n systemctl start picloud-backup-test.service");
        expect((await sh("systemctl is-failed picloud-backup-test.service || true")).trim()).not.toBe("failed");
        expect(await sh("sudo -n journalctl -u picloud-backup-test.service -n 5 --no-pager -o cat")).toContain("picloud backup test: nothing to back up on this Pi now");
        expect(await runs()).toEqual(folders);
        expect(await recorded()).toBe(last);
        await sh("rm -f /tmp/pct-backup-skips");
    });

    it("is removed with its units and metric; the backups stay", async () => {
        await sh(backupTimerRemoveCommand("test", TEXTFILE));
        expect((await host.ssh("systemctl cat picloud-backup-test.timer")).code).not.toBe(0);
        expect((await host.ssh(`test -e ${TEXTFILE}/backup-test.prom`)).code).not.toBe(0);
        expect(await runs()).toHaveLength(2);
    });
});
