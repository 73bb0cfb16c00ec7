// The picloud program. Pulumi runs this file for `pulumi preview` and `pulumi up` (see Pulumi.yaml);
// the offline plan runs the same program on the SDK's mock runtime.
import { picloudProgram } from "../components/cloud/program";

export = picloudProgram();
