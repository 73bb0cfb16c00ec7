// The policy pack the Pulumi CLI runs: `pulumi preview --policy-pack policies`. Only bundles; the
// PolicyPack constructor starts the analyzer's gRPC server, so nothing else may import this file.
import { PolicyPack } from "@pulumi/policy";
import { allPolicies, PACK_NAME } from "./all";

new PolicyPack(PACK_NAME, { policies: [...allPolicies] });
