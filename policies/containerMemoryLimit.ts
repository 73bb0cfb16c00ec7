import { ResourceValidationPolicy } from "@pulumi/policy";
import { knownOrUndefined } from "./previewValues";

const CONTAINER_TYPE = "docker:index/container:Container";

/**
 * ADVISORY. Every docker container has a memory limit (`memory`, MB, > 0): on a Pi with a few GB
 * one runaway container otherwise starves everything else on it. Says nothing while `memory` is
 * unknown (preview).
 */
export const containerMemoryLimit: ResourceValidationPolicy = {
    name: "picloud-container-memory-limit",
    description: "Every docker container has a memory limit (memory > 0, in MB).",
    enforcementLevel: "advisory",
    validateResource: (args, reportViolation) => {
        if (args.type !== CONTAINER_TYPE) return;
        const read = knownOrUndefined(() => ({ present: "memory" in args.props, memory: args.props.memory as unknown }));
        if (read === undefined) return;
        if (typeof read.memory === "number" && read.memory > 0) return;
        const found = read.present ? `memory is ${JSON.stringify(read.memory)}` : "memory is not set";
        reportViolation(`${args.urn}: ${found}; set memory (MB) to what the container needs, e.g. memory: 256`);
    },
};
