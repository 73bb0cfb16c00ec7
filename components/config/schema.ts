import { z } from "zod";
import { ConfigProblem, PicloudConfigError, configKey, describeValue } from "./errors";
import { dnsLabel, expected, intIn, ipv4, labels, routePrefix, strictObject } from "./fields";
import { FUNCTION_ROUTE_PREFIXES } from "../tiers/functions/config";
import { loadBalancerTopology } from "../tiers/loadBalancer/config";
import { tiersSchema } from "./tiers";

/** Pi models picloud supports, and the memory sizes (MB) each is sold with. */
export const PI_MEMORY_SIZES_MB = {
    pi4: [1024, 2048, 4096, 8192],
    pi5: [1024, 2048, 4096, 8192, 16384],
} as const;

/** A Raspberry Pi model picloud supports (64-bit only). */
export type PiModel = keyof typeof PI_MEMORY_SIZES_MB;

/** Default memory (MB) kept back on every Pi for the OS, Docker and the host agents. */
export const DEFAULT_OS_RESERVE_MB = 512;

const hostKeyTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];

const HOST_KEY_EXPECTED = "the Pi's SSH host key as 'ssh-ed25519 AAAA…' (from ssh-keyscan or /etc/ssh/ssh_host_ed25519_key.pub)";

/** An OpenSSH public host key line (`type base64`), checked down to the type inside the blob. */
const hostKey = () =>
    z.string(expected(HOST_KEY_EXPECTED)).superRefine((line, ctx) => {
        const problem = hostKeyProblem(line);
        if (problem) ctx.addIssue({ code: "custom", message: `expected ${HOST_KEY_EXPECTED}, got ${describeValue(line)}: ${problem}` });
    });

/** What is wrong with a host key line, or undefined when it is well formed. */
function hostKeyProblem(line: string): string | undefined {
    const [type, blob] = line.trim().split(/\s+/);
    if (!hostKeyTypes.includes(type)) return `unknown key type ${describeValue(type)} (known: ${hostKeyTypes.join(", ")})`;
    if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return "the key data after the type is missing or not base64";
    const bytes = Buffer.from(blob, "base64");
    if (bytes.length < 4) return "the key data is too short";
    const inner = bytes.subarray(4, 4 + bytes.readUInt32BE(0)).toString("latin1");
    // The blob starts with the key type again; rsa-sha2-* are signature names for an ssh-rsa key.
    const ok = inner === type || (type.startsWith("rsa-sha2-") && inner === "ssh-rsa");
    if (!ok) return `the line says ${type} but the key data is ${describeValue(inner)}`;
    // The bootstrap's hardening regenerates the RSA host key (4096 bits, per the ssh-audit guide)
    // and the hardened sshd serves no ECDSA key: only the ed25519 key stays what was pinned.
    if (type !== "ssh-ed25519") return `picloud pins the ed25519 host key: its hardened sshd regenerates the RSA key and serves no ECDSA key; use ssh-keyscan -t ed25519 <address>`;
    return undefined;
}

const piSchema = strictObject(
    {
        /** Unique name; becomes the hostname. */
        name: dnsLabel("a Pi name"),
        /** Address on the LAN the operator reaches it at. */
        address: ipv4(),
        /** SSH login user with passwordless sudo (Raspberry Pi OS's first user). */
        sshUser: z
            .string(expected("a login user name"))
            .regex(/^[a-z_][a-z0-9_-]{0,31}$/, expected("a login user name (lowercase, e.g. 'pi')"))
            .refine((u) => u !== "root", expected("a non-root user with sudo: picloud's hardening refuses root logins"))
            .default("pi"),
        /** SSH port; default 22. */
        sshPort: intIn(1, 65535).default(22),
        /** The Pi's SSH host key, pinned so picloud never talks to an impostor. */
        hostKey: hostKey(),
        model: z.enum(["pi4", "pi5"], expected("a Pi model: 'pi4' or 'pi5'")),
        /** Installed memory in MB (1024, 2048, 4096, 8192, 16384). */
        memoryMb: intIn(512, 16384, " of MB"),
        /** CPU cores; default 4. */
        cpus: intIn(1, 4, " of cores").default(4),
        /** Where the root filesystem lives; stateful data goes to SSD when there is one. */
        storage: z.enum(["sd", "ssd"], expected("'sd' or 'ssd'")).default("sd"),
        /** Free-form labels used by placement constraints. */
        labels: labels().default({}),
        /** The Pi's name before a rename: its resources, replicas and monitoring carry over in one `pulumi up`. */
        renamedFrom: dnsLabel("the Pi's earlier name").optional(),
    },
    "a Pi",
);

