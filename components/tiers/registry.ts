import type * as pulumi from "@pulumi/pulumi";
import { configKey } from "../config/errors";
import type { StackConfig } from "../config/schema";
import type { RegistryConfig } from "./serviceRegistry/config";
import type { PiHost } from "../host/piHost";
import type { DeclaredBackend, DeclaredSpec, Flow } from "../network/flows";
import type { PlacementPlan, PreviousPlacement, WorkloadDemand } from "../placement/place";
import type { Workload } from "../runtime/workload";
import { ServiceRegistry } from "./serviceRegistry/serviceRegistry";
import { ETCD_WORKLOAD, etcdWorkload, registryFlows, registrySpec } from "./serviceRegistry/specs";
import { DnsName, corednsWorkload, dnsFlows, dnsZone } from "./serviceRegistry/dns";
import type { Rename } from "../host/renames";
import { AppServers, appBackend, appMonitoringSpec, appWorkload, appWorkloadName } from "./apps/appServers";
import { Functions } from "./functions/functionsTier";
import { BlobStorage } from "./blob/blobStorage";
import { blobBackend, blobFlows, blobSpec, garageWorkload } from "./blob/garage";
import type { BlobConfig } from "./blob/config";
import { Database } from "./database/database";
import { EXPORTER_WORKLOAD, exporterWorkload, postgresWorkload } from "./database/postgres";
import { databaseFlows, databaseNames, databaseServices, databaseSpec } from "./database/specs";
import type { DatabaseConfig } from "./database/config";
import { cassandraFlows, cassandraSpec, cassandraWorkload } from "./database/cassandra";
import { CassandraRing } from "./database/cassandraRing";
import { Bus } from "./bus/bus";
import type { BusConfig } from "./bus/config";
import { NATS_EXPORTER_WORKLOAD, NATS_WORKLOAD, busFlows, busSpec, natsExporterWorkload, natsWorkload } from "./bus/nats";
import { RABBITMQ_WORKLOAD, rabbitmqFlows, rabbitmqSpec, rabbitmqWorkload } from "./bus/rabbitmq";
import { RabbitmqCluster } from "./bus/rabbitmqCluster";
import { Cache } from "./cache/cache";
import type { CacheConfig } from "./cache/config";
import { SENTINEL_EXPORTER_WORKLOAD, SENTINEL_WORKLOAD, VALKEY_EXPORTER_WORKLOAD, VALKEY_WORKLOAD, cacheExporterWorkload, cacheFlows, cacheSpec, sentinelWorkload, valkeyWorkload } from "./cache/valkey";
import { FAASD_NETWORK } from "./functions/renderers";
import { faasdDemand, faasdPi, functionsBackend, functionsSpec } from "./functions/specs";
import { LoadBalancer } from "./loadBalancer/loadBalancer";
import { EdgeBackend, EdgePort, loadBalancerAddresses, loadBalancerPis, loadBalancerSpec, loadBalancerWorkload } from "./loadBalancer/specs";
import type { HaproxyTcpService } from "./loadBalancer/renderers";
import { Monitoring } from "./monitoring/monitoring";
import { MONITORING_PORTS, MONITORING_STORES, hostSpec, monitoringHomes, monitoringTierSpec, monitoringWorkloads, storePi } from "./monitoring/specs";
import { scrapeFlows, backendFlows } from "../network/flows";
import { placedIdentities, replicaEndpoints } from "./tierComponent";
import type { TierArgs, TierComponent } from "./tierComponent";

/** Secret config values by key (without the `picloud:` prefix). */
export type SecretValues = Readonly<Record<string, pulumi.Input<string>>>;

/** What a tier's components are built from. */
export interface TierContext {
    readonly config: StackConfig;
    readonly secrets: SecretValues;
    /** Runtime, placement, Pis and the monitoring endpoint (none yet while the Monitoring tier itself is built). */
    readonly args: TierArgs;
    /** Hosts by Pi name, for tiers that configure a Pi itself over SSH. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** A child of the cloud: its name scoped by the cloud's (see `scoped`), and options that put it there. */
    scope(name: string): { name: string; opts: pulumi.ComponentResourceOptions };
    /** The components of the tiers composed before this one. */
    readonly created: readonly TierComponent[];
    /** The stack's name, for alerts and the registry's default zone. */
    readonly cloudName: string;
    /** What every tier declares, across the stack. */
    readonly declared: StackDeclarations;
}

