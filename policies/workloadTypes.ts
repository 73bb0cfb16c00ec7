/**
 * Resource types that run a workload, shared by the policies that look at workloads. Types only:
 * they are known in preview, where props may not be.
 */

/** Docker resources that run containers. */
export const DOCKER_WORKLOAD_TYPES: readonly string[] = ["docker:index/container:Container", "docker:index/service:Service"];

/**
 * Kubernetes workloads, each with the path to its pod spec: the policies that read container
 * images walk this path.
 */
export const K8S_POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
    "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
    "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
    "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
    "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
    "kubernetes:batch/v1:Job": ["spec", "template", "spec"],
    "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
    "kubernetes:core/v1:Pod": ["spec"],
};

/** Every resource type that runs a workload and so must sit inside a monitored component. */
export const WORKLOAD_TYPES: ReadonlySet<string> = new Set([...DOCKER_WORKLOAD_TYPES, ...Object.keys(K8S_POD_SPEC_PATHS)]);
