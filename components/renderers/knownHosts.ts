/** What a known_hosts line needs about a Pi. */
export interface KnownHost {
    readonly address: string;
    readonly sshPort: number;
    readonly hostKey: string;
}

/**
 * A known_hosts file pinning each Pi's host key, for the operator's own ssh client (the offline
 * plan writes one for review). Non-default ports use OpenSSH's `[address]:port` form.
 */
export function renderKnownHosts(hosts: readonly KnownHost[]): string {
    return hosts.map((h) => `${knownHostsLine(h)}\n`).join("");
}

/** One host's known_hosts line, without its newline: `address type key` (the key's comment dropped). */
export function knownHostsLine(h: KnownHost): string {
    const [type, blob] = h.hostKey.trim().split(/\s+/);
    const who = h.sshPort === 22 ? h.address : `[${h.address}]:${h.sshPort}`;
    return `${who} ${type} ${blob}`;
}
