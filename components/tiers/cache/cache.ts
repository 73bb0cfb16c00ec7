import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PiHost } from "../../host/piHost";
import { shipFile } from "../../host/remoteFiles";
import { contentHash } from "../../renderers/contentHash";
import type { ClientEnvironment } from "../../runtime/workload";
import { TierArgs, TierComponent, hostOf, placedIdentities, replicaEndpoints } from "../tierComponent";
import type { CacheConfig } from "./config";
import {
    CACHE_CONFIG_DIR,
    PASSWORD_ENV,
    SENTINEL_EXPORTER_WORKLOAD,
    VALKEY_EXPORTER_WORKLOAD,
    cacheEnvironment,
    cacheExporterWorkload,
    cacheSpec,
    renderSentinelStart,
    renderValkeyConf,
    renderValkeyStart,
    sentinelAddresses,
    sentinelWorkload,
    valkeyWorkload,
} from "./valkey";

const KEY = "picloud:tiers.cache";

/** Arguments of {@link Cache}. */
export interface CacheArgs extends TierArgs {
    /** Options under `picloud:tiers.cache`. */
    readonly options: CacheConfig;
    /** Hosts by Pi name, for the files each node and Sentinel reads. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** The stack's name: each Sentinel's stable id derives from it. */
    readonly cloudName: string;
}

/**
 * The cache: Valkey nodes on distinct Pis, a primary and its replicas, three Sentinels (quorum
 * two) that fail over, and redis_exporter beside each. The password is made here, a Pulumi
 * secret, and reaches the containers as environment only; apps that set `cache: true` get it
 * with the Sentinels' addresses.
 */
export class Cache extends TierComponent {
    /** Where clients ask for the primary: every Sentinel's `host:port`. */
    readonly sentinels: string[];
    /** The password the nodes and the Sentinels take (a secret). */
    readonly password: pulumi.Output<string>;

    constructor(name: string, args: CacheArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:cache:Cache", name, opts);
        const { options } = args;
        const piHost = (pi: string) => hostOf(args.hosts, pi, KEY);
        this.password = new random.RandomPassword(`${name}-password`, { length: 40, special: false }, { parent: this }).result;
        const secretEnv = { [PASSWORD_ENV]: this.password };

        const sentinelIds = placedIdentities(sentinelWorkload(options, args.pis), args);
        const nodeIds = placedIdentities(valkeyWorkload(options, args.pis, sentinelIds), args);
        this.sentinels = sentinelAddresses(sentinelIds, options);
        const sentinelScript = (index: number) => renderSentinelStart({ self: sentinelIds[index], nodes: nodeIds, sentinels: sentinelIds, options, cloud: args.cloudName });
        const file = (pi: string, fileName: string, text: string) =>
            shipFile(`${name}-${pi}-${fileName.replace(/\./g, "-")}`, { connection: piHost(pi).connection, text, remotePath: `${CACHE_CONFIG_DIR}/${fileName}`, owner: "root" }, { parent: this, dependsOn: [piHost(pi).ready] });
        const nodeFiles = nodeIds.flatMap((self) => [
            file(self.pi, "valkey.conf", renderValkeyConf(self, nodeIds.length, options)),
            file(self.pi, "valkey-start.sh", renderValkeyStart({ self, nodes: nodeIds, sentinels: sentinelIds, options, configFile: "/etc/picloud/valkey.conf" })),
        ]);
        const sentinelFiles = sentinelIds.map((self) => file(self.pi, "sentinel-start.sh", sentinelScript(self.index)));

        this.runWorkloads(
            [
                valkeyWorkload(options, args.pis, sentinelIds, secretEnv),
                sentinelWorkload(options, args.pis, secretEnv, (self) => contentHash(sentinelScript(self.index))),
            ],
            args,
            [...nodeFiles, ...sentinelFiles],
        );
        this.runWorkloads([cacheExporterWorkload("valkey", options, args.pis, nodeIds, { REDIS_PASSWORD: this.password }), cacheExporterWorkload("sentinel", options, args.pis, sentinelIds, { REDIS_PASSWORD: this.password })], args);

        this.attach(
            cacheSpec(options, nodeIds.length, sentinelIds.length, replicaEndpoints(VALKEY_EXPORTER_WORKLOAD, options.exporterPort, args), replicaEndpoints(SENTINEL_EXPORTER_WORKLOAD, options.sentinelExporterPort, args)),
            args.monitoring,
        );
        this.registerOutputs({ sentinels: this.sentinels, nodes: nodeIds.map((m) => `${m.address}:${options.port}`) });
    }

    /** What an app that sets `cache: true` gets. */
    clientEnvironment(): ClientEnvironment {
        return cacheEnvironment(this.sentinels, this.password);
    }
}
