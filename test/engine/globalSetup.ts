import hostsSetup from "../hosts/globalSetup";
import { commandProviderDir, policyPack, pulumiCli } from "./engine";

/**
 * Everything the engine lane needs, before any test's timeout starts: the host suite's tools and
 * images, the Pulumi CLI (built from its Go module into a cache outside the clone the first time,
 * its time printed), the command provider, and the policy pack's dependencies. A missing piece
 * fails here in one line that says what is missing and how to provide it.
 */
export default async function setup(): Promise<void> {
    commandProviderDir();
    pulumiCli();
    policyPack();
    await hostsSetup();
}
