import type { PiConfig } from "../../config/schema";
import type { MonitoringConfig, StoreConfig, VictoriaLogsConfig } from "./config";
import { AlertRule, LIVENESS, MonitoringSpec, ScrapeTarget, targetDownRule } from "../../monitoring/contract";
import type { PlacementPlan } from "../../placement/place";
import type { Workload } from "../../runtime/workload";
import { AlertmanagerConfigInput, GRAFANA_VICTORIA_LOGS_PLUGIN, PrometheusConfigInput, WATCHDOG_ALERT } from "../../monitoring/renderers";
import { JOURNAL_UPLOAD_METRIC, NODE_EXPORTER_TEXTFILE_DIR } from "../../renderers/hostScripts";
import { MONITORING_IMAGES } from "./images";
import { VICTORIA_METRICS, VICTORIA_METRICS_PATHS, victoriaMetricsSpec, victoriaMetricsWorkload } from "./victoriaMetrics";
import { VICTORIA_LOGS, journalUploadUrl, victoriaLogsSpec, victoriaLogsWorkload } from "./victoriaLogs";
import type { StoreKind } from "./stores";
import type { LogShipping } from "../../renderers/hostScripts";

/** Ports of the monitoring agents and services, on the Pis. */
export const MONITORING_PORTS = { prometheus: 9090, alertmanager: 9093, alertmanagerCluster: 9094, grafana: 3000, nodeExporter: 9100, cadvisor: 9338 } as const;

/**
 * Alertmanager's cluster flags for the peer at `self` (host:port its peers reach it on) among
 * `peers` (every peer's, itself included): it gossips with the others over TCP and UDP and they
 * share silences and the notification log, so an alert every Prometheus replica sends to every
 * peer goes out once. `listen` is where it binds. With one peer, clustering is off.
 */
export function alertmanagerClusterFlags(self: string, peers: readonly string[], listen = `0.0.0.0:${MONITORING_PORTS.alertmanagerCluster}`): string[] {
    const others = peers.filter((p) => p !== self);
    if (others.length === 0) return ["--cluster.listen-address="];
    return [`--cluster.listen-address=${listen}`, `--cluster.advertise-address=${self}`, ...others.map((p) => `--cluster.peer=${p}`)];
}

/** Folders on the monitoring Pi: configs picloud writes, and the services' data. */
export const MONITORING_DIRS = {
    base: "/srv/picloud/monitoring",
    prometheusConfig: "/srv/picloud/monitoring/prometheus",
    fileSd: "/srv/picloud/monitoring/prometheus/file_sd",
    rules: "/srv/picloud/monitoring/prometheus/rules",
    alertmanagerConfig: "/srv/picloud/monitoring/alertmanager",
    grafanaProvisioning: "/srv/picloud/monitoring/grafana/provisioning",
    dashboards: "/srv/picloud/monitoring/grafana/dashboards",
    prometheusData: "/srv/picloud/data/prometheus",
    alertmanagerData: "/srv/picloud/data/alertmanager",
    grafanaData: "/srv/picloud/data/grafana",
    /** Secrets the services read themselves, each owned by the uid that reads it. */
    secrets: "/srv/picloud/monitoring/secrets",
} as const;

/** The uids the monitoring images run as: Prometheus and Alertmanager as nobody, Grafana as its own user. */
export const MONITORING_UIDS = { nobody: 65534, grafana: 472 } as const;

/** Grafana's admin password file: on the monitoring Pi, and where the container sees it. */
export const GRAFANA_ADMIN_PASSWORD_FILE = {
    onPi: `${MONITORING_DIRS.secrets}/grafana_admin_password`,
    inContainer: "/run/secrets/picloud/grafana_admin_password",
} as const;

// Host-level agents' metrics (keepalived's hook, backup timers, the log heartbeat): the bootstrap knows the folder too.
export { NODE_EXPORTER_TEXTFILE_DIR };

/** Where the containers see those folders. */
const IN_CONTAINER = { prometheusConfig: "/etc/prometheus/picloud", alertmanagerConfig: "/etc/alertmanager/picloud" } as const;

