import * as pulumi from "@pulumi/pulumi";

/** One resource registration as the engine would see it. */
export interface RecordedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    /** URN of the parent, "" for none. */
    readonly parent: string;
    readonly custom: boolean;
    /** Provider reference (`urn::id`), "" for the default provider. */
    readonly provider: string;
    readonly dependencies: readonly string[];
    /** Replaced by deleting first, then creating (same name, same host ports). */
    readonly deleteBeforeReplace: boolean;
    /** Earlier names it carries over (aliases), by name (or URN where the alias gives one). */
    readonly aliases?: readonly string[];
    readonly inputs: Record<string, unknown>;
    /** Names of the inputs sent as Pulumi secrets (encrypted in state, masked in output). */
    readonly secretInputs: readonly string[];
    /** What a component registered as its outputs (`registerOutputs`), once it has. */
    outputs?: Record<string, unknown>;
}

/** What a mocked RandomPassword yields, so that what consumes it is exercised as under the engine. */
export const GENERATED_PLACEHOLDER = "[generated when the stack is deployed]";

/** Options of {@link installMockRuntime}. */
export interface MockRuntimeOptions {
    readonly project: string;
    readonly stack: string;
    /** Config as Pulumi passes it to a program: full key → string value. */
    readonly config: Record<string, string>;
    /** Full keys of `config` that are secrets. */
    readonly secretKeys: readonly string[];
    /** Simulated time each custom resource's create takes, ms (benchmarks); default 0. Components cost nothing, as under the engine. */
    readonly delayMs?: number;
}

/** What a mocked run registered, in registration order. */
export interface MockRun {
    readonly resources: RecordedResource[];
    /** Waits until every outstanding resource registration has finished. */
    settle(): Promise<void>;
}

const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks") as { MockMonitor: new (mocks: pulumi.runtime.Mocks) => MockMonitorLike };
interface MockMonitorLike {
    registerResource(req: RegisterRequest, callback: (err: unknown, res: unknown) => void): Promise<void>;
    registerResourceOutputs(req: { getUrn(): string; getOutputs(): unknown }, callback: (err: unknown, res: unknown) => void): void;
}
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getProvider(): string;
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
    getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
    getAliasesList(): { getUrn(): string; getSpec(): { getName(): string } | undefined }[];
}

// How the SDK marks a serialised secret: { [SPECIAL_SIG_KEY]: SECRET_SIG, value }.
const SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const isSecret = (v: unknown) => typeof v === "object" && v !== null && (v as Record<string, unknown>)[SPECIAL_SIG_KEY] === SECRET_SIG;

// Internal to the SDK, but the documented way for a program host to drain outstanding RPCs.
const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void>; setMockOptions(...args: unknown[]): void };
const state = require("@pulumi/pulumi/runtime/state") as { getStore(): Record<string, unknown> };
const rpc = require("@pulumi/pulumi/runtime/rpc") as { deserializeProperties(o: unknown): Record<string, unknown> };

/** Plain values with every secret wrapper taken off (which inputs were secret is recorded apart). */
function unwrapSecrets(value: unknown): unknown {
    if (isSecret(value)) return unwrapSecrets((value as { value: unknown }).value);
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

/**
 * Installs the SDK's mock runtime with a monitor that records every registration with its parent,
 * provider and dependencies (the SDK's own mock hides parents). Resources "create" by echoing their
 * inputs as outputs, after `delayMs`. The SDK's mock monitor computes URNs exactly as the engine does.
 */
export async function installMockRuntime(options: MockRuntimeOptions): Promise<MockRun> {
    const delay = options.delayMs ?? 0;
    const wait = () => (delay > 0 ? new Promise<void>((r) => setTimeout(r, delay)) : undefined);
    const mocks: pulumi.runtime.Mocks = {
        newResource: async (args) => {
            if (args.custom) await wait();
            // A generated password has a value once created; stand one in, as the engine would.
            const generated = args.type === "random:index/randomPassword:RandomPassword" ? { result: GENERATED_PLACEHOLDER } : {};
            return { id: `${args.name}-id`, state: { ...args.inputs, ...generated } };
        },
        call: async (args) => args.inputs,
    };
    const resources: RecordedResource[] = [];

    class RecordingMonitor extends MockMonitor {
        async registerResource(req: RegisterRequest, callback: (err: unknown, res: unknown) => void): Promise<void> {
            return super.registerResource(req, (err, res) => {
                if (!err && res) {
                    const urn = (res as { getUrn(): string }).getUrn();
                    resources.push({
                        urn,
                        type: req.getType(),
                        name: req.getName(),
                        parent: req.getParent(),
                        custom: req.getCustom(),
                        provider: req.getProvider(),
                        dependencies: req.getDependenciesList(),
                        deleteBeforeReplace: req.getDeletebeforereplace(),
                        aliases: req.getAliasesList().flatMap((a) => a.getSpec()?.getName() || a.getUrn() || []),
                        inputs: unwrapSecrets(rpc.deserializeProperties(req.getObject())) as Record<string, unknown>,
                        secretInputs: Object.entries(req.getObject()?.toJavaScript() ?? {}).flatMap(([k, v]) => (isSecret(v) ? [k] : [])),
                    });
                }
                callback(err, res);
            });
        }

        registerResourceOutputs(req: { getUrn(): string; getOutputs(): unknown }, callback: (err: unknown, res: unknown) => void): void {
            const resource = resources.find((r) => r.urn === req.getUrn());
            if (resource) resource.outputs = rpc.deserializeProperties(req.getOutputs());
            super.registerResourceOutputs(req, callback);
        }
    }

    pulumi.runtime.setAllConfig(options.config, [...options.secretKeys]);
    await pulumi.runtime.setMocks(mocks, options.project, options.stack, true);
    // setMocks turns on the features a mock monitor has (secrets among them); swapping in the
    // recording monitor resets them, so they are carried over: a secret must stay a secret here too.
    const store = state.getStore();
    const features = Object.fromEntries(Object.entries(store).filter(([k]) => k.startsWith("supports")));
    settings.setMockOptions(new RecordingMonitor(mocks), options.project, options.stack, true);
    Object.assign(store, features);
    return { resources, settle: () => settings.waitForRPCs() };
}