/** An IPv4 address, or a network as a CIDR. */
const cidrOrAddress = (what: string) =>
    z
        .string(expected(what))
        .regex(/^(\d{1,3}\.){3}\d{1,3}(\/(\d|[12]\d|3[0-2]))?$/, expected(what))
        .refine((c) => parseIpv4(c.split("/")[0]) !== undefined, expected(what));

const bootstrapSchema = strictObject(
    {
        /** IANA timezone; default Etc/UTC. */
        timezone: z
            .string(expected("an IANA timezone such as Europe/Berlin"))
            .refine(isKnownTimezone, expected("an IANA timezone such as Europe/Berlin"))
            .default("Etc/UTC"),
        /** NTP servers for systemd-timesyncd; default the Debian pool. */
        ntpServers: z
            .array(
                z.string().regex(/^[A-Za-z0-9.-]+$/, expected("an NTP server host name or address")),
                expected("a list of NTP servers"),
            )
            .min(1, expected("at least one NTP server"))
            .default(["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]),
        /** Size cap of the in-RAM journal, MB; default 64. */
        journalRuntimeMaxMb: intIn(16, 1024, " of MB").default(64),
        /** Addresses or CIDRs fail2ban never bans (your workstation, CI runners that run pulumi); default none. */
        fail2banIgnore: z.array(cidrOrAddress("an IPv4 address or CIDR"), expected("a list of IPv4 addresses or CIDRs")).default([]),
    },
    "the bootstrap",
);

const networkSchema = strictObject(
    {
        /**
         * The operator's network, the only source of SSH and the admin UIs (Grafana, Prometheus,
         * Alertmanager, the functions gateway) in every Pi's firewall: a CIDR, or "any"; default
         * the subnet, else "any".
         */
        mgmt: z.union([z.literal("any"), cidrOrAddress("an IPv4 CIDR such as 192.168.1.0/24, or 'any'")], expected("an IPv4 CIDR such as 192.168.1.0/24, or 'any'")).optional(),
        /** The LAN the Pis share, as a CIDR such as 192.168.1.0/24. */
        subnet: z
            .string(expected("an IPv4 CIDR such as 192.168.1.0/24"))
            .regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, expected("an IPv4 CIDR such as 192.168.1.0/24"))
            .refine((c) => parseIpv4(c.split("/")[0]) !== undefined, expected("an IPv4 CIDR such as 192.168.1.0/24")),
    },
    "the network",
);

/** True when the time zone database (Node's ICU copy) knows the zone. */
function isKnownTimezone(zone: string): boolean {
    try {
        new Intl.DateTimeFormat("en", { timeZone: zone });
        return true;
    } catch {
        return false;
    }
}

/** Config keys set as Pulumi secrets that the program knows by name. */
export const SECRET_CONFIG_KEYS = ["sshPrivateKey"] as const;

/** Every plain (non-secret) `picloud:` key the program reads. */
const stackSchema = strictObject(
    {
        pis: z.array(piSchema, expected("a list of Pis")).min(1, expected("at least one Pi")),
        /** Path of the SSH private key on the operator's machine for Docker over ssh://; default: ssh-agent. */
        sshIdentityFile: z.string(expected("a file path")).min(1, expected("a file path")).optional(),
        osReserveMb: intIn(128, 8192, " of MB").default(DEFAULT_OS_RESERVE_MB),
        network: networkSchema.optional(),
        bootstrap: bootstrapSchema.prefault({}),
        tiers: tiersSchema.prefault({}),
    },
    "the picloud namespace",
);

/** The validated stack config: everything the program needs except secret values. */
export type StackConfig = z.output<typeof stackSchema> & {
    /** Names of the `picloud:` keys set as secrets (their values stay in Pulumi's config). */
    readonly secretKeys: readonly string[];
};
/** One validated Pi. */
export type PiConfig = z.output<typeof piSchema>;

/**
 * The raw `picloud:` namespace as read from a stack: plain values by key (without the
 * `picloud:` prefix, JSON already parsed) and the names of the keys that hold secrets. Secret
 * values never enter the pure layers.
 */
export interface RawStackConfig {
    readonly values: Readonly<Record<string, unknown>>;
    readonly secretKeys: readonly string[];
}

/**
 * Validates a stack's config. Throws {@link PicloudConfigError} listing every problem, each
 * naming its key, what was given and what is expected.
 */
export function parseStackConfig(raw: RawStackConfig): StackConfig {
    const problems: ConfigProblem[] = [];
    const values: Record<string, unknown> = { ...raw.values };
    const secretKeys = new Set(raw.secretKeys);

    for (const key of SECRET_CONFIG_KEYS) {
        if (key in values) {
            problems.push({
                key: configKey([key]),
                message: `expected a secret, got a plain value (not shown); set it as a secret: pulumi config set --secret ${configKey([key])} < ~/.ssh/picloud`,
            });
            delete values[key];
        } else if (!secretKeys.has(key)) {
            problems.push({
                key: configKey([key]),
                message: `expected the Pis' SSH private key as a secret, got nothing; set it with: pulumi config set --secret ${configKey([key])} < ~/.ssh/picloud`,
                kind: "missing-secret",
            });
        }
    }

    // A secret that secretEnv names but that was set in plain text: say so, rather than let the
    // strict schema call it an unknown option.
    for (const ref of rawSecretRefs(values)) {
        if (ref in values && !(ref in stackSchema.shape)) {
            problems.push({
                key: configKey([ref]),
                message: `expected a secret (an option refers to it by name), got a plain value; set it with: pulumi config set --secret ${configKey([ref])} <value>`,
            });
            delete values[ref];
        }
    }

    const parsed = stackSchema.safeParse(values, { error: plainMessage });
    if (!parsed.success) {
        problems.push(...parsed.error.issues.flatMap(issueToProblems));
        throw new PicloudConfigError(problems);
    }
    const config = parsed.data;
    problems.push(...crossFieldProblems(config));

    const known = new Set<string>([...SECRET_CONFIG_KEYS, ...secretRefs(config)]);
    for (const key of secretKeys) {
        if (!known.has(key)) {
            problems.push({ key: configKey([key]), message: "unknown secret; no option refers to it (check for a typo)" });
        }
    }
    for (const ref of secretRefs(config)) {
        if (!secretKeys.has(ref) && !(ref in raw.values) && !(ref in stackSchema.shape)) {
            problems.push({
                key: configKey([ref]),
                message: `expected a secret (an option refers to it by name), got nothing; set it with: pulumi config set --secret ${configKey([ref])} <value>`,
                kind: "missing-secret",
            });
        }
    }
    if (problems.length > 0) throw new PicloudConfigError(problems);
    return { ...config, secretKeys: [...secretKeys].sort() };
}

/** Secret names under `tiers.apps.*.secretEnv` in not-yet-validated config, as far as they can be read. */
function rawSecretRefs(values: Record<string, unknown>): string[] {
    const tiers = values.tiers as
        | { apps?: unknown; monitoring?: { alerting?: { email?: { passwordSecret?: unknown } } }; loadBalancer?: { tls?: { certificateSecret?: unknown } } }
        | undefined;
    const apps = tiers?.apps && typeof tiers.apps === "object" ? Object.values(tiers.apps) : [];
    const fromApps = apps.flatMap((app) => {
        const env = (app as { secretEnv?: unknown } | null)?.secretEnv;
        return env && typeof env === "object" ? Object.values(env).filter((v): v is string => typeof v === "string") : [];
    });
    const named = [tiers?.monitoring?.alerting?.email?.passwordSecret, tiers?.loadBalancer?.tls?.certificateSecret];
    return [...fromApps, ...named.filter((v): v is string => typeof v === "string")];
}

/** Secret config keys that tier options refer to by name. */
function secretRefs(config: z.output<typeof stackSchema>): string[] {
    const named = [config.tiers.monitoring.alerting.email?.passwordSecret, config.tiers.loadBalancer?.tls?.certificateSecret];
    return [...Object.values(config.tiers.apps ?? {}).flatMap((app) => Object.values(app.secretEnv)), ...named.filter((v): v is string => v !== undefined)];
}

const TYPE_NAMES: Readonly<Record<string, string>> = { string: "a string", number: "a number", int: "a whole number", boolean: "true or false", array: "a list", object: "a mapping", record: "a mapping" };

/**
 * The message of a problem whose field has no message of its own, in the words of every other:
 * what was expected, then what was given ("got nothing" for a missing value).
 */
function plainMessage(issue: z.core.$ZodRawIssue): string {
    const got = `got ${describeValue(issue.input)}`;
    switch (issue.code) {
        case "invalid_type":
            return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, ${got}`;
        case "invalid_value":
            return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, ${got}`;
        case "too_small":
            return `expected ${issue.origin === "array" ? `at least ${issue.minimum} entries` : issue.origin === "string" ? `at least ${issue.minimum} characters` : `at least ${issue.minimum}`}, ${got}`;
        case "too_big":
            return `expected ${issue.origin === "array" ? `at most ${issue.maximum} entries` : issue.origin === "string" ? `at most ${issue.maximum} characters` : `at most ${issue.maximum}`}, ${got}`;
        default:
            return `expected a valid value, ${got}`;
    }
}

function issueToProblems(issue: z.core.$ZodIssue): ConfigProblem[] {
    if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => ({ key: configKey([...issue.path, k]), message: issue.message }));
    }
    return [{ key: configKey(issue.path), message: issue.message }];
}

