import { ResourceValidationPolicy } from "@pulumi/policy";
import { knownOrUndefined } from "./previewValues";
import { K8S_POD_SPEC_PATHS } from "./workloadTypes";

const REMOTE_IMAGE_TYPE = "docker:index/remoteImage:RemoteImage";
const DIGEST = /@sha256:[0-9a-f]{64}$/;

/**
 * ADVISORY. Every docker `RemoteImage` name and every Kubernetes workload container image is
 * pinned by digest (`…@sha256:<64 hex>`), so a redeploy runs the bytes that were tested, not
 * whatever a tag points at today. Says nothing about an image that is unknown (preview).
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
        const podSpecPath = K8S_POD_SPEC_PATHS[args.type];
        if (podSpecPath) images.push(...podImages(args.props, podSpecPath));
        for (const { where, image } of images) {
            if (typeof image === "string" && DIGEST.test(image)) continue;
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