/** A stack after placement: what a tier's flows, monitoring and backends are read from. */
export interface PlacedStack {
    readonly config: StackConfig;
    readonly placement: PlacementPlan;
}

/** What every tier declares, collected across the stack, that a tier's own flows may need. */
export interface StackDeclarations {
    /** Every monitoring spec of the stack (Prometheus scrapes each target). */
    readonly specs: readonly DeclaredSpec[];
    /** Every backend the load balancer fronts. */
    readonly backends: readonly DeclaredBackend[];
    /** Every name the service registry answers. */
    readonly names: readonly DnsName[];
}

/**
 * One tier, declared in one place: its workloads and host demands (so the whole stack is placed
 * and capacity-checked before any resource exists), the monitoring it attaches and the backends it
 * puts behind the load balancer (read by the firewall, the load balancer and the plan), the flows
 * it needs, the container bridges it adds, and its components. Placement, the firewall, the load
 * balancer, monitoring and the offline plan all read {@link TIERS}; there is no other list.
 */
export interface TierDefinition {
    /** Key under `picloud:tiers`. */
    readonly key: keyof StackConfig["tiers"];
    /** The tier's workloads for this config; empty when the tier is not enabled. `previous` is the placement lock's. */
    workloads(config: StackConfig, secrets: SecretValues, previous?: PreviousPlacement): Workload[];
    /** What the tier installs on Pis itself, outside the runtime (faasd), for placement to reserve. */
    hostDemands?(config: StackConfig): WorkloadDemand[];
    /** The monitoring specs its components attach, each with the config key behind it. */
    monitoringSpecs?(stack: PlacedStack): DeclaredSpec[];
    /** The backends it puts behind the load balancer (its TCP services among them). */
    backends?(stack: PlacedStack): DeclaredBackend[];
    /** Ports it asks the load balancer to serve TCP services on, from config alone (placement reserves them on the load-balancer Pis). */
    edgePorts?(config: StackConfig): EdgePort[];
    /** The names it answers to in the service registry's zone: every replica of what it runs. */
    dnsNames?(stack: PlacedStack): DnsName[];
    /** The flows it needs between Pis and from outside, beyond SSH. */
    flows?(stack: PlacedStack, declared: StackDeclarations): Flow[];
    /** Workloads renamed by the config (`renamedFrom`): their replicas keep their Pis under the new name. */
    workloadRenames?(config: StackConfig): Rename[];
    /** Container bridges it creates on Pis, besides Docker's. */
    containerBridges?(config: StackConfig): string[];
    /** The tier's components, each made with `context.scope`. */
    create(context: TierContext): TierComponent[];
}

/** A component that sits behind the load balancer. */
export interface EdgeComponent {
    /** Its backend and routes; undefined when it cannot be reached from the load balancer. */
    readonly edge?: EdgeBackend;
    /** Its TCP services, each on a port of its own. */
    readonly edgeTcp?: readonly HaproxyTcpService[];
}

const MGMT = { zone: "mgmt" } as const;

const monitoringTier: TierDefinition = {
    key: "monitoring",
    workloads: (config, _secrets, previous) => monitoringWorkloads(config.pis, config.tiers.monitoring, previous?.get("prometheus")),
    monitoringSpecs: ({ config, placement }) => [
        ...config.pis.map((pi, i) => ({ spec: hostSpec(pi, config.tiers.monitoring.victoriaLogs), declaredBy: configKey(["pis", i]) })),
        { spec: monitoringTierSpec(config.pis, config.tiers.monitoring, monitoringHomes(placement, config.pis)), declaredBy: "picloud:tiers.monitoring" },
        ...storeSpecs(config, placement),
    ],
    // Every Prometheus replica to every scrape target of the stack; the replicas' Alertmanagers to
    // each other; the operator to the UIs on each.
    flows: ({ config, placement }, { specs }) => {
        const homes = monitoringHomes(placement, config.pis).map((h) => h.name);
        const ui = (service: keyof typeof MONITORING_PORTS, what: string): Flow[] =>
            homes.map((home) => ({ from: MGMT, to: home, protocol: "tcp", port: MONITORING_PORTS[service], purpose: `operator to ${what}`, declaredBy: "picloud:tiers.monitoring" }));
        return [
            ...homes.flatMap((home) => scrapeFlows(specs, home, config.pis)),
            ...replicaFlows(homes),
            ...ui("grafana", "Grafana"),
            ...ui("prometheus", "Prometheus UI"),
            ...ui("alertmanager", "Alertmanager UI"),
            ...storeFlows(config, placement, homes),
        ];
    },
    dnsNames: ({ config, placement }) => {
        const homes = monitoringHomes(placement, config.pis).map((h) => h.address);
        return [
            ...(["prometheus", "alertmanager", "grafana"] as const).map((service) => ({ name: `${service}.monitoring`, addresses: homes, declaredBy: "picloud:tiers.monitoring" })),
            ...MONITORING_STORES.flatMap((store) => {
                const pi = storePi(placement, config.pis, store, config.tiers.monitoring);
                return pi ? [{ name: store.dnsName, addresses: [pi.address], declaredBy: store.kind.key }] : [];
            }),
        ];
    },
    create: ({ config, secrets, args, hosts, scope, cloudName }) => {
        const { name, opts } = scope("monitoring");
        return [new Monitoring(name, { ...args, options: config.tiers.monitoring, hosts, secrets, cloudName }, opts)];
    },
};

