import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { shellcheck, tempDirs } from "../../test/support/scripts";
import { renderRunScriptCommand, renderShipCommand, renderUnshipCommand, scriptPath, shippedPath, withRerunKey } from "./remoteCommands";

const tmp = tempDirs("picloud-ship");
const sh = (command: string, input?: string) => spawnSync("sh", ["-c", command], { input, encoding: "utf8" });

describe("renderShipCommand, as the SSH user", () => {
    it("writes exactly its stdin with the mode asked for, creating a missing folder, and says where in its first line", () => {
        const file = path.join(tmp(), "new", "prometheus.yml");
        const command = renderShipCommand({ path: file, mode: "0640", owner: "ssh-user" });
        expect(shippedPath(command)).toBe(file);
        const text = "global:\n  scrape_interval: 30s\n$HOME `id` '\"\n";
        const r = sh(command, text);
        expect(r.status, r.stderr).toBe(0);
        expect(fs.readFileSync(file, "utf8")).toBe(text);
        expect((fs.statSync(file).mode & 0o777).toString(8)).toBe("640");
    });

    it("replaces a file by renaming a complete one over it, leaving no temp file, also when writing fails", () => {
        const dir = tmp();
        const file = path.join(dir, "rules.yml");
        fs.writeFileSync(file, "old\n");
        const before = fs.statSync(file).ino;
        expect(sh(renderShipCommand({ path: file, mode: "0644", owner: "ssh-user" }), "new\n").status).toBe(0);
        expect(fs.readFileSync(file, "utf8")).toBe("new\n");
        expect(fs.statSync(file).ino).not.toBe(before);
        expect(fs.readdirSync(dir)).toEqual(["rules.yml"]);
        // A folder that cannot be written: the old file stays, nothing half-written appears.
        fs.chmodSync(dir, 0o555);
        try {
            const denied = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", renderShipCommand({ path: file, mode: "0644", owner: "ssh-user" })], { input: "newer\n", encoding: "utf8" });
            expect(denied.status).not.toBe(0);
        } finally {
            fs.chmodSync(dir, 0o755);
        }
        expect(fs.readFileSync(file, "utf8")).toBe("new\n");
        expect(fs.readdirSync(dir)).toEqual(["rules.yml"]);
    });

    it("is removed again by renderUnshipCommand, which does not mind a file already gone", () => {
        const file = path.join(tmp(), "x.json");
        expect(sh(renderShipCommand({ path: file, mode: "0644", owner: "ssh-user" }), "{}").status).toBe(0);
        expect(sh(renderUnshipCommand({ path: file, owner: "ssh-user" })).status).toBe(0);
        expect(fs.existsSync(file)).toBe(false);
        expect(sh(renderUnshipCommand({ path: file, owner: "ssh-user" })).status).toBe(0);
    });

    it("passes shellcheck as POSIX sh, for every owner", () => {
        for (const owner of ["ssh-user", "root", { uid: 65534, gid: 65534 }] as const) {
            const r = shellcheck(renderShipCommand({ path: "/srv/picloud/a.yml", mode: "0600", owner }), "sh");
            expect(r.output).toBe("");
        }
    });
});

describe("renderShipCommand, as root or a container's uid", () => {
    it("goes through sudo and sets the owner before the file appears", () => {
        expect(renderShipCommand({ path: "/srv/picloud/s", mode: "0400", owner: { uid: 472, gid: 0 } })).toMatch(/^# picloud: ships \/srv\/picloud\/s\nsudo -n sh -c '.*chown 472:0 "\$t" && mv -f "\$t" "\$f"'$/s);
        expect(renderShipCommand({ path: "/srv/picloud/s", mode: "0600", owner: "root" })).toContain('chown 0:0 "$t"');
        expect(renderUnshipCommand({ path: "/srv/picloud/s", owner: "root" })).toBe("sudo -n rm -f '/srv/picloud/s'");
    });

    it("refuses a path or mode that could say more than a path and a mode", () => {
        expect(() => renderShipCommand({ path: "relative/x", mode: "0644", owner: "root" })).toThrow(/absolute/);
        expect(() => renderShipCommand({ path: "/srv/$(reboot)", mode: "0644", owner: "root" })).toThrow(/absolute/);
        expect(() => renderShipCommand({ path: "/srv/../etc/shadow", mode: "0644", owner: "root" })).toThrow(/'\.\.'/);
        expect(() => renderShipCommand({ path: "/srv/x", mode: "644; id", owner: "root" })).toThrow(/octal/);
        expect(() => renderShipCommand({ path: "/srv/x", mode: "0644", owner: { uid: -1, gid: 0 } })).toThrow(/uid or gid/);
    });
});

describe("scripts and rerun keys", () => {
    it("keeps scripts under /var/lib/picloud/scripts, never /tmp, and runs them with sudo", () => {
        expect(scriptPath("bootstrap.sh")).toBe("/var/lib/picloud/scripts/bootstrap.sh");
        expect(() => scriptPath("../x.sh")).toThrow(/script name/);
        expect(renderRunScriptCommand(scriptPath("faasd.sh"))).toBe("sudo -n bash '/var/lib/picloud/scripts/faasd.sh'");
    });

    it("changes the command exactly when a value changes, and never shows the values", () => {
        const a = withRerunKey("true", ["secret-one", "x"]);
        expect(a).toMatch(/^# picloud: runs again when this changes: [0-9a-f]{64}\ntrue$/);
        expect(a).not.toContain("secret-one");
        expect(withRerunKey("true", ["secret-one", "x"])).toBe(a);
        expect(withRerunKey("true", ["secret-two", "x"])).not.toBe(a);
        // The boundary between values counts: ["ab", "c"] is not ["a", "bc"].
        expect(withRerunKey("true", ["ab", "c"])).not.toBe(withRerunKey("true", ["a", "bc"]));
        expect(withRerunKey("true", [])).toBe("true");
        expect(shippedPath(a)).toBeUndefined();
    });
});