/**
 * What is wrong with a backup into blob storage at `base` (its `bucket` and `key`): blob storage
 * must be enabled, the bucket and the key declared, and the key able to read and write the
 * bucket. `stores` and `access` say, for the messages, what the backup tool does with them.
 */
function blobBackupProblems(base: string, backup: { readonly bucket: string; readonly key: string }, blob: z.output<typeof stackSchema>["tiers"]["blob"], stores: string, access: string): ConfigProblem[] {
    const { bucket, key } = backup;
    if (!blob) return [{ key: base, message: `expected picloud:tiers.blob to be enabled too: ${stores} in a bucket of blob storage` }];
    if (!(bucket in blob.buckets)) return [{ key: `${base}.bucket`, message: `expected a bucket of picloud:tiers.blob.buckets (${Object.keys(blob.buckets).join(", ") || "none declared"}), got ${describeValue(bucket)}` }];
    if (!(key in blob.keys)) return [{ key: `${base}.key`, message: `expected a key of picloud:tiers.blob.keys (${Object.keys(blob.keys).join(", ") || "none declared"}), got ${describeValue(key)}` }];
    const grant = blob.keys[key].buckets[bucket];
    if (grant === "readwrite" || grant === "owner") return [];
    return [{ key: `${base}.key`, message: `expected key ${describeValue(key)} to have readwrite or owner access to bucket ${describeValue(bucket)} (${access}), got ${grant ? describeValue(grant) : "no access"}` }];
}