const registryTier: TierDefinition = {
    key: "registry",
    workloads: (config) => (config.tiers.registry ? [etcdWorkload(config.tiers.registry, config.pis, servesDcs(config)), corednsWorkload(config.tiers.registry, config.pis)] : []),
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.registry;
        return options ? [{ spec: registrySpec(options, etcdIdentities(options, placement, config), config.pis), declaredBy: "picloud:tiers.registry.metricsPort" }] : [];
    },
    flows: ({ config, placement }) => {
        const options = config.tiers.registry;
        if (!options) return [];
        const members = etcdIdentities(options, placement, config);
        return [...registryFlows(options, members), ...dnsFlows(config.pis, members)];
    },
    // The members, and every Pi by its name.
    dnsNames: ({ config, placement }) => {
        const options = config.tiers.registry;
        if (!options) return [];
        return [
            { name: "etcd.registry", addresses: etcdIdentities(options, placement, config).map((m) => m.address), declaredBy: KEY_REGISTRY },
            ...config.pis.map((pi, i) => ({ name: `${pi.name}.pi`, addresses: [pi.address], declaredBy: configKey(["pis", i]) })),
        ];
    },
    create: ({ config, args, hosts, scope, cloudName, declared }) => {
        const options = config.tiers.registry;
        if (!options) return [];
        const { name, opts } = scope("registry");
        return [new ServiceRegistry(name, { ...args, options, hosts, zone: dnsZone(options, cloudName), names: declared.names, serveDcs: servesDcs(config) }, opts)];
    },
};

const KEY_REGISTRY = "picloud:tiers.registry";
/** The stores' monitoring, each on the Pi placement put it on. */
function storeSpecs(config: StackConfig, placement: PlacementPlan): DeclaredSpec[] {
    return MONITORING_STORES.flatMap((store) => {
        const pi = storePi(placement, config.pis, store, config.tiers.monitoring);
        const spec = pi && store.spec(config.tiers.monitoring, pi.address);
        return spec ? [{ spec, declaredBy: store.kind.key }] : [];
    });
}

/** What reaches each store: from the Pis it says send to it (remote_write, pushes, journal uploads), and the operator's queries. */
/**
 * Between the monitoring replicas: each Prometheus scrapes every replica, itself included (its
 * static job, by the Pis' addresses), and sends its alerts to every Alertmanager peer; the peers
 * gossip over TCP and UDP.
 */
function replicaFlows(homes: readonly string[]): Flow[] {
    const declaredBy = "picloud:tiers.monitoring.replicas";
    return homes.flatMap((from) =>
        homes.flatMap((to): Flow[] => [
            { from: { pi: from }, to, protocol: "tcp", port: MONITORING_PORTS.prometheus, purpose: "Prometheus scrapes every replica", declaredBy },
            ...(to === from
                ? []
                : [
                      { from: { pi: from }, to, protocol: "tcp", port: MONITORING_PORTS.alertmanager, purpose: "Prometheus alerts to every Alertmanager peer", declaredBy } as Flow,
                      ...(["tcp", "udp"] as const).map((protocol): Flow => ({ from: { pi: from }, to, protocol, port: MONITORING_PORTS.alertmanagerCluster, purpose: "Alertmanager cluster gossip", declaredBy })),
                  ]),
        ]),
    );
}

