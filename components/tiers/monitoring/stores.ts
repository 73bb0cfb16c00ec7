/**
 * What the Monitoring tier's stores share, pure: VictoriaMetrics and VictoriaLogs each run as one
 * replica on an SSD Pi (unless `allowSdCard`), their data folder kept with it, reached on one
 * HTTP port that serves ingestion, queries and their own metrics.
 */
import type { Workload } from "../../runtime/workload";
import type { StoreConfig } from "./config";

/** One of the stores. */
export interface StoreKind {
    /** Its component's Pulumi type. */
    readonly type: string;
    /** Its config key. */
    readonly key: string;
    /** Its workload's name (one replica: `<name>-0`) and the `service` of its log labels. */
    readonly workload: string;
    readonly image: string;
    /** Where its data folder is in the container. */
    readonly dataPath: string;
}

/** A store's workload: the shape both share, with its own command line and healthcheck. */
export function storeWorkload(kind: StoreKind, options: StoreConfig, own: Pick<Workload, "command" | "healthcheck">): Workload {
    return {
        name: kind.workload,
        // A component of its own: losing its Pi loses what it stores, not the alerting.
        component: `monitoring-${kind.workload}`,
        configKey: kind.key,
        image: kind.image,
        replicas: 1,
        ...(options.pi !== undefined && { pinnedTo: [options.pi], pinnedBecause: `${kind.key}.pi names ${options.pi}` }),
        memoryMb: options.memoryMb,
        cpus: options.cpus,
        ports: [{ container: options.httpPort, host: options.httpPort, configKey: `${kind.key}.httpPort` }],
        ...own,
        data: { containerPath: kind.dataPath },
        // It merges parts on disk the whole time: an SD card wears out under it and stalls it.
        ...(!options.allowSdCard && { hardwareFloor: { memoryMb: 0, ssd: true, configKey: `${kind.key}.allowSdCard` } }),
        metrics: { port: options.httpPort, path: "/metrics" },
        logLabels: { tier: "monitoring", service: kind.workload },
    };
}