/** Rules that involve more than one field. */
function crossFieldProblems(config: z.output<typeof stackSchema>): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const firstByName = new Map<string, number>();
    const firstByAddress = new Map<string, number>();
    config.pis.forEach((pi, i) => {
        const sameName = firstByName.get(pi.name);
        if (sameName !== undefined) {
            problems.push({ key: configKey(["pis", i, "name"]), message: `duplicate Pi name ${describeValue(pi.name)}, already used by picloud:pis[${sameName}]; each Pi needs its own name` });
        } else firstByName.set(pi.name, i);
        const sameAddress = firstByAddress.get(pi.address);
        if (sameAddress !== undefined) {
            problems.push({ key: configKey(["pis", i, "address"]), message: `duplicate address ${describeValue(pi.address)}, already used by picloud:pis[${sameAddress}]; each Pi needs its own address` });
        } else firstByAddress.set(pi.address, i);

        const sizes: readonly number[] = PI_MEMORY_SIZES_MB[pi.model];
        if (!sizes.includes(pi.memoryMb)) {
            problems.push({ key: configKey(["pis", i, "memoryMb"]), message: `expected the memory of a ${pi.model} in MB (one of ${sizes.join(", ")}), got ${pi.memoryMb}` });
        } else if (pi.memoryMb <= config.osReserveMb) {
            problems.push({
                key: configKey(["pis", i, "memoryMb"]),
                message: `${pi.memoryMb} MB leaves nothing for workloads after the OS reserve (picloud:osReserveMb = ${config.osReserveMb}); expected more memory than the reserve`,
            });
        }
        if (config.network && !inSubnet(pi.address, config.network.subnet)) {
            problems.push({ key: configKey(["pis", i, "address"]), message: `expected an address inside picloud:network.subnet ${config.network.subnet}, got ${describeValue(pi.address)}` });
        } else if (config.network && isNetworkOrBroadcast(pi.address, config.network.subnet)) {
            problems.push({ key: configKey(["pis", i, "address"]), message: `expected a host address in ${config.network.subnet}, got its network or broadcast address ${describeValue(pi.address)}` });
        }
    });
    problems.push(...placementLabelProblems(config));
    problems.push(
        ...renameProblems(config.pis.map((pi, i) => ({ name: pi.name, renamedFrom: pi.renamedFrom, key: configKey(["pis", i, "renamedFrom"]) })), "Pi"),
        ...renameProblems(Object.entries(config.tiers.apps ?? {}).map(([name, app]) => ({ name, renamedFrom: app.renamedFrom, key: configKey(["tiers", "apps", name, "renamedFrom"]) })), "app"),
    );
    // Blob storage: keys grant buckets it declares; apps name keys it declares.
    const blob = config.tiers.blob;
    for (const [name, key] of Object.entries(blob?.keys ?? {})) {
        for (const bucket of Object.keys(key.buckets)) {
            if (!(bucket in blob!.buckets)) {
                problems.push({ key: configKey(["tiers", "blob", "keys", name, "buckets", bucket]), message: `expected a bucket of picloud:tiers.blob.buckets (${Object.keys(blob!.buckets).join(", ") || "none declared"}), got ${describeValue(bucket)}` });
            }
        }
    }
    for (const [app, options] of Object.entries(config.tiers.apps ?? {})) {
        if (options.blobKey !== undefined && !(options.blobKey in (blob?.keys ?? {}))) {
            const known = Object.keys(blob?.keys ?? {});
            problems.push({
                key: configKey(["tiers", "apps", app, "blobKey"]),
                message: blob ? `expected a key of picloud:tiers.blob.keys (${known.join(", ") || "none declared"}), got ${describeValue(options.blobKey)}` : `expected picloud:tiers.blob to be enabled for a blob key, got ${describeValue(options.blobKey)} with no blob storage`,
            });
        }
    }
    // The database: Patroni keeps its leader in the registry's etcd; databases are owned by declared roles; apps name declared databases.
    const database = config.tiers.database;
    if (database && !config.tiers.registry) {
        problems.push({ key: "picloud:tiers.database", message: "expected picloud:tiers.registry to be enabled too: Patroni elects the primary in the registry's etcd" });
    }
    if (database?.backup) problems.push(...blobBackupProblems("picloud:tiers.database.backup", database.backup, blob, "pgBackRest stores the backups", "pgBackRest writes, reads and expires backups"));
    const metricsBackup = config.tiers.monitoring.victoriaMetrics?.backup;
    if (metricsBackup) {
        problems.push(...blobBackupProblems("picloud:tiers.monitoring.victoriaMetrics.backup", metricsBackup, blob, "vmbackup stores the backups", "vmbackup reads what is there, writes new parts and deletes those no longer in the data"));
    }
    if (database?.restore && !database.backup) {
        problems.push({ key: "picloud:tiers.database.restore", message: "expected picloud:tiers.database.backup to be set too: a restore reads its backups" });
    }
    for (const [name, db] of Object.entries(database?.databases ?? {})) {
        if (!(db.owner in database!.roles)) {
            problems.push({ key: configKey(["tiers", "database", "databases", name, "owner"]), message: `expected a role of picloud:tiers.database.roles (${Object.keys(database!.roles).join(", ") || "none declared"}), got ${describeValue(db.owner)}` });
        }
    }
    for (const [app, options] of Object.entries(config.tiers.apps ?? {})) {
        if (options.database !== undefined && !(options.database in (database?.databases ?? {}))) {
            const known = Object.keys(database?.databases ?? {});
            problems.push({
                key: configKey(["tiers", "apps", app, "database"]),
                message: database ? `expected a database of picloud:tiers.database.databases (${known.join(", ") || "none declared"}), got ${describeValue(options.database)}` : `expected picloud:tiers.database to be enabled for a database, got ${describeValue(options.database)} with no database tier`,
            });
        }
    }
    for (const [app, options] of Object.entries(config.tiers.apps ?? {})) {
        if (options.cache === true && !config.tiers.cache) {
            problems.push({ key: configKey(["tiers", "apps", app, "cache"]), message: "expected picloud:tiers.cache to be enabled for an app that uses the cache, got true with no cache tier" });
        }
        const busUsers = Object.values(config.tiers.bus?.accounts ?? {}).flatMap((a) => Object.keys(a.users));
        if (options.busUser !== undefined && !busUsers.includes(options.busUser)) {
            problems.push({
                key: configKey(["tiers", "apps", app, "busUser"]),
                message: config.tiers.bus ? `expected a user of picloud:tiers.bus.accounts (${busUsers.join(", ") || "none declared"}), got ${describeValue(options.busUser)}` : `expected picloud:tiers.bus to be enabled for a bus user, got ${describeValue(options.busUser)} with no bus tier`,
            });
        }
    }
    // A user name is one across the bus's accounts, and one across RabbitMQ's virtual hosts (an app names only the user).
    const uniqueUsers = (groups: Record<string, { users: Record<string, unknown> }>, path: string[], what: string) => {
        const seen = new Map<string, string>();
        for (const [group, g] of Object.entries(groups)) {
            for (const user of Object.keys(g.users)) {
                const other = seen.get(user);
                if (other !== undefined) problems.push({ key: configKey(["tiers", "bus", ...path, group, "users", user]), message: `expected a user name not used by another ${what}, got ${describeValue(user)} (also in ${what} ${other})` });
                seen.set(user, group);
            }
        }
    };
    uniqueUsers(config.tiers.bus?.accounts ?? {}, ["accounts"], "account");
    const rabbitmq = config.tiers.bus?.rabbitmq;
    uniqueUsers(rabbitmq?.vhosts ?? {}, ["rabbitmq", "vhosts"], "virtual host");
    const rabbitmqUsers = Object.values(rabbitmq?.vhosts ?? {}).flatMap((v) => Object.keys(v.users));
    for (const [app, options] of Object.entries(config.tiers.apps ?? {})) {
        if (options.rabbitmqUser !== undefined && !rabbitmqUsers.includes(options.rabbitmqUser)) {
            problems.push({
                key: configKey(["tiers", "apps", app, "rabbitmqUser"]),
                message: rabbitmq ? `expected a user of picloud:tiers.bus.rabbitmq.vhosts (${rabbitmqUsers.join(", ") || "none declared"}), got ${describeValue(options.rabbitmqUser)}` : `expected picloud:tiers.bus.rabbitmq to be enabled for a RabbitMQ user, got ${describeValue(options.rabbitmqUser)} with no RabbitMQ`,
            });
        }
    }
    // RabbitMQ's Raft WAL is held in memory until it rolls over: it must fit well under the memory watermark.
    if (rabbitmq && rabbitmq.walMaxMb * 4 > rabbitmq.memoryMb * rabbitmq.memoryWatermark) {
        problems.push({
            key: "picloud:tiers.bus.rabbitmq.walMaxMb",
            message: `expected at most ${Math.floor((rabbitmq.memoryMb * rabbitmq.memoryWatermark) / 4)} MB (a quarter of memoryMb ${rabbitmq.memoryMb} × memoryWatermark ${rabbitmq.memoryWatermark}; raise memoryMb for a larger WAL), got ${rabbitmq.walMaxMb}`,
        });
    }
    for (const [account, a] of Object.entries(config.tiers.bus?.accounts ?? {})) {
        if (Object.keys(a.streams).length > 0 && Object.keys(a.users).length === 0) {
            problems.push({ key: configKey(["tiers", "bus", "accounts", account, "users"]), message: "expected at least one user in an account with streams: the streams step creates them as that user, got none" });
        }
    }
    // A secret reference must name a secret, not one of picloud's own options.
    const isOption = (name: string) => name in stackSchema.shape;
    for (const [app, options] of Object.entries(config.tiers.apps ?? {})) {
        for (const [variable, ref] of Object.entries(options.secretEnv)) {
            if (isOption(ref)) problems.push({ key: configKey(["tiers", "apps", app, "secretEnv", variable]), message: `expected the name of the app's own secret, got ${describeValue(ref)} (a picloud option, not a secret)` });
        }
    }
    const smtp = config.tiers.monitoring.alerting.email?.passwordSecret;
    if (smtp !== undefined && isOption(smtp)) {
        problems.push({ key: configKey(["tiers", "monitoring", "alerting", "email", "passwordSecret"]), message: `expected the name of a secret, got ${describeValue(smtp)} (a picloud option, not a secret)` });
    }
    const knownPi = (path: PropertyKey[], name: string | undefined) => {
        if (name !== undefined && !firstByName.has(name)) {
            problems.push({ key: configKey(path), message: `expected the name of a Pi in picloud:pis (${[...firstByName.keys()].join(", ")}), got ${describeValue(name)}` });
        }
    };
    knownPi(["tiers", "monitoring", "pi"], config.tiers.monitoring.pi);
    problems.push(...monitoringPlacementProblems(config, knownPi));
    knownPi(["tiers", "functions", "pi"], config.tiers.functions?.pi);
    const functions = config.tiers.functions;
    if (functions) {
        const ports = [["gatewayPort", functions.gatewayPort], ["providerPort", functions.providerPort], ["metricsPort", functions.metricsPort]] as const;
        ports.forEach(([name, value], i) => {
            const earlier = ports.slice(0, i).find(([, v]) => v === value);
            if (earlier) problems.push({ key: configKey(["tiers", "functions", name]), message: `expected a port of its own, got ${value}, which picloud:tiers.functions.${earlier[0]} uses already` });
        });
    }
    const tls = config.tiers.loadBalancer?.tls?.certificateSecret;
    if (tls !== undefined && isOption(tls)) {
        problems.push({ key: configKey(["tiers", "loadBalancer", "tls", "certificateSecret"]), message: `expected the name of a secret, got ${describeValue(tls)} (a picloud option, not a secret)` });
    }
    problems.push(...loadBalancerProblems(config, knownPi));
    return problems;
}