/**
 * What the Monitoring tier renders prometheus.yml from, the same for every replica on `homes`: the
 * bulk scrape interval from the config, rules evaluated at {@link LIVENESS}'s pace, the folders as
 * the container sees them. Each replica scrapes every replica (a dead one is seen by the other)
 * and sends every alert to every Alertmanager peer; no label tells the replicas apart, so their
 * alerts are the same alerts to Alertmanager and their samples the same series to VictoriaMetrics.
 */
export function prometheusConfigInput(options: MonitoringConfig, cloudName: string, homes: readonly Pick<PiConfig, "address">[], longTermStore?: string): PrometheusConfigInput {
    return {
        remoteWriteUrls: longTermStore === undefined ? [] : [`http://${longTermStore}${VICTORIA_METRICS_PATHS.remoteWrite}`],
        scrapeIntervalSeconds: options.scrapeIntervalSeconds,
        evaluationIntervalSeconds: LIVENESS.evaluationIntervalSeconds,
        alertmanagers: homes.map((h) => `${h.address}:${MONITORING_PORTS.alertmanager}`),
        fileSdDir: `${IN_CONTAINER.prometheusConfig}/file_sd`,
        rulesDir: `${IN_CONTAINER.prometheusConfig}/rules`,
        externalLabels: { cloud: cloudName },
        prometheusTargets: homes.map((h) => `${h.address}:${MONITORING_PORTS.prometheus}`),
    };
}

/** What the Monitoring tier renders alertmanager.yml from; the SMTP password is a file Alertmanager reads. */
export function alertmanagerConfigInput(options: MonitoringConfig): AlertmanagerConfigInput {
    const email = options.alerting.email;
    return {
        webhookUrls: options.alerting.webhookUrls,
        email: email && {
            to: email.to,
            from: email.from,
            smarthost: email.smarthost,
            authUsername: email.username,
            authPasswordFile: email.passwordSecret ? `${IN_CONTAINER.alertmanagerConfig}/smtp_password` : undefined,
        },
        deadMansSwitchUrl: options.alerting.deadMansSwitchUrl,
    };
}

/** How many replicas of Prometheus, Alertmanager and Grafana the stack runs: as many as `pis` names, else `replicas`, else two when it has two Pis. */
export function monitoringReplicaCount(pis: readonly PiConfig[], options: MonitoringConfig): number {
    return options.pis?.length ?? options.replicas ?? Math.min(2, pis.length);
}

/**
 * The Pis that run Prometheus, Alertmanager and Grafana, one replica of each per Pi (together: they
 * share a Docker network), in replica order: those `picloud:tiers.monitoring.pis` (or `pi`, the
 * first) names; else each replica's Pi before (`previous`, from the placement lock, by replica) while
 * it is in the stack, so adding or losing a Pi never moves the other replica's data; else one that
 * ran a replica before; else Pis labelled `role: monitoring`, then those with an SSD, then the first.
 */
export function monitoringPis(pis: readonly PiConfig[], options: MonitoringConfig, previous: readonly string[] = []): PiConfig[] {
    const byName = (name: string | undefined) => (name === undefined ? undefined : pis.find((p) => p.name === name));
    const count = Math.min(monitoringReplicaCount(pis, options), pis.length);
    const named = options.pis ?? (options.pi === undefined ? [] : [options.pi]);
    const chosen: (PiConfig | undefined)[] = Array.from({ length: count }, (_, i) => byName(named[i]));
    const free = (p: PiConfig | undefined): p is PiConfig => p !== undefined && !chosen.includes(p);
    for (let i = 0; i < count; i++) {
        const before = byName(previous[i]);
        if (!chosen[i] && free(before)) chosen[i] = before;
    }
    const preferred = [...previous.map(byName), ...pis.filter((p) => p.labels.role === "monitoring"), ...pis.filter((p) => p.storage === "ssd"), ...pis];
    for (let i = 0; i < count; i++) chosen[i] ??= preferred.find(free);
    return chosen as PiConfig[];
}

/** Why the monitoring services are where {@link monitoringPis} puts them, for the plan's list of moves. */
function monitoringPinReason(pis: readonly PiConfig[], options: MonitoringConfig, previous: readonly string[], homes: readonly PiConfig[]): string {
    const names = homes.map((h) => h.name).join(" and ");
    if (options.pis !== undefined) return `picloud:tiers.monitoring.pis names ${names}`;
    if (options.pi !== undefined) return `picloud:tiers.monitoring.pi names ${homes[0].name}`;
    const gone = previous.filter((name) => !pis.some((p) => p.name === name));
    if (gone.length > 0) return `${gone.join(" and ")} no longer in picloud:pis; ${names} ${homes.length === 1 ? "carries" : "carry"} the monitoring tier`;
    return homes.length === 1 ? `${names} is the monitoring tier's default Pi` : `${names} are the monitoring tier's default Pis`;
}