function storeFlows(config: StackConfig, placement: PlacementPlan, homes: readonly string[]): Flow[] {
    return MONITORING_STORES.flatMap((store) => {
        const pi = storePi(placement, config.pis, store, config.tiers.monitoring);
        const port = store.port(config.tiers.monitoring);
        if (!pi || port === undefined) return [];
        const to = (from: Flow["from"], purpose: string): Flow => ({ from, to: pi.name, protocol: "tcp", port, purpose, declaredBy: `${store.kind.key}.httpPort` });
        return [
            ...config.pis.map((p) => to({ pi: p.name }, store.senders(homes.includes(p.name)))),
            to(MGMT, store.operator),
        ];
    });
}

/** Whether a tier keeps its state in etcd (the database's Patroni): etcd then serves its DCS port. */
function servesDcs(config: StackConfig): boolean {
    return config.tiers.database !== undefined;
}

/** Who etcd's members are, from placement, as the runtime will make them. */
function etcdIdentities(options: RegistryConfig, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(etcdWorkload(options, config.pis), { placement, pis: config.pis });
}

const KEY_BLOB = "picloud:tiers.blob";

/** Who Garage's nodes are, from placement. */
function garageIdentities(options: BlobConfig, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(garageWorkload(options, config.pis), { placement, pis: config.pis });
}

const blobTier: TierDefinition = {
    key: "blob",
    workloads: (config) => (config.tiers.blob ? [garageWorkload(config.tiers.blob, config.pis)] : []),
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.blob;
        return options ? [{ spec: blobSpec(options, garageIdentities(options, placement, config)), declaredBy: `${KEY_BLOB}.adminPort` }] : [];
    },
    backends: ({ config, placement }) => {
        const options = config.tiers.blob;
        const edge = options && blobBackend(options, garageIdentities(options, placement, config));
        return edge ? [{ backend: edge, declaredBy: `${KEY_BLOB}.loadBalancer` }] : [];
    },
    flows: ({ config, placement }) => {
        const options = config.tiers.blob;
        return options ? blobFlows(options, garageIdentities(options, placement, config), config.pis) : [];
    },
    // S3 on every node.
    dnsNames: ({ config, placement }) => {
        const options = config.tiers.blob;
        return options ? [{ name: "s3.blob", addresses: garageIdentities(options, placement, config).map((m) => m.address), declaredBy: KEY_BLOB }] : [];
    },
    create: ({ config, args, hosts, scope, cloudName, created }) => {
        const options = config.tiers.blob;
        if (!options) return [];
        const { name, opts } = scope("blob");
        const zone = config.tiers.registry ? dnsZone(config.tiers.registry, cloudName) : undefined;
        const storage = new BlobStorage(name, { ...args, options, hosts, zone }, opts);
        // The Monitoring tier is composed first (everything attaches to it); its VictoriaMetrics
        // backs up here, once there is a bucket to back up into.
        const metricsBackup = config.tiers.monitoring.victoriaMetrics?.backup;
        if (metricsBackup) created.find((c): c is Monitoring => c instanceof Monitoring)?.backUpMetrics(storage.keyEnvironment(metricsBackup.key), [storage], zone !== undefined);
        return [storage];
    },
};

const KEY_DATABASE = "picloud:tiers.database";

/** Who the database's members are, from placement. */
function postgresIdentities(options: DatabaseConfig, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(postgresWorkload(options, config.pis), { placement, pis: config.pis });
}

/** Where clients reach the load balancer (the virtual IP, else its Pis), when the stack has one. */
function loadBalancerFront(config: StackConfig, placement: PlacementPlan): string[] | undefined {
    const lb = config.tiers.loadBalancer;
    return lb ? loadBalancerAddresses(lb, loadBalancerPis(placement, config.pis).map((p) => p.address)) : undefined;
}

/** Who the Cassandra ring's nodes are, from placement. */
function cassandraIdentities(options: NonNullable<DatabaseConfig["cassandra"]>, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(cassandraWorkload(options), { placement, pis: config.pis });
}

