// The picloud program. Pulumi runs this file for `pulumi preview` and `pulumi up` (see Pulumi.yaml);
// the offline plan runs the same program on the SDK's mock runtime.
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { picloudProgram } from "../components/cloud/program";

const stack = pulumi.getStack();
// Where each replica runs, as the offline plan wrote it; committed beside the stack's config.
const lockFile = path.join(__dirname, `placement.${stack}.json`);

export = picloudProgram({ lockFile, planCommand: `npm run plan -- --stack ${stack}` }).outputs;