/** The Pis placement put the monitoring services on, in replica order. */
export function monitoringHomes(placement: PlacementPlan, pis: readonly PiConfig[]): PiConfig[] {
    const names = placement.assignments.get("prometheus") ?? [];
    const homes = names.map((name) => pis.find((p) => p.name === name));
    if (homes.length === 0 || homes.some((h) => h === undefined)) throw new Error("picloud:tiers.monitoring: Prometheus has no placement; place monitoringWorkloads(...) with placeReplicas first");
    return homes as PiConfig[];
}

/**
 * One of the tier's stores as the stack sees it: each method answers undefined when the stack's
 * config does not have it. Every Pi sends to it; `senders` says why, for the firewall
 * (`monitoring`: the Pi runs a replica of Prometheus and Grafana).
 */
export interface MonitoringStore {
    readonly kind: StoreKind;
    /** Its name in the service registry's zone. */
    readonly dnsName: string;
    workload(options: MonitoringConfig): Workload | undefined;
    spec(options: MonitoringConfig, address: string): MonitoringSpec | undefined;
    port(options: MonitoringConfig): number | undefined;
    senders(monitoring: boolean): string;
    /** What the operator reaches it for, from the management network. */
    readonly operator: string;
}

/**
 * A store from its part of the options (`options` picks it, undefined when the stack has none)
 * and what it makes of them; its name in the registry's zone is `<workload>.monitoring`.
 */
function monitoringStore<T extends StoreConfig>(
    kind: StoreKind,
    options: (o: MonitoringConfig) => T | undefined,
    make: { workload(o: T): Workload; spec(o: T, address: string): MonitoringSpec },
    traffic: Pick<MonitoringStore, "senders" | "operator">,
): MonitoringStore {
    return {
        kind,
        dnsName: `${kind.workload}.monitoring`,
        workload: (o) => {
            const own = options(o);
            return own && make.workload(own);
        },
        spec: (o, address) => {
            const own = options(o);
            return own && make.spec(own, address);
        },
        port: (o) => options(o)?.httpPort,
        ...traffic,
    };
}

/** VictoriaMetrics, the long-term metrics store. */
export const METRICS_STORE = monitoringStore(
    VICTORIA_METRICS,
    (o) => o.victoriaMetrics,
    { workload: victoriaMetricsWorkload, spec: victoriaMetricsSpec },
    {
        senders: (monitoring) => (monitoring ? "Prometheus remote_write to VictoriaMetrics" : "metrics pushed to VictoriaMetrics"),
        operator: "operator to VictoriaMetrics queries and UI",
    },
);

/** VictoriaLogs, the log store. */
export const LOG_STORE = monitoringStore(
    VICTORIA_LOGS,
    (o) => o.victoriaLogs,
    { workload: victoriaLogsWorkload, spec: victoriaLogsSpec },
    {
        senders: (monitoring) => (monitoring ? "journal upload and Grafana queries to VictoriaLogs" : "journal upload to VictoriaLogs"),
        operator: "operator to VictoriaLogs queries and UI",
    },
);

/** The tier's stores, in the order they are made. */
export const MONITORING_STORES: readonly MonitoringStore[] = [METRICS_STORE, LOG_STORE];

/** The Pi placement put a store on, when the stack has it. */
export function storePi(placement: PlacementPlan, pis: readonly PiConfig[], store: MonitoringStore, options: MonitoringConfig): PiConfig | undefined {
    if (store.port(options) === undefined) return undefined;
    return pis.find((p) => p.name === placement.assignments.get(store.kind.workload)?.[0]);
}

/** `host:port` of a store where placement put it, when the stack has it. */
export function storeAddress(placement: PlacementPlan, pis: readonly PiConfig[], store: MonitoringStore, options: MonitoringConfig): string | undefined {
    const pi = storePi(placement, pis, store, options);
    return pi && `${pi.address}:${store.port(options)}`;
}

