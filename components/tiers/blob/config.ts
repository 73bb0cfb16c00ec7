import { z } from "zod";
import { bucketName, cores, dnsLabel, expected, hostname, intIn, port, record, strictObject } from "../../config/fields";

/** Blob storage's part of the config: `picloud:tiers.blob`. Pure: the config layer reads it (see test/layers.test.ts). */

/** What a key may do in a bucket. */
export const BUCKET_ACCESS = ["read", "write", "readwrite", "owner"] as const;
export type BucketAccess = (typeof BUCKET_ACCESS)[number];

/** Blob storage: Garage, S3-compatible, replicated over the Pis. */
export const blobSchema = strictObject(
    {
        /** Garage fsyncs its metadata on every write: nodes go to SSD Pis only, unless this is true; default false. */
        allowSdCard: z.boolean(expected("true or false")).default(false),
        /** Nodes; default three, or as many Pis as may carry one when fewer (SSD Pis, unless SD cards are allowed). More nodes add capacity; each object still has three copies. */
        nodes: intIn(1, 64).optional(),
        /** Space each node offers the cluster, GB (Garage's layout capacity); default 100. */
        capacityGb: intIn(1, 1_000_000, " of GB").default(100),
        /** Memory limit per node, MB; default 512. */
        memoryMb: intIn(128, 8192, " of MB").default(512),
        /** CPU limit per node in cores; default 0.5. */
        cpus: cores(0.1, 4).default(0.5),
        /** RAM a node may hold in blocks waiting for the network, MB (Garage's block_ram_buffer_max); default 64, well inside the memory limit. */
        ramBufferMb: intIn(8, 4096, " of MB").default(64),
        /** S3 API port on each node; default 3900. */
        s3Port: port().default(3900),
        /** RPC port between nodes; default 3901. */
        rpcPort: port().default(3901),
        /** Admin API port (metrics, health, the layout step); default 3903. */
        adminPort: port().default(3903),
        /** The S3 region clients sign with; default "garage". */
        region: z.string(expected("an S3 region name such as garage")).regex(/^[a-z0-9-]{1,32}$/, expected("an S3 region name such as garage")).default("garage"),
        /** Buckets, by name; each is created by the cluster's init step and never deleted by picloud. */
        buckets: record("a bucket name", bucketName(), strictObject({}, "bucket options").prefault({}), "a map of bucket name to bucket options").default({}),
        /** Access keys, by name: what each may do in which bucket. Their secrets are made by picloud and reach only the workloads that name them. */
        keys: record(
            "a key name: a lowercase DNS label",
            dnsLabel("a key name"),
            strictObject(
                {
                    buckets: record("a bucket name", bucketName(), z.enum(BUCKET_ACCESS, expected(`one of ${BUCKET_ACCESS.join(", ")}`)), "a map of bucket name to access"),
                },
                "key options",
            ),
            "a map of key name to key options",
        ).default({}),
        /** Serve S3 through the load balancer too, for requests with this Host header (path-style addressing). */
        loadBalancer: strictObject({ host: hostname() }, "the S3 route on the load balancer").optional(),
        /** Free disk below this share of a node's disk alerts; default 10 (%). */
        lowDiskPercent: intIn(1, 50, " of percent").default(10),
    },
    "blob storage",
);

/** Validated blob storage options. */
export type BlobConfig = z.output<typeof blobSchema>;
