import { appSchema } from "../tiers/apps/config";
import { blobSchema } from "../tiers/blob/config";
import { busSchema } from "../tiers/bus/config";
import { cacheSchema } from "../tiers/cache/config";
import { databaseSchema } from "../tiers/database/config";
import { functionsSchema } from "../tiers/functions/config";
import { loadBalancerSchema } from "../tiers/loadBalancer/config";
import { monitoringSchema } from "../tiers/monitoring/config";
import { registrySchema } from "../tiers/serviceRegistry/config";
import { dnsLabel, record, strictObject } from "./fields";

/**
 * Options of each tier under `picloud:tiers`, each tier's own part from its folder's config.ts. A
 * tier is enabled by giving its key; an unknown key is an error that lists the tiers this version
 * of picloud has.
 */

/** All tier options. */
export const tiersSchema = strictObject(
    {
        /** Monitoring: always built, with these defaults unless given. */
        monitoring: monitoringSchema.prefault({}),
        /** Application servers: user images with replicas spread over the Pis. */
        apps: record("an app name: a lowercase DNS label (a-z, 0-9, '-', starting with a letter)", dnsLabel("an app name"), appSchema, "a map of app name to app options").optional(),
        /** The load balancer in front of the apps and functions. */
        loadBalancer: loadBalancerSchema.optional(),
        /** Functions (lambda): faasd on one Pi. */
        functions: functionsSchema.optional(),
        /** The service registry: etcd, three members on SSD Pis (one on a stack of fewer than three). */
        registry: registrySchema.optional(),
        /** Blob storage: Garage, S3-compatible, on every SSD Pi (min(3, nodes) copies of each object). */
        blob: blobSchema.optional(),
        /** The database: PostgreSQL 17 with Patroni on the registry's etcd, a primary and up to four standbys. */
        database: databaseSchema.optional(),
        /** The cache: Valkey, a primary and replicas on distinct Pis, failed over by three Sentinels. */
        cache: cacheSchema.optional(),
        /** The message bus: NATS with JetStream, three nodes where there are three Pis or more, streams replicated to min(3, nodes). */
        bus: busSchema.optional(),
    },
    "tiers",
);