/** `host:port` of VictoriaMetrics where placement put it, when the stack has it. */
export function longTermStore(placement: PlacementPlan, pis: readonly PiConfig[], options: MonitoringConfig): string | undefined {
    return storeAddress(placement, pis, METRICS_STORE, options);
}

/** Where every Pi's journal goes: VictoriaLogs where placement put it, when the stack has it. */
export function logShipping(placement: PlacementPlan, pis: readonly PiConfig[], options: MonitoringConfig): LogShipping | undefined {
    const pi = storePi(placement, pis, LOG_STORE, options);
    return pi && options.victoriaLogs && { url: journalUploadUrl(pi.address, options.victoriaLogs) };
}

/** Prometheus's on-disk cap: an SD card gets less, it wears. */
export function retentionSizeMb(pi: PiConfig, options: MonitoringConfig): number {
    return options.retentionSizeMb ?? (pi.storage === "ssd" ? 4096 : 1024);
}

/**
 * The Monitoring tier's workloads: the central services, one replica of each on each Pi
 * {@link monitoringPis} chooses (`previous`: the Pis Prometheus's replicas ran on before, in
 * replica order), Alertmanager's replicas a cluster; exporters on every Pi.
 */
export function monitoringWorkloads(pis: readonly PiConfig[], options: MonitoringConfig, previous: readonly string[] = []): Workload[] {
    const homes = monitoringPis(pis, options, previous);
    const piNamed = (name: string) => homes.find((h) => h.name === name)!;
    const everyPi = pis.map((p) => p.name);
    const pinnedBecause = monitoringPinReason(pis, options, previous, homes);
    const clusterPeers = homes.map((h) => `${h.address}:${MONITORING_PORTS.alertmanagerCluster}`);
    // What the three central services share: the monitoring Pis and network, one port serving both
    // the UI/API and /metrics, and an HTTP healthcheck on it.
    const central = (name: "prometheus" | "alertmanager" | "grafana", healthPath: string, startPeriodSeconds: number) => ({
        name,
        component: "monitoring",
        configKey: "picloud:tiers.monitoring",
        pinnedTo: homes.map((h) => h.name),
        pinnedBecause,
        networks: ["monitoring"],
        ports: [{ container: MONITORING_PORTS[name], host: MONITORING_PORTS[name] }],
        healthcheck: { command: ["wget", "-qO-", `http://localhost:${MONITORING_PORTS[name]}${healthPath}`], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds },
        metrics: { port: MONITORING_PORTS[name], path: "/metrics" },
        logLabels: { tier: "monitoring", service: name },
    });
    return [
        {
            ...central("prometheus", "/-/healthy", 30),
            image: MONITORING_IMAGES.prometheus,
            memoryMb: 512,
            cpus: 1,
            command: [
                `--config.file=${IN_CONTAINER.prometheusConfig}/prometheus.yml`,
                "--storage.tsdb.path=/prometheus",
                `--storage.tsdb.retention.time=${options.retentionDays}d`,
                "--web.enable-lifecycle",
            ],
            // Each replica's cap is its own Pi's: an SD card gets less.
            perReplica: (self) => ({ command: [`--storage.tsdb.retention.size=${retentionSizeMb(piNamed(self.pi), options)}MB`] }),
            volumes: [
                { hostPath: MONITORING_DIRS.prometheusConfig, containerPath: IN_CONTAINER.prometheusConfig, readOnly: true },
                { hostPath: MONITORING_DIRS.prometheusData, containerPath: "/prometheus" },
            ],
        },
        {
            ...central("alertmanager", "/-/healthy", 10),
            ports: [
                { container: MONITORING_PORTS.alertmanager, host: MONITORING_PORTS.alertmanager },
                // The cluster's gossip, on both protocols, when there are peers to gossip with.
                ...(homes.length > 1
                    ? (["tcp", "udp"] as const).map((protocol) => ({ container: MONITORING_PORTS.alertmanagerCluster, host: MONITORING_PORTS.alertmanagerCluster, protocol }))
                    : []),
            ],
            image: MONITORING_IMAGES.alertmanager,
            memoryMb: 64,
            cpus: 0.25,
            command: [`--config.file=${IN_CONTAINER.alertmanagerConfig}/alertmanager.yml`, "--storage.path=/alertmanager"],
            // Its peers reach it at its Pi's address, not the container's.
            perReplica: (self) => ({ command: alertmanagerClusterFlags(`${piNamed(self.pi).address}:${MONITORING_PORTS.alertmanagerCluster}`, clusterPeers) }),
            volumes: [
                { hostPath: MONITORING_DIRS.alertmanagerConfig, containerPath: IN_CONTAINER.alertmanagerConfig, readOnly: true },
                { hostPath: MONITORING_DIRS.alertmanagerData, containerPath: "/alertmanager" },
            ],
        },
        {
            ...central("grafana", "/api/health", 30),
            image: MONITORING_IMAGES.grafana,
            memoryMb: 256,
            // A UI: the queries behind its panels run in Prometheus. A quarter core, so a replica fits beside a data Pi's members.
            cpus: 0.25,
            env: {
                GF_PATHS_PROVISIONING: "/etc/grafana/provisioning",
                GF_ANALYTICS_REPORTING_ENABLED: "false",
                GF_USERS_ALLOW_SIGN_UP: "false",
                GF_SECURITY_ADMIN_PASSWORD__FILE: GRAFANA_ADMIN_PASSWORD_FILE.inContainer,
                // Grafana has no VictoriaLogs datasource of its own: the plugin comes at its start.
                ...(options.victoriaLogs && { GF_INSTALL_PLUGINS: `${GRAFANA_VICTORIA_LOGS_PLUGIN.id} ${GRAFANA_VICTORIA_LOGS_PLUGIN.version}` }),
            },
            volumes: [
                { hostPath: GRAFANA_ADMIN_PASSWORD_FILE.onPi, containerPath: GRAFANA_ADMIN_PASSWORD_FILE.inContainer, readOnly: true },
                { hostPath: MONITORING_DIRS.grafanaProvisioning, containerPath: "/etc/grafana/provisioning", readOnly: true },
                { hostPath: MONITORING_DIRS.dashboards, containerPath: "/var/lib/grafana-dashboards", readOnly: true },
                { hostPath: MONITORING_DIRS.grafanaData, containerPath: "/var/lib/grafana" },
            ],
        },
        {
            name: "node-exporter",
            component: "monitoring",
            configKey: "picloud:tiers.monitoring",
            image: MONITORING_IMAGES.nodeExporter,
            pinnedTo: everyPi,
            hostAgent: true,
            memoryMb: 48,
            cpus: 0.1,
            hostNetwork: true,
            command: ["--path.rootfs=/host", `--web.listen-address=:${MONITORING_PORTS.nodeExporter}`, "--collector.textfile.directory=/textfile"],
            ports: [{ container: MONITORING_PORTS.nodeExporter, host: MONITORING_PORTS.nodeExporter }],
            volumes: [
                { hostPath: "/", containerPath: "/host", readOnly: true },
                // Docker creates the folder on first start, so every Pi has one, empty or not.
                { hostPath: NODE_EXPORTER_TEXTFILE_DIR, containerPath: "/textfile", readOnly: true },
            ],
            metrics: { port: MONITORING_PORTS.nodeExporter, path: "/metrics" },
            logLabels: { tier: "monitoring", service: "node-exporter" },
        },
        {
            name: "cadvisor",
            component: "monitoring",
            configKey: "picloud:tiers.monitoring",
            image: MONITORING_IMAGES.cadvisor,
            pinnedTo: everyPi,
            hostAgent: true,
            memoryMb: 128,
            cpus: 0.25,
            privileged: true,
            command: ["--docker_only=true", "--housekeeping_interval=30s"],
            ports: [{ container: 8080, host: MONITORING_PORTS.cadvisor }],
            volumes: [
                { hostPath: "/", containerPath: "/rootfs", readOnly: true },
                { hostPath: "/var/run", containerPath: "/var/run", readOnly: true },
                { hostPath: "/sys", containerPath: "/sys", readOnly: true },
                { hostPath: "/var/lib/docker", containerPath: "/var/lib/docker", readOnly: true },
            ],
            metrics: { port: 8080, path: "/metrics" },
            logLabels: { tier: "monitoring", service: "cadvisor" },
        },
        ...MONITORING_STORES.flatMap((store) => store.workload(options) ?? []),
    ];
}