const databaseTier: TierDefinition = {
    key: "database",
    workloads: (config) => {
        const options = config.tiers.database;
        if (!options) return [];
        return [postgresWorkload(options, config.pis), exporterWorkload(options, config.pis), ...(options.cassandra ? [cassandraWorkload(options.cassandra)] : [])];
    },
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.database;
        if (!options) return [];
        const exporters = replicaEndpoints(EXPORTER_WORKLOAD, options.exporterPort, { placement, pis: config.pis });
        return [
            { spec: databaseSpec(options, postgresIdentities(options, placement, config), exporters), declaredBy: `${KEY_DATABASE}.restApiPort` },
            ...(options.cassandra ? [{ spec: cassandraSpec(options.cassandra, cassandraIdentities(options.cassandra, placement, config)), declaredBy: `${KEY_DATABASE}.cassandra.metricsPort` }] : []),
        ];
    },
    edgePorts: (config) => {
        const options = config.tiers.database;
        if (!options || !config.tiers.loadBalancer) return [];
        return [
            { port: options.loadBalancer.primaryPort, configKey: `${KEY_DATABASE}.loadBalancer.primaryPort` },
            { port: options.loadBalancer.replicasPort, configKey: `${KEY_DATABASE}.loadBalancer.replicasPort` },
        ];
    },
    backends: ({ config, placement }) => {
        const options = config.tiers.database;
        if (!options || !config.tiers.loadBalancer) return [];
        return databaseServices(options, postgresIdentities(options, placement, config)).map((service) => ({ backend: { backend: service }, declaredBy: `${KEY_DATABASE}.loadBalancer` }));
    },
    flows: ({ config, placement }) => {
        const options = config.tiers.database;
        const registry = config.tiers.registry;
        if (!options || !registry) return [];
        return [
            ...databaseFlows(options, postgresIdentities(options, placement, config), etcdIdentities(registry, placement, config), registry.dcsPort, config.pis),
            ...(options.cassandra ? cassandraFlows(options.cassandra, cassandraIdentities(options.cassandra, placement, config), config.pis) : []),
        ];
    },
    dnsNames: ({ config, placement }) => {
        const options = config.tiers.database;
        if (!options) return [];
        const exporters = placedIdentities(exporterWorkload(options, config.pis), { placement, pis: config.pis }).map((m) => m.address);
        return [
            ...databaseNames(postgresIdentities(options, placement, config), exporters, loadBalancerFront(config, placement)),
            ...(options.cassandra ? [{ name: "cassandra.database", addresses: cassandraIdentities(options.cassandra, placement, config).map((m) => m.address), declaredBy: `${KEY_DATABASE}.cassandra` }] : []),
        ];
    },
    create: ({ config, args, hosts, scope, cloudName, created }) => {
        const options = config.tiers.database;
        const registry = config.tiers.registry;
        if (!options) return [];
        if (!registry) throw new Error(`${KEY_DATABASE}: expected picloud:tiers.registry to be enabled too: Patroni elects the primary in the registry's etcd`);
        const { name, opts } = scope("database");
        const etcd = etcdIdentities(registry, args.placement, config).map((m) => `${m.address}:${registry.dcsPort}`);
        const front = loadBalancerFront(config, args.placement);
        const after = created.filter((c): c is ServiceRegistry => c instanceof ServiceRegistry).flatMap((r) => r.replicas[ETCD_WORKLOAD].map((m) => m.resource));
        const blob = created.find((c): c is BlobStorage => c instanceof BlobStorage);
        const backupKey = options.backup && blob ? blob.keyEnvironment(options.backup.key) : undefined;
        const database = new Database(name, { ...args, options, hosts, scope: cloudName, etcd, zone: dnsZone(registry, cloudName), loadBalancerAddress: front?.[0], after, backupKey }, opts);
        if (!options.cassandra) return [database];
        const ring = scope("cassandra");
        return [database, new CassandraRing(ring.name, { ...args, options: options.cassandra, hosts, clusterName: cloudName }, ring.opts)];
    },
};

const KEY_CACHE = "picloud:tiers.cache";

/** Where the cache's nodes and Sentinels run, from placement. */
function cacheIdentities(options: CacheConfig, placement: PlacementPlan, config: StackConfig) {
    const stack = { placement, pis: config.pis };
    return { nodes: placedIdentities(valkeyWorkload(options, config.pis), stack), sentinels: placedIdentities(sentinelWorkload(options, config.pis), stack) };
}

