/**
 * Renderers turning the LoadBalancer tier's wishes into the files HAProxy and keepalived read on
 * the two load-balancer Pis. Pure text in, text out: writing the files and running the daemons is
 * the tier's job. Input is checked here, before anything reaches a Pi, so a mistake fails
 * `pulumi preview` with a message naming the culprit instead of a daemon refusing to start.
 */
import { isIPv4 } from "node:net";
import { HOSTNAME_PATTERN as HOST, URL_PATH_PATTERN as PATH, routePrefix } from "../../config/fields";

/** One upstream server of a backend. */
export interface HaproxyServer {
    /** Name shown in HAProxy's metrics (`server` label) and logs. */
    readonly name: string;
    /** `host:port`; an IPv4 address or a hostname (resolved once, when HAProxy starts). */
    readonly address: string;
}

/** A pool of servers answering the same routes. */
export interface HaproxyBackend {
    /** Name shown in HAProxy's metrics (`proxy` label) and used by routes. */
    readonly name: string;
    readonly servers: readonly HaproxyServer[];
    /** Path HAProxy GETs on every server; anything but a 200 counts as a failed check. */
    readonly healthPath: string;
    /** Port the health check goes to on each server, when not the one traffic goes to (a separate admin port). */
    readonly checkPort?: number;
    /** Defaults to `roundrobin`. */
    readonly balance?: "roundrobin" | "leastconn";
    /** Requests each server handles at once; beyond that they queue in HAProxy (its saturation signal). Default: no limit. */
    readonly serverMaxConnections?: number;
}

/** Sends matching requests to a backend; a route with both fields needs both to match. */
export interface HaproxyRoute {
    readonly backend: string;
    /** Matches the path itself and everything below it: `/api` matches `/api` and `/api/x`, not `/apix`. */
    readonly pathPrefix?: string;
    /** Matches the `Host` header without its port, case-insensitively. */
    readonly host?: string;
}

/**
 * A TCP service on a port of its own (a database primary, say): connections go to the servers
 * whose HTTP health check on `checkPort` answers 200 (Patroni's `/primary`), and a server that
 * fails its check has its connections closed, so clients reconnect to the one that passes.
 */
export interface HaproxyTcpService {
    /** Name shown in HAProxy's metrics (`proxy` label). */
    readonly name: string;
    /** Port HAProxy listens on. */
    readonly port: number;
    readonly servers: readonly HaproxyServer[];
    /** Path GET on each server's `checkPort`; anything but a 200 takes it out. */
    readonly healthPath: string;
    readonly checkPort: number;
}

/** What `haproxy.cfg` needs to know. */
export interface HaproxyConfigInput {
    /** The first backend takes every request no route matched. */
    readonly backends: readonly HaproxyBackend[];
    /** TCP services, each on its own port; default none. */
    readonly tcpServices?: readonly HaproxyTcpService[];
    /** Tried in order; the first match wins. */
    readonly routes: readonly HaproxyRoute[];
    /** When set, HTTPS on :443 with this PEM (certificate chain plus key) and :80 only redirects. */
    readonly tls?: { readonly certificatePath: string };
    /** Requests one client address may make in any 10 seconds before getting 429s. */
    readonly rateLimit: { readonly requestsPer10s: number };
    /** Port of the frontend serving Prometheus metrics on `/metrics`. */
    readonly statsPort: number;
    /** Concurrent connections the whole process accepts; beyond it, connections wait in the kernel. */
    readonly maxConnections: number;
    /**
     * Numeric user and group HAProxy drops to once it has bound its ports and read its
     * certificate (it starts as root to bind :80 and :443 on the host network). Default: no change.
     */
    readonly runAs?: { readonly uid: number; readonly gid: number };
}

/** Name of the frontend taking client traffic. */
export const HAPROXY_HTTP_FRONTEND = "http-in";

/** Name of the frontend serving the Prometheus exporter. */
export const HAPROXY_STATS_FRONTEND = "stats";

/** Path of HAProxy's built-in Prometheus exporter on the stats frontend. */
export const HAPROXY_METRICS_PATH = "/metrics";

/** Path on the stats frontend that answers 200 while HAProxy runs (keepalived's check, the container's healthcheck). */
export const HAPROXY_HEALTH_PATH = "/healthz";

