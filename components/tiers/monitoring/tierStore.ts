import * as pulumi from "@pulumi/pulumi";
import type { MonitoringSpec } from "../../monitoring/contract";
import type { ReplicaIdentity, Workload } from "../../runtime/workload";
import { TierArgs, TierComponent, placedIdentities } from "../tierComponent";

/** Arguments of {@link TierStore}. */
export interface TierStoreArgs extends TierArgs {
    /** Its workload (one replica), as the tier's store list makes it. */
    readonly workload: Workload;
    /** Its port: ingestion, queries and metrics. */
    readonly port: number;
    /** Its monitoring, for its address. */
    readonly spec: (address: string) => MonitoringSpec;
    /** Names of the resources it gets only once a later tier exists (its backup, given this store's name): its monitoring covers them. */
    readonly later?: (store: string) => readonly string[];
}

/**
 * One of the Monitoring tier's stores (VictoriaMetrics, VictoriaLogs: `type` says which) where
 * placement put it, watched through the tier's own endpoint. What feeds it and reads it (remote_write,
 * journal uploads, Grafana's datasources) the tier and the hosts render.
 */
export class TierStore extends TierComponent {
    /** Its HTTP API. */
    readonly url: string;
    /** Its one replica: who it is and where it runs. */
    readonly self: ReplicaIdentity;
    /** Its component's name: what it creates later (its backup) is named after it. */
    readonly storeName: string;

    constructor(type: string, name: string, args: TierStoreArgs, opts?: pulumi.ComponentResourceOptions) {
        super(type, name, opts);
        this.storeName = name;
        this.runWorkloads([args.workload], args);
        const [self] = placedIdentities(args.workload, args);
        this.self = self;
        this.url = `http://${self.address}:${args.port}`;
        this.attach(args.spec(self.address), args.monitoring, undefined, args.later?.(name) ?? []);
        this.registerOutputs({ url: this.url });
    }
}
