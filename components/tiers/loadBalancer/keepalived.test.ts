import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { shellcheck, tempDirs } from "../../../test/support/scripts";
import { validator } from "../../../test/support/validators";
import { KEEPALIVED_PATHS, VRRP_MASTER_METRIC, VRRP_TEXTFILE, keepalivedRemoveCommand, renderHaproxyCheckScript, renderKeepalivedSetupScript, renderVrrpNotifyScript } from "./keepalived";
import { renderKeepalivedConfig } from "./renderers";

const tmp = tempDirs("picloud-keepalived");
const conf = renderKeepalivedConfig({
    instance: "picloud-edge",
    // keepalived ignores VRRP on loopback; any other name passes the config test (see renderers.test.ts).
    interface: "eth0",
    virtualIp: "192.168.10.10",
    prefixLength: 24,
    routerId: 51,
    priority: 150,
    peers: ["192.168.10.12"],
    self: "192.168.10.11",
    checkScript: KEEPALIVED_PATHS.checkScript,
    notifyScript: KEEPALIVED_PATHS.notifyScript,
});
const setup = renderKeepalivedSetupScript({ config: conf, checkScript: renderHaproxyCheckScript(8404), notifyScript: renderVrrpNotifyScript("/var/lib/picloud/textfile") });


/** The value of a `readonly NAME='…'` line of a rendered script, as bash itself reads it. */
function scriptVariable(script: string, name: string): string {
    const header = script.slice(0, script.indexOf("\nexport DEBIAN_FRONTEND"));
    const r = spawnSync("bash", ["-c", `${header}\nprintf '%s' "$${name}"`], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
}

describe("keepalived's scripts", () => {
    it("pass shellcheck: the setup script as bash, the two hooks as POSIX sh", () => {
        for (const [text, shell] of [[setup, "bash"], [renderHaproxyCheckScript(8404), "sh"], [renderVrrpNotifyScript("/var/lib/picloud/textfile"), "sh"]] as const) {
            const r = shellcheck(text, shell);
            expect(r.status, r.output).toBe(0);
        }
    });

    it("ship keepalived.conf byte for byte, and keepalived --config-test accepts it with the hooks in place", () => {
        expect(`${scriptVariable(setup, "KEEPALIVED_CONF")}\n`).toBe(conf);
        const dir = tmp();
        fs.writeFileSync(path.join(dir, "keepalived.conf"), scriptVariable(setup, "KEEPALIVED_CONF"));
        fs.writeFileSync(path.join(dir, "check.sh"), scriptVariable(setup, "CHECK_SCRIPT"));
        fs.writeFileSync(path.join(dir, "notify.sh"), scriptVariable(setup, "NOTIFY_SCRIPT"));
        // enable_script_security wants the hooks at their real paths, root-owned, not writable by
        // others: put them there in a private mount namespace, on a tmpfs nobody else sees.
        const lib = path.dirname(KEEPALIVED_PATHS.checkScript);
        const script = [
            "set -e",
            `mount -t tmpfs -o mode=0755 tmpfs ${path.dirname(lib)}`,
            `install -d -m 0755 ${lib}`,
            `install -m 0755 ${dir}/check.sh ${KEEPALIVED_PATHS.checkScript}`,
            `install -m 0755 ${dir}/notify.sh ${KEEPALIVED_PATHS.notifyScript}`,
            `exec ${validator("keepalived")} --config-test --use-file ${dir}/keepalived.conf`,
        ].join("\n");
        const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
        const out = `${r.stdout}${r.stderr}`;
        expect(r.status, out).toBe(0);
        expect(out).not.toMatch(/not found|insecure|Disabling/);
    });

    it("the notify hook writes the holder gauge atomically, in the format Prometheus reads", () => {
        const dir = tmp();
        const hook = path.join(dir, "notify.sh");
        const textfiles = path.join(dir, "textfile");
        fs.writeFileSync(hook, renderVrrpNotifyScript(textfiles), { mode: 0o755 });
        const read = () => fs.readFileSync(path.join(textfiles, VRRP_TEXTFILE), "utf8");

        for (const [state, holds] of [["BACKUP", 0], ["MASTER", 1], ["FAULT", 0]] as const) {
            const r = spawnSync(hook, ["INSTANCE", "picloud-edge", state, "150"], { encoding: "utf8" });
            expect(r.status, r.stderr).toBe(0);
            expect(read()).toContain(`${VRRP_MASTER_METRIC}{vrrp_instance="picloud-edge"} ${holds}\n`);
        }
        // Only the final file is left: no temporary files for node_exporter to trip over.
        expect(fs.readdirSync(textfiles)).toEqual([VRRP_TEXTFILE]);
        const check = spawnSync(validator("promtool"), ["check", "metrics"], { input: read(), encoding: "utf8" });
        expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
        // Group notifications are not about this Pi's own state; they change nothing.
        spawnSync(hook, ["GROUP", "g", "MASTER", "150"]);
        expect(read()).toContain(" 0\n");
    });

    it("the check fails when nothing answers on the stats port", () => {
        const dir = tmp();
        const check = path.join(dir, "check.sh");
        // A port nothing listens on, on loopback.
        fs.writeFileSync(check, renderHaproxyCheckScript(1), { mode: 0o755 });
        expect(spawnSync(check).status).not.toBe(0);
    });

    it("install a drop-in that restarts a keepalived that died, which systemd accepts", () => {
        const dropIn = scriptVariable(setup, "RESTART_DROP_IN");
        const dir = tmp();
        // A unit with the drop-in applied, checked by systemd itself.
        fs.writeFileSync(path.join(dir, "keepalived.service"), `[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n${dropIn.replace(/^#.*\n\[Service\]\n/, "")}\n`);
        const r = spawnSync("systemd-analyze", ["verify", path.join(dir, "keepalived.service")], { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        expect(dropIn).toMatch(/^\[Service\]\nRestart=on-failure\nRestartSec=2s$/m);
    });

    it("refuse bad input before rendering", () => {
        expect(() => renderHaproxyCheckScript(0)).toThrow(/statsPort/);
        expect(() => renderVrrpNotifyScript("relative/dir")).toThrow(/absolute path/);
        expect(() => renderVrrpNotifyScript("/var/lib/x'; rm -rf /")).toThrow(/absolute path/);
    });

    it("removal stops keepalived even where it never started, and removes the gauge with the files", () => {
        const remove = keepalivedRemoveCommand("/var/lib/picloud/textfile");
        expect(remove).toContain("{ sudo -n systemctl disable --now keepalived 2>/dev/null || true; }");
        for (const f of [KEEPALIVED_PATHS.config, KEEPALIVED_PATHS.checkScript, KEEPALIVED_PATHS.notifyScript, KEEPALIVED_PATHS.restartDropIn, `'/var/lib/picloud/textfile/${VRRP_TEXTFILE}'`]) {
            expect(remove).toContain(f);
        }
    });
});