/** Name of the `vrrp_script` tracking HAProxy's health. */
export const KEEPALIVED_CHECK_SCRIPT = "chk_haproxy";

// HAProxy proxy and server names may hold letters, digits, '-', '_', '.' and ':'; ':' is left out
// because it would make `backend/server` in logs and the stats socket ambiguous.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Server hosts are hostnames or IPv4 addresses (HOST); IPv6 would need HAProxy's `ipv6@` syntax,
// which nothing uses yet. Paths (PATH) land unquoted in the config: whitespace, '#', quotes and
// backslashes would change its meaning.

function positiveInteger(name: string, value: number): number {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive whole number, got ${value}`);
    return value;
}

function port(name: string, value: number): number {
    if (!Number.isInteger(value) || value < 1 || value > 65535) throw new RangeError(`${name} must be a port between 1 and 65535, got ${value}`);
    return value;
}

function hostPort(where: string, address: string): string {
    const i = address.lastIndexOf(":");
    const host = address.slice(0, i);
    const p = address.slice(i + 1);
    if (i <= 0 || !HOST.test(host) || !/^\d{1,5}$/.test(p)) throw new Error(`${where}: address must be host:port, got "${address}"`);
    port(`${where}: port`, Number(p));
    return address;
}

function checkBackend(b: HaproxyBackend): void {
    if (!NAME.test(b.name)) throw new Error(`backend "${b.name}": name may only hold letters, digits, '-', '_' and '.'`);
    if (b.servers.length === 0) throw new Error(`backend "${b.name}" has no servers`);
    if (b.serverMaxConnections !== undefined) positiveInteger(`backend "${b.name}": serverMaxConnections`, b.serverMaxConnections);
    if (b.checkPort !== undefined) port(`backend "${b.name}": checkPort`, b.checkPort);
    if (!PATH.test(b.healthPath)) throw new Error(`backend "${b.name}": healthPath must be an absolute path without whitespace, '#', quotes or backslashes, got "${b.healthPath}"`);
    const seen = new Set<string>();
    for (const s of b.servers) {
        if (!NAME.test(s.name)) throw new Error(`backend "${b.name}": server name "${s.name}" may only hold letters, digits, '-', '_' and '.'`);
        if (seen.has(s.name)) throw new Error(`backend "${b.name}": server "${s.name}" appears twice`);
        seen.add(s.name);
        hostPort(`backend "${b.name}", server "${s.name}"`, s.address);
    }
}

/** The ACL lines of one route plus the condition that combines them. */
function routeAcls(index: number, r: HaproxyRoute): { acls: string[]; condition: string } {
    const acls: string[] = [];
    const terms: string[] = [];
    if (r.host !== undefined) {
        if (!HOST.test(r.host)) throw new Error(`route ${index} (backend "${r.backend}"): host must be a hostname, got "${r.host}"`);
        const acl = `route${index}_host`;
        // field(1,:) drops the port clients add on non-default ports; -i because DNS is case-insensitive.
        acls.push(`acl ${acl} req.hdr(host),field(1,:) -i ${r.host}`);
        terms.push(acl);
    }
    if (r.pathPrefix !== undefined) {
        if (!PATH.test(r.pathPrefix)) throw new Error(`route ${index} (backend "${r.backend}"): pathPrefix must be an absolute path without whitespace, '#', quotes or backslashes, got "${r.pathPrefix}"`);
        const acl = `route${index}_path`;
        const prefix = routePrefix(r.pathPrefix)!;
        if (prefix === "") {
            acls.push(`acl ${acl} path_beg /`);
        } else {
            // Two lines under one name are OR'ed: the prefix itself or anything below it, so
            // "/api" does not swallow "/apix".
            acls.push(`acl ${acl} path ${prefix}`, `acl ${acl} path_beg ${prefix}/`);
        }
        terms.push(acl);
    }
    // A route matching everything would shadow every later one; that is what the default backend is for.
    if (terms.length === 0) throw new Error(`route ${index} (backend "${r.backend}") needs a host or a pathPrefix; the first backend already takes unmatched requests`);
    return { acls, condition: terms.join(" ") };
}

/**
 * `haproxy.cfg` for HAProxy 2.6 and 3.x: one HTTP frontend (TLS on :443 with :80 redirecting when
 * `tls` is set, plain :80 otherwise) routing by host and path, a per-client-address rate limit
 * answering 429, one backend per input backend with active HTTP health checks, and a stats
 * frontend serving the built-in Prometheus exporter. Logs go to stdout because HAProxy runs in a
 * container whose runtime collects them. Throws, naming the backend or route, on bad input.
 */
export function renderHaproxyConfig(input: HaproxyConfigInput): string {
    if (input.backends.length === 0) throw new Error("at least one backend is needed: the first one is the default");
    const names = new Set<string>();
    for (const b of input.backends) {
        checkBackend(b);
        if (names.has(b.name)) throw new Error(`backend "${b.name}" appears twice`);
        names.add(b.name);
    }
    const limit = positiveInteger("rateLimit.requestsPer10s", input.rateLimit.requestsPer10s);
    const maxconn = positiveInteger("maxConnections", input.maxConnections);
    if (input.runAs) {
        positiveInteger("runAs.uid", input.runAs.uid);
        positiveInteger("runAs.gid", input.runAs.gid);
    }
    const statsPort = port("statsPort", input.statsPort);
    if (statsPort === 80 || (input.tls && statsPort === 443)) throw new Error(`statsPort ${statsPort} collides with the HTTP frontend`);
    const taken = new Map<number, string>([[80, "the HTTP frontend"], [statsPort, "statsPort"], ...(input.tls ? [[443, "the HTTPS frontend"] as [number, string]] : [])]);
    for (const t of input.tcpServices ?? []) {
        checkBackend({ name: t.name, servers: t.servers, healthPath: t.healthPath, checkPort: t.checkPort });
        if (names.has(t.name)) throw new Error(`backend "${t.name}" appears twice`);
        names.add(t.name);
        const clash = taken.get(port(`TCP service "${t.name}": port`, t.port));
        if (clash) throw new Error(`TCP service "${t.name}": port ${t.port} collides with ${clash}`);
        taken.set(t.port, `TCP service "${t.name}"`);
    }
    if (input.tls && !/^\/[^\s#"'\\]+$/.test(input.tls.certificatePath)) {
        throw new Error(`tls.certificatePath must be an absolute path without whitespace, '#', quotes or backslashes, got "${input.tls.certificatePath}"`);
    }

    const routing: string[] = [];
    input.routes.forEach((r, i) => {
        if (!names.has(r.backend)) throw new Error(`route ${i} names backend "${r.backend}", which does not exist`);
        const { acls, condition } = routeAcls(i, r);
        routing.push(...acls, `use_backend ${r.backend} if ${condition}`);
    });

    const lines: string[] = [
        "# Rendered by picloud (components/tiers/loadBalancer/renderers.ts); edits are overwritten.",
        "global",
        // The container runtime collects stdout; "raw" leaves out the syslog header nobody parses there.
        "    log stdout format raw local0 info",
        `    maxconn ${maxconn}`,
        ...(input.runAs ? [`    uid ${input.runAs.uid}`, `    gid ${input.runAs.gid}`] : []),
        // TLS 1.0/1.1 are broken and every client that matters speaks 1.2.
        "    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlognull",
        // Backends see the client's address in X-Forwarded-For instead of the load balancer's.
        "    option forwardfor",
        // A connection refused by a replica that died before its health check noticed is retried
        // on another server: nothing was sent yet, so this is safe even for a POST.
        "    retries 2",
        "    option redispatch 1",
        "    timeout connect 5s",
        "    timeout client 30s",
        "    timeout server 30s",
        // Short request and keep-alive timeouts keep slowloris-style clients from holding connections.
        "    timeout http-request 10s",
        "    timeout http-keep-alive 5s",
        "    timeout queue 30s",
        // Below `inter 2s` so a hung server fails its check before the next one starts.
        "    timeout check 2s",
        "",
        `frontend ${HAPROXY_STATS_FRONTEND}`,
        `    bind :${statsPort}`,
        `    http-request use-service prometheus-exporter if { path ${HAPROXY_METRICS_PATH} }`,
        `    monitor-uri ${HAPROXY_HEALTH_PATH}`,
        // Scrapes every few seconds would drown the access log. Silencing per request rather than
        // `no log` keeps the inherited `option httplog` meaningful, which HAProxy warns about otherwise.
        "    http-request set-log-level silent",
        "",
        `frontend ${HAPROXY_HTTP_FRONTEND}`,
        "    bind :80",
    ];
    if (input.tls) lines.push(`    bind :443 ssl crt ${input.tls.certificatePath} alpn h2,http/1.1`);
    lines.push(
        // One entry per client address, kept a little longer than the 10 s window it measures.
        "    stick-table type ip size 100k expire 30s store http_req_rate(10s)",
        "    http-request track-sc0 src",
        // A client's own X-Forwarded-For would come first in the header apps read: drop it, so
        // `option forwardfor` leaves only the address HAProxy really saw.
        "    http-request del-header X-Forwarded-For",
        // Before the redirect, so a client hammering :80 is limited too.
        `    http-request deny deny_status 429 if { sc_http_req_rate(0) gt ${limit} }`,
    );
    if (input.tls) lines.push("    http-request redirect scheme https code 301 unless { ssl_fc }");
    lines.push(...routing.map((l) => `    ${l}`), `    default_backend ${input.backends[0].name}`);

    for (const b of input.backends) {
        lines.push(
            "",
            `backend ${b.name}`,
            `    balance ${b.balance ?? "roundrobin"}`,
            `    option httpchk GET ${b.healthPath}`,
            "    http-check expect status 200",
            // A server leaves after 6 s of failures and comes back after 4 s of successes.
            ...b.servers.map((s) => `    server ${s.name} ${s.address} check${b.checkPort ? ` port ${b.checkPort}` : ""} inter 2s fall 3 rise 2${b.serverMaxConnections ? ` maxconn ${b.serverMaxConnections}` : ""}`),
        );
    }
    const tcp = input.tcpServices ?? [];
    if (tcp.length > 0) {
        lines.push(
            "",
            // The TCP services' own defaults: the HTTP options above mean nothing to them.
            "defaults tcp-services",
            "    mode tcp",
            "    log global",
            "    option tcplog",
            "    timeout connect 5s",
            // Database sessions sit idle between queries; an hour before HAProxy closes one.
            "    timeout client 1h",
            "    timeout server 1h",
            "    timeout check 2s",
        );
        for (const t of tcp) {
            lines.push(
                "",
                `listen ${t.name}`,
                `    bind :${t.port}`,
                `    option httpchk GET ${t.healthPath}`,
                "    http-check expect status 200",
                // Checked every second, the role is authoritative: a server out after two failures,
                // in after one pass. One that stops passing (a demoted primary) has its sessions
                // closed, so clients reconnect to the new one.
                "    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
                ...t.servers.map((s) => `    server ${s.name} ${s.address} check port ${t.checkPort}`),
            );
        }
    }
    return `${lines.join("\n")}\n`;
}

/** What `keepalived.conf` needs to know on one of the load-balancer Pis. */
export interface KeepalivedConfigInput {
    /** Name of the `vrrp_instance`; also the `router_id` in logs. */
    readonly instance: string;
    /** Network interface carrying VRRP and the virtual IP. */
    readonly interface: string;
    /** IPv4 address that moves to whichever Pi is MASTER. */
    readonly virtualIp: string;
    readonly prefixLength: number;
    /** VRRP virtual router id, 1-255; must be the same on both Pis and unique on the LAN. */
    readonly routerId: number;
    /** 1-254; the healthy Pi with the highest priority holds the virtual IP. */
    readonly priority: number;
    /** IPv4 addresses of the other Pis, reached by unicast. */
    readonly peers: readonly string[];
    /** This Pi's IPv4 address, the source of its adverts. */
    readonly self: string;
    /** Command run as root every 2 s; a non-zero exit means HAProxy here is unhealthy. */
    readonly checkScript: string;
    /** Command keepalived runs on every state change, with the new state among its arguments. */
    readonly notifyScript?: string;
}

// keepalived splits words on whitespace and only knows double quotes; a quote or newline inside a
// command would end it early and smuggle in config.
function command(name: string, value: string): string {
    if (!/^\/\S/.test(value) || /["\n\r\\]/.test(value)) {
        throw new Error(`${name} must start with an absolute path and hold no double quotes, backslashes or newlines, got "${value}"`);
    }
    return `"${value}"`;
}

function ipv4(name: string, value: string): string {
    if (!isIPv4(value)) throw new Error(`${name} must be an IPv4 address, got "${value}"`);
    return value;
}

/**
 * `keepalived.conf` for one load-balancer Pi: a VRRP instance over unicast holding the virtual IP,
 * tracking HAProxy through `checkScript`. Both Pis start as BACKUP and priority alone picks the
 * MASTER, so neither claims the IP before hearing the other. Throws on bad input.
 */
export function renderKeepalivedConfig(input: KeepalivedConfigInput): string {
    if (!NAME.test(input.instance)) throw new Error(`instance "${input.instance}" may only hold letters, digits, '-', '_' and '.'`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/.test(input.interface)) throw new Error(`interface "${input.interface}" is not a Linux interface name`);
    // keepalived ignores VRRP on loopback ("cannot use a loopback interface") and then has no instance.
    if (input.interface === "lo") throw new Error(`interface "lo" is loopback; VRRP needs the LAN interface`);
    ipv4("virtualIp", input.virtualIp);
    ipv4("self", input.self);
    if (!Number.isInteger(input.prefixLength) || input.prefixLength < 1 || input.prefixLength > 32) {
        throw new RangeError(`prefixLength must be between 1 and 32, got ${input.prefixLength}`);
    }
    if (!Number.isInteger(input.routerId) || input.routerId < 1 || input.routerId > 255) throw new RangeError(`routerId must be between 1 and 255, got ${input.routerId}`);
    // 255 is reserved for the owner of the address, which neither Pi is: the VIP belongs to no host.
    if (!Number.isInteger(input.priority) || input.priority < 1 || input.priority > 254) throw new RangeError(`priority must be between 1 and 254, got ${input.priority}`);
    if (input.peers.length === 0) throw new Error(`instance "${input.instance}" needs at least one peer: a lone node has nobody to fail over to`);
    input.peers.forEach((p, i) => ipv4(`peers[${i}]`, p));
    if (input.peers.includes(input.self)) throw new Error(`self ${input.self} must not be among its own peers`);
    if (input.peers.includes(input.virtualIp) || input.virtualIp === input.self) throw new Error(`virtualIp ${input.virtualIp} must not be a Pi's own address`);

    const lines = [
        "# Rendered by picloud (components/tiers/loadBalancer/renderers.ts); edits are overwritten.",
        "global_defs {",
        `    router_id ${input.instance}`,
        // Scripts run as root with their paths checked for being writable only by root, so a
        // compromised unprivileged user cannot swap in its own check script.
        "    script_user root",
        "    enable_script_security",
        "}",
        "",
        `vrrp_script ${KEEPALIVED_CHECK_SCRIPT} {`,
        `    script ${command("checkScript", input.checkScript)}`,
        "    interval 2",
        "    timeout 2",
        // Two failures (about 4 s) before giving up the IP, two successes before taking it back,
        // so a single slow scrape does not move the IP.
        "    fall 2",
        "    rise 2",
        // No weight: a failing check puts the instance in FAULT, releasing the IP outright instead
        // of lowering priority by an amount that might not be enough to lose the election.
        "}",
        "",
        `vrrp_instance ${input.instance} {`,
        // Both Pis start as BACKUP so neither claims the IP before hearing the other; priority
        // decides the first holder. nopreempt keeps the address where it is once it has moved: a
        // recovered Pi stands by instead of taking it back, which would drop connections and move
        // the address a second time for nothing.
        "    state BACKUP",
        `    interface ${input.interface}`,
        `    virtual_router_id ${input.routerId}`,
        `    priority ${input.priority}`,
        // One advert per second: failover in about 3 s, without flapping on a busy Pi.
        "    advert_int 1",
        "    nopreempt",
        // No authentication block: VRRPv2 authentication was removed from the standard (RFC 3768)
        // because a password sent in clear text in every advert protects nothing, and VRRPv3 has
        // none. The LAN is the trust boundary; unicast peers narrow who is listened to.
        `    unicast_src_ip ${input.self}`,
        "    unicast_peer {",
        ...input.peers.map((p) => `        ${p}`),
        "    }",
        "    virtual_ipaddress {",
        `        ${input.virtualIp}/${input.prefixLength} dev ${input.interface}`,
        "    }",
        "    track_script {",
        `        ${KEEPALIVED_CHECK_SCRIPT}`,
        "    }",
    ];
    if (input.notifyScript !== undefined) lines.push(`    notify ${command("notifyScript", input.notifyScript)}`);
    lines.push("}");
    return `${lines.join("\n")}\n`;
}
