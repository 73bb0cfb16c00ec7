import { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { containerMemoryLimit } from "./containerMemoryLimit";
import { imagePinnedByDigest } from "./imagePinnedByDigest";
import { monitoredComponents } from "./monitoredComponents";

/** Name of the picloud policy pack. */
export const PACK_NAME = "picloud";

/**
 * Every picloud policy. Importing this never starts the analyzer's gRPC server (only
 * `new PolicyPack` does, in `index.ts`), so tests and the offline plan use it freely.
 */
export const allPolicies: readonly (ResourceValidationPolicy | StackValidationPolicy)[] = [monitoredComponents, containerMemoryLimit, imagePinnedByDigest];