const cacheTier: TierDefinition = {
    key: "cache",
    workloads: (config) => {
        const options = config.tiers.cache;
        if (!options) return [];
        return [valkeyWorkload(options, config.pis), sentinelWorkload(options, config.pis), cacheExporterWorkload("valkey", options, config.pis), cacheExporterWorkload("sentinel", options, config.pis)];
    },
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.cache;
        if (!options) return [];
        const { nodes, sentinels } = cacheIdentities(options, placement, config);
        const stack = { placement, pis: config.pis };
        return [
            {
                spec: cacheSpec(options, nodes.length, sentinels.length, replicaEndpoints(VALKEY_EXPORTER_WORKLOAD, options.exporterPort, stack), replicaEndpoints(SENTINEL_EXPORTER_WORKLOAD, options.sentinelExporterPort, stack)),
                declaredBy: `${KEY_CACHE}.exporterPort`,
            },
        ];
    },
    flows: ({ config, placement }) => {
        const options = config.tiers.cache;
        if (!options) return [];
        const { nodes, sentinels } = cacheIdentities(options, placement, config);
        return cacheFlows(options, nodes, sentinels, config.pis);
    },
    dnsNames: ({ config, placement }) => {
        const options = config.tiers.cache;
        if (!options) return [];
        const address = new Map(config.pis.map((p) => [p.name, p.address]));
        const on = (workload: string) => (placement.assignments.get(workload) ?? []).map((pi) => address.get(pi)!);
        return [
            { name: "valkey.cache", addresses: on(VALKEY_WORKLOAD), declaredBy: KEY_CACHE },
            { name: "sentinel.cache", addresses: on(SENTINEL_WORKLOAD), declaredBy: `${KEY_CACHE}.sentinelPort` },
        ];
    },
    create: ({ config, args, hosts, scope, cloudName }) => {
        const options = config.tiers.cache;
        if (!options) return [];
        const { name, opts } = scope("cache");
        return [new Cache(name, { ...args, options, hosts, cloudName }, opts)];
    },
};

const KEY_BUS = "picloud:tiers.bus";

/** Where the bus's nodes run, from placement. */
function natsIdentities(options: BusConfig, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(natsWorkload(options, config.pis), { placement, pis: config.pis });
}

/** Where RabbitMQ's nodes run, from placement. */
function rabbitmqIdentities(options: NonNullable<BusConfig["rabbitmq"]>, placement: PlacementPlan, config: StackConfig) {
    return placedIdentities(rabbitmqWorkload(options, config.pis), { placement, pis: config.pis });
}

const busTier: TierDefinition = {
    key: "bus",
    workloads: (config) => {
        const options = config.tiers.bus;
        if (!options) return [];
        return [natsWorkload(options, config.pis), natsExporterWorkload(options, config.pis), ...(options.rabbitmq ? [rabbitmqWorkload(options.rabbitmq, config.pis)] : [])];
    },
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.bus;
        if (!options) return [];
        const nodes = natsIdentities(options, placement, config).length;
        const rabbitmq = options.rabbitmq;
        return [
            { spec: busSpec(options, nodes, replicaEndpoints(NATS_EXPORTER_WORKLOAD, options.exporterPort, { placement, pis: config.pis })), declaredBy: `${KEY_BUS}.exporterPort` },
            ...(rabbitmq
                ? [{ spec: rabbitmqSpec(rabbitmq, rabbitmqIdentities(rabbitmq, placement, config).length, replicaEndpoints(RABBITMQ_WORKLOAD, rabbitmq.prometheusPort, { placement, pis: config.pis })), declaredBy: `${KEY_BUS}.rabbitmq.prometheusPort` }]
                : []),
        ];
    },
    flows: ({ config, placement }) => {
        const options = config.tiers.bus;
        if (!options) return [];
        const rabbitmq = options.rabbitmq;
        return [...busFlows(options, natsIdentities(options, placement, config), config.pis), ...(rabbitmq ? rabbitmqFlows(rabbitmq, rabbitmqIdentities(rabbitmq, placement, config), config.pis) : [])];
    },
    dnsNames: ({ config, placement }) => {
        const options = config.tiers.bus;
        if (!options) return [];
        const address = new Map(config.pis.map((p) => [p.name, p.address]));
        const on = (workload: string) => (placement.assignments.get(workload) ?? []).map((pi) => address.get(pi)!);
        return [{ name: "nats.bus", addresses: on(NATS_WORKLOAD), declaredBy: KEY_BUS }, ...(options.rabbitmq ? [{ name: "rabbitmq.bus", addresses: on(RABBITMQ_WORKLOAD), declaredBy: `${KEY_BUS}.rabbitmq` }] : [])];
    },
    create: ({ config, args, hosts, scope }) => {
        const options = config.tiers.bus;
        if (!options) return [];
        const { name, opts } = scope("bus");
        const bus = new Bus(name, { ...args, options, hosts }, opts);
        if (!options.rabbitmq) return [bus];
        const cluster = scope("rabbitmq");
        return [bus, new RabbitmqCluster(cluster.name, { ...args, options: options.rabbitmq, hosts }, cluster.opts)];
    },
};