/** Where the monitoring replicas go: Pis of the stack, each once, as many as it has replicas and the stack has Pis. */
function monitoringPlacementProblems(config: z.output<typeof stackSchema>, knownPi: (path: PropertyKey[], name: string | undefined) => void): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const { pi, pis, replicas } = config.tiers.monitoring;
    const key = (k: string) => configKey(["tiers", "monitoring", k]);
    pis?.forEach((name, i) => knownPi(["tiers", "monitoring", "pis", i], name));
    if (pis && new Set(pis).size !== pis.length) problems.push({ key: key("pis"), message: `expected each replica on a Pi of its own, got ${describeValue(pis)}` });
    if (pis && pi !== undefined) problems.push({ key: key("pi"), message: "expected either pi or pis, got both: pis names every replica's Pi" });
    if (pis && replicas !== undefined && replicas !== pis.length) problems.push({ key: key("replicas"), message: `expected ${pis.length}, the number of Pis picloud:tiers.monitoring.pis names, got ${replicas}` });
    if (replicas !== undefined && replicas > config.pis.length) {
        problems.push({ key: key("replicas"), message: `expected at most ${config.pis.length}, one replica per Pi in picloud:pis, got ${replicas}` });
    }
    return problems;
}

/** A `renamedFrom` must name what is gone: not a current name, not another's earlier name. */
function renameProblems(entries: readonly { name: string; renamedFrom?: string; key: string }[], what: string): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const names = new Set(entries.map((e) => e.name));
    const seen = new Map<string, string>();
    for (const e of entries) {
        if (e.renamedFrom === undefined) continue;
        if (names.has(e.renamedFrom)) {
            problems.push({ key: e.key, message: `expected the ${what}'s earlier name, got ${describeValue(e.renamedFrom)}, which is the name of a ${what} of this stack now` });
        } else if (seen.has(e.renamedFrom)) {
            problems.push({ key: e.key, message: `expected an earlier name of its own, got ${describeValue(e.renamedFrom)}, which ${seen.get(e.renamedFrom)} names already` });
        } else seen.set(e.renamedFrom, e.key);
    }
    return problems;
}

