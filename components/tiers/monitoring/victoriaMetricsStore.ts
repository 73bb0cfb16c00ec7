import * as pulumi from "@pulumi/pulumi";
import { TierArgs, TierComponent, placedIdentities } from "../tierComponent";
import type { VictoriaMetricsConfig } from "./config";
import { victoriaMetricsSpec, victoriaMetricsWorkload } from "./victoriaMetrics";

/** Arguments of {@link VictoriaMetricsStore}. */
export interface VictoriaMetricsStoreArgs extends TierArgs {
    /** Options under `picloud:tiers.monitoring.victoriaMetrics`. */
    readonly options: VictoriaMetricsConfig;
}

/**
 * The Monitoring tier's long-term metrics store: VictoriaMetrics where placement put it, watched
 * through the tier's own endpoint. Prometheus's remote_write and Grafana's default datasource
 * point at it (the Monitoring tier renders both).
 */
export class VictoriaMetricsStore extends TierComponent {
    /** Its HTTP API: remote_write, pushes and PromQL queries. */
    readonly url: string;

    constructor(name: string, args: VictoriaMetricsStoreArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:monitoring:VictoriaMetrics", name, opts);
        const workload = victoriaMetricsWorkload(args.options);
        this.runWorkloads([workload], args);
        const [self] = placedIdentities(workload, args);
        this.url = `http://${self.address}:${args.options.httpPort}`;
        this.attach(victoriaMetricsSpec(args.options, self.address), args.monitoring);
        this.registerOutputs({ url: this.url });
    }
}