const appsTier: TierDefinition = {
    key: "apps",
    workloads: (config, secrets) => Object.entries(config.tiers.apps ?? {}).map(([name, app]) => appWorkload(name, app, secrets, config.pis)),
    monitoringSpecs: ({ config, placement }) =>
        Object.entries(config.tiers.apps ?? {}).map(([name, app]) => ({
            spec: appMonitoringSpec(name, app, { placement, pis: config.pis }, config.tiers.loadBalancer !== undefined),
            declaredBy: `picloud:tiers.apps.${name}.metrics`,
        })),
    workloadRenames: (config) =>
        Object.entries(config.tiers.apps ?? {}).flatMap(([name, app]) => (app.renamedFrom === undefined ? [] : [{ from: appWorkloadName(app.renamedFrom), to: appWorkloadName(name) }])),
    dnsNames: ({ config, placement }) => {
        const address = new Map(config.pis.map((p) => [p.name, p.address]));
        return Object.keys(config.tiers.apps ?? {}).map((name) => ({
            name: `${name}.apps`,
            addresses: (placement.assignments.get(appWorkloadName(name)) ?? []).map((pi) => address.get(pi)!),
            declaredBy: `picloud:tiers.apps.${name}`,
        }));
    },
    backends: ({ config, placement }) =>
        Object.entries(config.tiers.apps ?? {}).flatMap(([name, app]) =>
            app.hostPort === undefined ? [] : [{ backend: appBackend(name, app, { placement, pis: config.pis }), declaredBy: `picloud:tiers.apps.${name}.hostPort` }],
        ),
    create: ({ config, secrets, args, scope, created }) => {
        const blob = created.find((c): c is BlobStorage => c instanceof BlobStorage);
        const database = created.find((c): c is Database => c instanceof Database);
        const cache = created.find((c): c is Cache => c instanceof Cache);
        const bus = created.find((c): c is Bus => c instanceof Bus);
        const rabbitmq = created.find((c): c is RabbitmqCluster => c instanceof RabbitmqCluster);
        return Object.entries(config.tiers.apps ?? {}).map(([appName, app]) => {
            const { name, opts } = scope(appName);
            const clients = [
                ...(app.blobKey === undefined || !blob ? [] : [blob.keyEnvironment(app.blobKey)]),
                ...(app.database === undefined || !database ? [] : [database.databaseEnvironment(app.database)]),
                ...(app.cache !== true || !cache ? [] : [cache.clientEnvironment()]),
                ...(app.busUser === undefined || !bus ? [] : [bus.userEnvironment(app.busUser)]),
                ...(app.rabbitmqUser === undefined || !rabbitmq ? [] : [rabbitmq.userEnvironment(app.rabbitmqUser)]),
            ];
            return new AppServers(name, { ...args, appName, app, secrets, clients, loadBalanced: config.tiers.loadBalancer !== undefined }, opts);
        });
    },
};

const functionsTier: TierDefinition = {
    key: "functions",
    workloads: () => [],
    hostDemands: (config) => (config.tiers.functions ? [faasdDemand(config.tiers.functions, config.pis)] : []),
    monitoringSpecs: ({ config, placement }) => {
        const options = config.tiers.functions;
        if (!options) return [];
        return [{ spec: functionsSpec(options, faasdPi(placement, config.pis), config.tiers.loadBalancer !== undefined), declaredBy: "picloud:tiers.functions.metricsPort" }];
    },
    backends: ({ config, placement }) => {
        const options = config.tiers.functions;
        return options ? [{ backend: functionsBackend(options, faasdPi(placement, config.pis)), declaredBy: "picloud:tiers.functions.gatewayPort" }] : [];
    },
    // The operator to the gateway (`faas-cli -g`); the gateway, in its containers, to faasd-provider
    // at the openfaas0 bridge's address.
    flows: ({ config, placement }) => {
        const options = config.tiers.functions;
        if (!options) return [];
        const faasd = faasdPi(placement, config.pis).name;
        return [
            { from: MGMT, to: faasd, protocol: "tcp", port: options.gatewayPort, purpose: "operator to the functions gateway", declaredBy: "picloud:tiers.functions.gatewayPort" },
            { from: { pi: faasd }, to: faasd, protocol: "tcp", port: options.providerPort, purpose: "faasd gateway to faasd-provider", declaredBy: "picloud:tiers.functions.providerPort" },
        ];
    },
    dnsNames: ({ config, placement }) => (config.tiers.functions ? [{ name: "gateway.functions", addresses: [faasdPi(placement, config.pis).address], declaredBy: "picloud:tiers.functions" }] : []),
    containerBridges: (config) => (config.tiers.functions ? [FAASD_NETWORK.bridge] : []),
    create: ({ config, args, hosts, scope }) => {
        const options = config.tiers.functions;
        if (!options) return [];
        const { name, opts } = scope("functions");
        return [new Functions(name, { ...args, options, hosts, loadBalanced: config.tiers.loadBalancer !== undefined }, opts)];
    },
};

