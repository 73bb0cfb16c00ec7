/**
 * What runs a workload, shared by the policies that look at workloads. Types, plus for commands
 * their text: known in preview wherever it is plain.
 */

/** The type of picloud's monitoring attachments; a copy of the components' `ATTACHMENT_TYPE` (tested equal) so the pack bundles on its own. */
export const ATTACHMENT_TYPE = "picloud:monitoring:Attachment";

/** The root resource every top-level resource is parented to. */
export const STACK_TYPE = "pulumi:pulumi:Stack";

/** Docker resources that run containers. */
export const DOCKER_WORKLOAD_TYPES: readonly string[] = ["docker:index/container:Container", "docker:index/service:Service"];

const POD_TEMPLATE = ["spec", "template", "spec"];
const CRON_POD_TEMPLATE = ["spec", "jobTemplate", "spec", "template", "spec"];

/** Kubernetes kinds that run pods, in every API version the provider has, each with the path to its pod spec; `…Patch` kinds too. */
const K8S_KINDS: readonly [string, readonly string[]][] = [
    ...["apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"].flatMap((group) =>
        ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"].map((kind): [string, readonly string[]] => [`${group}:${kind}`, POD_TEMPLATE]),
    ),
    ["batch/v1:Job", POD_TEMPLATE],
    ["batch/v1:CronJob", CRON_POD_TEMPLATE],
    ["batch/v1beta1:CronJob", CRON_POD_TEMPLATE],
    ["batch/v2alpha1:CronJob", CRON_POD_TEMPLATE],
    ["core/v1:Pod", ["spec"]],
    ["core/v1:ReplicationController", POD_TEMPLATE],
];

/**
 * Kubernetes workloads, each with the path to its pod spec: the policies that read container
 * images walk this path.
 */
export const K8S_POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
    K8S_KINDS.flatMap(([kind, path]) => [
        [`kubernetes:${kind}`, path],
        [`kubernetes:${kind}Patch`, path],
    ]),
);

/** Helm releases and charts: they run whatever their chart holds. */
export const HELM_TYPES: readonly string[] = ["kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v4:Chart"];

/** Every resource type that runs a workload by what it is, and so must be covered by monitoring. */
export const WORKLOAD_TYPES: ReadonlySet<string> = new Set([...DOCKER_WORKLOAD_TYPES, ...Object.keys(K8S_POD_SPEC_PATHS), ...HELM_TYPES]);

/** Remote commands: they run a workload when their text installs or starts a service. */
export const REMOTE_COMMAND_TYPE = "command:remote:Command";

/**
 * What installs or starts a long-running service on a host: systemd units, packages, containers,
 * k3s. Read off a command's `create`, `update` and `stdin` (the script it ships).
 */
export const INSTALLS_A_SERVICE =
    /\bsystemctl\s+(?:--now\s+)?(?:enable|start|restart|reload-or-restart)\b|\/etc\/systemd\/system\/|\bapt(?:-get)?\s+(?:-\S+\s+)*install\b|\bdocker\s+(?:run|create|compose\s+up|service\s+create|stack\s+deploy)\b|\bk3s\b|\bnohup\b/;