/**
 * Every app placement constraint some Pi meets on its own: a label, model or storage no Pi has is
 * a mistake in that very key (placement reports constraints that no single Pi meets together).
 */
function placementLabelProblems(config: z.output<typeof stackSchema>): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const has = (what: string) => [...new Set(config.pis.map((p) => p.labels[what]).filter((v) => v !== undefined))];
    for (const [name, app] of Object.entries(config.tiers.apps ?? {})) {
        for (const [label, value] of Object.entries(app.placement.labels ?? {})) {
            if (config.pis.some((p) => p.labels[label] === value)) continue;
            const values = has(label);
            problems.push({
                key: configKey(["tiers", "apps", name, "placement", "labels", label]),
                message: `expected a label value some Pi in picloud:pis has (${values.length ? `${label}: ${values.map((v) => JSON.stringify(v)).join(", ")}` : `no Pi has a ${JSON.stringify(label)} label`}), got ${describeValue(value)}`,
            });
        }
        const models = app.placement.models;
        if (models && !config.pis.some((p) => models.includes(p.model))) {
            problems.push({ key: configKey(["tiers", "apps", name, "placement", "models"]), message: `expected a model some Pi in picloud:pis is (${[...new Set(config.pis.map((p) => p.model))].join(", ")}), got ${describeValue(models)}` });
        }
        const storage = app.placement.storage;
        if (storage && !config.pis.some((p) => p.storage === storage)) {
            problems.push({ key: configKey(["tiers", "apps", name, "placement", "storage"]), message: `expected the storage of some Pi in picloud:pis (${[...new Set(config.pis.map((p) => p.storage))].join(", ")}), got ${describeValue(storage)}` });
        }
    }
    return problems;
}