/**
 * The Monitoring tier's own monitoring: its services on every monitoring Pi, the container metrics,
 * a dead man's switch; with two replicas, each watches the other and the Alertmanager cluster.
 */
export function monitoringTierSpec(pis: readonly PiConfig[], options: MonitoringConfig, homes: readonly PiConfig[]): MonitoringSpec {
    const on = (port: number) => homes.map((h) => `${h.address}:${port}`);
    // Prometheus scrapes every replica through a static job of that name in prometheus.yml;
    // declaring it here too would scrape them twice. Its target-down rule stays: a replica sees the
    // other die (and the Watchdog covers both).
    const targets: ScrapeTarget[] = [
        { job: "alertmanager", targets: on(MONITORING_PORTS.alertmanager) },
        { job: "grafana", targets: on(MONITORING_PORTS.grafana) },
        { job: "cadvisor", targets: pis.map((p) => `${p.address}:${MONITORING_PORTS.cadvisor}`), bulk: true },
    ];
    const storageCap = homes.map((h) => `prometheus_tsdb_storage_blocks_bytes{job="prometheus",instance="${h.address}:${MONITORING_PORTS.prometheus}"} / (${retentionSizeMb(h, options)} * 1024 * 1024) > 0.9`);
    const cluster: AlertRule[] =
        homes.length < 2
            ? []
            : [
                  {
                      alert: "AlertmanagerClusterDegraded",
                      expr: `alertmanager_cluster_members{job="alertmanager"} < ${homes.length}`,
                      for: "5m",
                      severity: "critical",
                      summary: "Alertmanager {{ $labels.instance }} sees fewer cluster peers than there are",
                      description: `The peers cannot gossip (tcp and udp ${MONITORING_PORTS.alertmanagerCluster} between the monitoring Pis): each still notifies, but silences are not shared and notifications may go out twice. If a peer is down, its own alert says so.`,
                  },
              ];
    return {
        component: "monitoring",
        scrapeTargets: targets,
        alertRules: [
            targetDownRule({ job: "prometheus", targets: [] }),
            ...targets.map((t) => targetDownRule(t)),
            ...cluster,
            {
                alert: WATCHDOG_ALERT,
                expr: "vector(1)",
                severity: "info",
                summary: "Alerting pipeline is alive",
                description: "Always firing. Routed to the dead man's switch, which alarms when these notifications stop.",
            },
            {
                alert: "PrometheusRuleEvaluationFailures",
                expr: "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
                for: "5m",
                severity: "critical",
                summary: "Prometheus fails to evaluate rules",
                description: "Some alert rules cannot be evaluated, so their alerts can never fire. Check the rule files of the component named in the rule group.",
            },
            {
                alert: "AlertmanagerNotificationsFailing",
                expr: "rate(alertmanager_notifications_failed_total[5m]) > 0",
                for: "10m",
                severity: "critical",
                summary: "Alertmanager cannot deliver notifications to {{ $labels.integration }}",
                description: "Alerts fire but nobody hears them. Check the receiver's URL or SMTP settings.",
            },
            {
                alert: "PrometheusStorageNearlyFull",
                expr: storageCap.join(" or "),
                for: "30m",
                severity: "warning",
                summary: "Prometheus {{ $labels.instance }}'s storage is above 90% of its cap",
                description: "Old data is being dropped early; raise picloud:tiers.monitoring.retentionSizeMb or move monitoring to an SSD Pi.",
            },
        ],
        dashboard: {
            uid: "picloud-monitoring",
            title: "picloud / monitoring",
            panels: [
                { title: "Targets up", expr: "sum by (job) (up)", kind: "stat" },
                { title: "Samples ingested per second", expr: "rate(prometheus_tsdb_head_samples_appended_total[5m])" },
                { title: "Storage used", expr: "prometheus_tsdb_storage_blocks_bytes", unit: "bytes" },
                { title: "Alerts firing", expr: 'sum by (alertname) (ALERTS{alertstate="firing"})' },
            ],
        },
        logLabels: { tier: "monitoring" },
    };
}

