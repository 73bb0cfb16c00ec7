import { X509Certificate, createPrivateKey } from "node:crypto";

/**
 * What is wrong with a PEM bundle HAProxy is to serve (certificate chain, then the private key),
 * or nothing. Checked when the stack runs, before the file reaches a Pi: HAProxy refuses to start
 * on a bad bundle, and a load balancer that does not start takes the cloud offline. Messages never
 * include the bundle's content.
 */
export function certificateBundleProblems(pem: string, now: Date = new Date()): string[] {
    const certificates = [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => m[0]);
    const keys = [...pem.matchAll(/-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/g)].map((m) => m[0]);
    const problems: string[] = [];
    if (certificates.length === 0) problems.push("expected a PEM certificate (-----BEGIN CERTIFICATE-----), found none");
    if (pem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
        problems.push("expected an unencrypted private key, found an encrypted one: HAProxy cannot ask for its passphrase (decrypt it with: openssl pkey -in key.pem -out plain.pem)");
    } else if (keys.length !== 1) {
        problems.push(`expected exactly one PEM private key after the certificates, found ${keys.length}`);
    }
    if (problems.length > 0) return problems;

    let leaf: X509Certificate;
    try {
        leaf = new X509Certificate(certificates[0]);
    } catch (e) {
        return [`the first certificate does not parse: ${(e as Error).message}`];
    }
    let key;
    try {
        key = createPrivateKey(keys[0]);
    } catch (e) {
        return [`the private key does not parse: ${(e as Error).message}`];
    }
    if (!leaf.checkPrivateKey(key)) problems.push("the private key does not belong to the first certificate (the server's own certificate must come first)");
    const notAfter = new Date(leaf.validTo);
    if (notAfter.getTime() <= now.getTime()) problems.push(`the certificate for ${leaf.subject.replace(/\n/g, ", ")} expired on ${notAfter.toISOString()}`);
    certificates.slice(1).forEach((c, i) => {
        try {
            new X509Certificate(c);
        } catch (e) {
            problems.push(`certificate ${i + 2} of the chain does not parse: ${(e as Error).message}`);
        }
    });
    return problems;
}
