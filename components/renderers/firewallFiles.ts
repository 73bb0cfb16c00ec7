/**
 * Where a Pi's picloud firewall lives: its nftables table and ruleset file. The ruleset's renderer
 * (`network/nftables.ts`) and the host scripts that install, load and remove it share these.
 */

/** Where the bootstrap puts a Pi's ruleset, how it checks it and how it loads it (atomically, one transaction). */
export const NFTABLES_FILES = {
    ruleset: "/etc/nftables.d/picloud.nft",
    check: "nft -c -f /etc/nftables.d/picloud.nft",
    load: "nft -f /etc/nftables.d/picloud.nft",
} as const;

/** picloud's table: family and name. */
export const NFTABLES_TABLE = { family: "inet", name: "picloud" } as const;