const loadBalancerTier: TierDefinition = {
    key: "loadBalancer",
    workloads: (config) => (config.tiers.loadBalancer ? [loadBalancerWorkload(config.tiers.loadBalancer, config.pis, TIERS.flatMap((t) => t.edgePorts?.(config) ?? []))] : []),
    monitoringSpecs: ({ config, placement }) => {
        const lb = config.tiers.loadBalancer;
        return lb ? [{ spec: loadBalancerSpec(lb, loadBalancerPis(placement, config.pis)), declaredBy: "picloud:tiers.loadBalancer.statsPort" }] : [];
    },
    // Clients to HTTP (and HTTPS with TLS) on the load-balancer Pis; those Pis to every backend
    // server; VRRP between the two when they share a virtual IP (unicast adverts).
    flows: ({ config, placement }, { backends }) => {
        const lb = config.tiers.loadBalancer;
        if (!lb) return [];
        const lbPis = loadBalancerPis(placement, config.pis).map((p) => p.name);
        const flows: Flow[] = lbPis.flatMap((to): Flow[] => [
            { from: "any", to, protocol: "tcp", port: 80, purpose: "clients (http)", declaredBy: "picloud:tiers.loadBalancer" },
            ...(lb.tls ? [{ from: "any", to, protocol: "tcp", port: 443, purpose: "clients (https)", declaredBy: "picloud:tiers.loadBalancer.tls" } as const] : []),
        ]);
        flows.push(...backendFlows(backends, lbPis, config.pis));
        // The tiers' TCP services: from every Pi (their clients run there) and the operator, not from anywhere.
        for (const { port, configKey } of TIERS.flatMap((t) => t.edgePorts?.(config) ?? [])) {
            for (const to of lbPis) {
                flows.push(
                    ...config.pis.filter((p) => p.name !== to).map((p): Flow => ({ from: { pi: p.name }, to, protocol: "tcp", port, purpose: `clients on ${p.name} (tcp ${port})`, declaredBy: configKey })),
                    { from: MGMT, to, protocol: "tcp", port, purpose: `operator (tcp ${port})`, declaredBy: configKey },
                );
            }
        }
        if (lb.virtualIp !== undefined && lbPis.length === 2) {
            const [a, b] = lbPis;
            for (const [from, to] of [[a, b], [b, a]]) {
                flows.push({ from: { pi: from }, to, protocol: "vrrp", purpose: `vrrp from ${from}`, declaredBy: "picloud:tiers.loadBalancer.virtualIp" });
            }
        }
        return flows;
    },
    // `lb` is where clients connect (the virtual IP, else the load-balancer Pis): names of
    // failover primaries point there too, where HAProxy health-checks the role.
    dnsNames: ({ config, placement }) => {
        const lb = config.tiers.loadBalancer;
        if (!lb) return [];
        const lbPis = loadBalancerPis(placement, config.pis).map((p) => p.address);
        return [
            { name: "lb", addresses: loadBalancerAddresses(lb, lbPis), declaredBy: "picloud:tiers.loadBalancer" },
            { name: "haproxy.loadbalancer", addresses: lbPis, declaredBy: "picloud:tiers.loadBalancer" },
        ];
    },
    create: ({ config, secrets, args, hosts, scope, created }) => {
        const options = config.tiers.loadBalancer;
        if (!options) return [];
        const backends = created.flatMap((c) => (c as Partial<EdgeComponent>).edge ?? []);
        const tcpServices = created.flatMap((c) => (c as Partial<EdgeComponent>).edgeTcp ?? []);
        const { name, opts } = scope("loadbalancer");
        return [new LoadBalancer(name, { ...args, options, backends, tcpServices, hosts, secrets, subnet: config.network?.subnet }, opts)];
    },
};

/**
 * Every tier this version of picloud can build, in the order they are composed: monitoring first
 * (everything else attaches to it), the registry next (what runs later finds its peers there),
 * blob storage, the database, the cache and the bus before the apps that hold their credentials, the load balancer
 * after what it fronts.
 */
export const TIERS: readonly TierDefinition[] = [monitoringTier, registryTier, blobTier, databaseTier, cacheTier, busTier, appsTier, functionsTier, loadBalancerTier];