/** The load balancer's own rules: its Pis, its virtual IP, and what every app needs to sit behind it. */
function loadBalancerProblems(config: z.output<typeof stackSchema>, knownPi: (path: PropertyKey[], name: string | undefined) => void): ConfigProblem[] {
    const lb = config.tiers.loadBalancer;
    if (!lb) return [];
    const problems: ConfigProblem[] = [];
    const key = (...path: PropertyKey[]) => configKey(["tiers", "loadBalancer", ...path]);
    lb.pis?.forEach((name, i) => knownPi(["tiers", "loadBalancer", "pis", i], name));
    if (lb.pis && new Set(lb.pis).size !== lb.pis.length) {
        problems.push({ key: key("pis"), message: `expected two different Pis, got ${describeValue(lb.pis)}: both HAProxy replicas on one Pi fail together` });
    }
    const vip = lb.virtualIp;
    if (vip !== undefined) {
        const replicas = loadBalancerTopology(lb, config.pis).replicas;
        const owner = config.pis.find((p) => p.address === vip);
        if (replicas < 2) {
            problems.push({
                key: key("virtualIp"),
                message: `a virtual IP needs two load-balancer Pis to move between, but the load balancer runs on ${replicas}; expected two Pis in picloud:tiers.loadBalancer.pis (or two labelled role=edge), or no virtualIp`,
            });
        }
        if (!config.network) {
            problems.push({ key: key("virtualIp"), message: "expected picloud:network.subnet to be set too: the virtual IP must sit in the Pis' subnet for VRRP to carry it" });
        } else if (!inSubnet(vip, config.network.subnet)) {
            problems.push({ key: key("virtualIp"), message: `expected an address inside picloud:network.subnet ${config.network.subnet} (VRRP only moves an address within the Pis' LAN), got ${describeValue(vip)}` });
        } else if (isNetworkOrBroadcast(vip, config.network.subnet)) {
            problems.push({ key: key("virtualIp"), message: `expected a host address in ${config.network.subnet}, got its network or broadcast address ${describeValue(vip)}` });
        }
        if (owner) problems.push({ key: key("virtualIp"), message: `expected a free address, got ${describeValue(vip)}, which is ${owner.name}'s own address` });
    }

    const apps = Object.entries(config.tiers.apps ?? {});
    if (apps.length === 0 && !config.tiers.functions) {
        problems.push({ key: key(), message: "expected something to balance: at least one app under picloud:tiers.apps or the functions tier, got neither" });
    }
    let catchAll: string | undefined;
    const routes = new Map<string, string>();
    for (const [name, app] of apps) {
        if (app.hostPort === undefined) {
            problems.push({ key: configKey(["tiers", "apps", name, "hostPort"]), message: "expected a host port: the load balancer reaches each replica on its Pi through it, got nothing" });
        }
        if (!app.route) {
            if (catchAll !== undefined) {
                problems.push({
                    key: configKey(["tiers", "apps", name, "route"]),
                    message: `expected a route (host and/or pathPrefix): app ${describeValue(catchAll)} already takes every request no route matches, so this app would get none`,
                });
            } else catchAll = name;
            continue;
        }
        if (app.route.host === undefined && routePrefix(app.route.pathPrefix) === "") {
            problems.push({
                key: configKey(["tiers", "apps", name, "route", "pathPrefix"]),
                message: `expected a path below "/", got ${describeValue(app.route.pathPrefix)}, which matches every request; to make the app take what no route matches, leave its route out`,
            });
            continue;
        }
        const signature = `${app.route.host?.toLowerCase() ?? "*"} ${routePrefix(app.route.pathPrefix) || "*"}`;
        const same = routes.get(signature);
        if (same !== undefined) {
            problems.push({ key: configKey(["tiers", "apps", name, "route"]), message: `expected a route of its own, got the same as app ${describeValue(same)}, which would take all its requests` });
        } else routes.set(signature, name);
        const prefix = routePrefix(app.route.pathPrefix);
        if (config.tiers.functions && prefix !== undefined && FUNCTION_ROUTE_PREFIXES.some((f) => prefix === f || prefix.startsWith(`${f}/`) || f.startsWith(`${prefix}/`) || prefix === "")) {
            problems.push({
                key: configKey(["tiers", "apps", name, "route", "pathPrefix"]),
                message: `expected a path outside the functions gateway's ${FUNCTION_ROUTE_PREFIXES.join(" and ")}, got ${describeValue(app.route.pathPrefix)}`,
            });
        }
    }
    return problems;
}

function isNetworkOrBroadcast(address: string, cidr: string): boolean {
    const bits = Number(cidr.split("/")[1]);
    if (bits >= 31) return false;
    const size = 2 ** (32 - bits);
    const offset = parseIpv4(address)! % size;
    return offset === 0 || offset === size - 1;
}

/** Parses dotted-quad IPv4 into a 32-bit number. */
export function parseIpv4(address: string): number | undefined {
    const parts = address.split(".");
    if (parts.length !== 4) return undefined;
    let n = 0;
    for (const part of parts) {
        if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
        n = n * 256 + Number(part);
    }
    return n;
}

/** True when `address` lies inside `cidr`. */
export function inSubnet(address: string, cidr: string): boolean {
    const [base, bits] = cidr.split("/");
    const a = parseIpv4(address);
    const b = parseIpv4(base);
    if (a === undefined || b === undefined) return false;
    const size = 2 ** (32 - Number(bits));
    return Math.floor(a / size) === Math.floor(b / size);
}
