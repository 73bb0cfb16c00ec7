import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { certificateBundleProblems } from "./tls";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "picloud-tls-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate and its key, made by openssl; `encrypt` protects the key with a passphrase. */
function pair(name: string, encrypt = false): { cert: string; key: string } {
    const key = path.join(dir, `${name}.key`);
    const cert = path.join(dir, `${name}.crt`);
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", key, "-out", cert, "-days", "30", "-subj", `/CN=${name}.test`];
    const r = spawnSync("openssl", [...args, ...(encrypt ? ["-passout", "pass:secret"] : ["-nodes"])], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return { cert: fs.readFileSync(cert, "utf8"), key: fs.readFileSync(key, "utf8") };
}

describe("certificateBundleProblems", () => {
    const shop = pair("shop");
    const other = pair("other");

    it("accepts a certificate followed by its own key, with or without a chain", () => {
        expect(certificateBundleProblems(shop.cert + shop.key)).toEqual([]);
        expect(certificateBundleProblems(shop.cert + other.cert + shop.key)).toEqual([]);
    });

    it("refuses a key that belongs to another certificate, or a chain in the wrong order", () => {
        expect(certificateBundleProblems(shop.cert + other.key)).toEqual([expect.stringMatching(/does not belong to the first certificate/)]);
        expect(certificateBundleProblems(other.cert + shop.cert + shop.key)).toEqual([expect.stringMatching(/does not belong to the first certificate/)]);
    });

    it("refuses a bundle missing its certificate or its key, or holding two keys", () => {
        expect(certificateBundleProblems(shop.key)).toEqual([expect.stringMatching(/found none/)]);
        expect(certificateBundleProblems(shop.cert)).toEqual([expect.stringMatching(/exactly one PEM private key.*found 0/)]);
        expect(certificateBundleProblems(shop.cert + shop.key + other.key)).toEqual([expect.stringMatching(/found 2/)]);
        expect(certificateBundleProblems("[secret: not a PEM]")).toHaveLength(2);
    });

    it("refuses an expired certificate and an encrypted key HAProxy could not open", () => {
        const later = new Date(Date.now() + 60 * 24 * 3600 * 1000);
        expect(certificateBundleProblems(shop.cert + shop.key, later)).toEqual([expect.stringMatching(/CN=shop\.test expired on/)]);
        const locked = pair("locked", true);
        expect(locked.key).toContain("ENCRYPTED PRIVATE KEY");
        expect(certificateBundleProblems(locked.cert + locked.key)).toEqual([expect.stringMatching(/^expected an unencrypted private key/)]);
    });

    it("never repeats the bundle's content in its messages", () => {
        const body = shop.key.split("\n")[1];
        for (const bundle of [shop.cert + other.key, shop.key, shop.cert + shop.key + other.key]) {
            for (const message of certificateBundleProblems(bundle)) expect(message).not.toContain(body);
        }
    });
});
