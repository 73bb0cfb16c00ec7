import { ResourceValidationPolicy } from "@pulumi/policy";
import { knownOrUndefined } from "./previewValues";
import { K8S_POD_SPEC_PATHS } from "./workloadTypes";

const REMOTE_IMAGE_TYPE = "docker:index/remoteImage:RemoteImage";
const CONTAINER_TYPE = "docker:index/container:Container";
const SERVICE_TYPE = "docker:index/service:Service";
const DIGEST = /@sha256:[0-9a-f]{64}$/;
/** An image ID (what `RemoteImage.imageId` gives a container): content-addressed, so as pinned as a digest. */
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/**
 * ADVISORY. Every docker `RemoteImage` name, every docker container's and service's image and
 * every Kubernetes workload container image is pinned by digest (`…@sha256:<64 hex>`; a container
 * may also name an image ID, `sha256:<64 hex>`), so a redeploy runs the bytes that were tested,
 * not whatever a tag points at today. Says nothing about an image that is unknown (preview).
 */
export const imagePinnedByDigest: ResourceValidationPolicy = {
    name: "picloud-image-pinned-by-digest",
    description: "Every image is pinned by digest (name@sha256:<64 hex digits>).",
    enforcementLevel: "advisory",
    validateResource: (args, reportViolation) => {
        const images: { where: string; image: unknown }[] = [];
        if (args.type === REMOTE_IMAGE_TYPE) {
            const name = knownOrUndefined(() => args.props.name as unknown);
            if (name !== undefined) images.push({ where: "name", image: name });
        }
        if (args.type === CONTAINER_TYPE) {
            const image = knownOrUndefined(() => args.props.image as unknown);
            if (image !== undefined) images.push({ where: "image", image });
        }
        if (args.type === SERVICE_TYPE) {
            const image = knownOrUndefined(() => (args.props.taskSpec as { containerSpec?: { image?: unknown } } | undefined)?.containerSpec?.image);
            if (image !== undefined) images.push({ where: "taskSpec.containerSpec.image", image });
        }
        const podSpecPath = K8S_POD_SPEC_PATHS[args.type];
        if (podSpecPath) images.push(...podImages(args.props, podSpecPath));
        for (const { where, image } of images) {
            if (typeof image === "string" && (DIGEST.test(image) || (!args.type.startsWith("kubernetes:") && args.type !== REMOTE_IMAGE_TYPE && IMAGE_ID.test(image)))) continue;
            reportViolation(`${args.urn}: ${where} ${JSON.stringify(image)} is not pinned by digest; use <image>@sha256:<digest>`);
        }
    },
};

/** The known container images of a pod spec, each with where it is (`spec.…containers[0].image`). */
function podImages(props: Record<string, unknown>, podSpecPath: readonly string[]): { where: string; image: unknown }[] {
    const podSpec = knownOrUndefined(() => podSpecPath.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], props)) as
        | Record<string, unknown>
        | undefined;
    if (!podSpec) return [];
    const found: { where: string; image: unknown }[] = [];
    for (const list of ["initContainers", "containers"]) {
        const containers = knownOrUndefined(() => podSpec[list]);
        if (!Array.isArray(containers)) continue;
        containers.forEach((_, i) => {
            const image = knownOrUndefined(() => (containers[i] as Record<string, unknown>).image);
            if (image !== undefined) found.push({ where: `${podSpecPath.join(".")}.${list}[${i}].image`, image });
        });
    }
    return found;
}
