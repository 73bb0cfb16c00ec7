/** What a known_hosts line needs about a Pi. */
export interface KnownHost {
    readonly address: string;
    readonly sshPort: number;
    readonly hostKey: string;
}

/**
 * A known_hosts file pinning each Pi's host key, for ssh clients that picloud does not drive
 * itself (Docker's ssh:// transport). Non-default ports use OpenSSH's `[address]:port` form.
 */
export function renderKnownHosts(hosts: readonly KnownHost[]): string {
    return hosts
        .map((h) => {
            const [type, blob] = h.hostKey.trim().split(/\s+/);
            const who = h.sshPort === 22 ? h.address : `[${h.address}]:${h.sshPort}`;
            return `${who} ${type} ${blob}\n`;
        })
        .join("");
}