/**
 * A Pi's own monitoring, attached to its PiHost: node_exporter and the host's golden signals;
 * with a log store (`logs`), whether its journal still reaches it.
 */
export function hostSpec(pi: PiConfig, logs?: VictoriaLogsConfig): MonitoringSpec {
    const target: ScrapeTarget = { job: `host-${pi.name}`, targets: [`${pi.address}:${MONITORING_PORTS.nodeExporter}`], labels: { pi: pi.name, model: pi.model, storage: pi.storage } };
    const sel = `job="${target.job}"`;
    return {
        component: `host-${pi.name}`,
        scrapeTargets: [target],
        alertRules: [
            targetDownRule(target),
            {
                alert: "HostMemoryLow",
                expr: `node_memory_MemAvailable_bytes{${sel}} / node_memory_MemTotal_bytes{${sel}} < 0.1`,
                for: "5m",
                severity: "warning",
                summary: `${pi.name} has less than 10% memory available`,
                description: "Workloads on this Pi risk the OOM killer; move replicas or lower their limits.",
            },
            {
                alert: "HostDiskAlmostFull",
                expr: `node_filesystem_avail_bytes{${sel},mountpoint="/",fstype!="tmpfs"} / node_filesystem_size_bytes{${sel},mountpoint="/",fstype!="tmpfs"} < 0.1`,
                for: "10m",
                severity: "warning",
                summary: `${pi.name}'s root filesystem is more than 90% full`,
                description: "Free space on the Pi: prune images (docker image prune) or move data to an SSD.",
            },
            {
                alert: "HostCpuSaturated",
                expr: `1 - avg(rate(node_cpu_seconds_total{${sel},mode="idle"}[5m])) > 0.9`,
                for: "15m",
                severity: "warning",
                summary: `${pi.name}'s CPUs are more than 90% busy`,
                description: "Sustained CPU saturation; a Pi also throttles when hot. Spread replicas wider.",
            },
            {
                alert: "HostTooHot",
                expr: `max(node_hwmon_temp_celsius{${sel}}) > 80`,
                for: "5m",
                severity: "warning",
                summary: `${pi.name} is above 80 °C and throttles`,
                description: "Check the Pi's cooling (fan, heatsink, case airflow).",
            },
            {
                alert: "HostClockNotSynchronised",
                expr: `min_over_time(node_timex_sync_status{${sel}}[10m]) == 0`,
                for: "10m",
                severity: "warning",
                summary: `${pi.name}'s clock is not synchronised`,
                description: "A Pi has no RTC battery by default: without NTP its clock drifts, and TLS and logs suffer. Check systemd-timesyncd.",
            },
            ...(logs ? [hostLogsStoppedRule(pi, sel, logs)] : []),
        ],
        dashboard: {
            uid: `picloud-host-${pi.name}`,
            title: `picloud / host ${pi.name}`,
            panels: [
                { title: "CPU busy", expr: `1 - avg(rate(node_cpu_seconds_total{${sel},mode="idle"}[5m]))`, unit: "percentunit" },
                { title: "Memory available", expr: `node_memory_MemAvailable_bytes{${sel}}`, unit: "bytes" },
                { title: "Root filesystem free", expr: `node_filesystem_avail_bytes{${sel},mountpoint="/"}`, unit: "bytes" },
                { title: "Temperature", expr: `max(node_hwmon_temp_celsius{${sel}})`, unit: "celsius" },
            ],
        },
        logLabels: { pi: pi.name, source: "journald" },
    };
}

/**
 * A Pi whose logs stopped arriving: its heartbeat logs a line every minute, so an upload that has
 * not got through for `silentMinutes` means systemd-journal-upload is stuck or cannot reach
 * VictoriaLogs. Its journal lives in RAM: what does not fit there by the time it is fixed is lost.
 */
function hostLogsStoppedRule(pi: PiConfig, sel: string, logs: VictoriaLogsConfig): AlertRule {
    return {
        alert: "HostLogsStopped",
        expr: `time() - ${JOURNAL_UPLOAD_METRIC}{${sel}} > ${logs.silentMinutes * 60}`,
        for: "1m",
        severity: "warning",
        summary: `${pi.name}'s logs stopped arriving at VictoriaLogs`,
        description: `No upload from ${pi.name} has been accepted for ${logs.silentMinutes} minutes (picloud:tiers.monitoring.victoriaLogs.silentMinutes). 'systemctl status systemd-journal-upload' and 'journalctl -u systemd-journal-upload' on ${pi.name} say why. Its journal is in RAM (picloud:bootstrap.journalRuntimeMaxMb): entries that do not fit there until it is fixed are lost.`,
    };
}
