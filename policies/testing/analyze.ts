import type { EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import type { RecordedResource } from "../../components/plan/mockRuntime";
import { allPolicies, PACK_NAME } from "../all";

/** One violation as the analyzer reported it. */
export interface PolicyViolation {
    /** What is wrong, without the policy's description the analyzer puts in front. */
    readonly message: string;
    /** The resource concerned, when there is one. */
    readonly urn?: string;
    /** Usually the policy's; "advisory" when the analyzer could not run the policy on unknown values. */
    readonly enforcementLevel: EnforcementLevel;
}

/** What one policy said about a stack. */
export interface PolicyVerdict {
    readonly policy: string;
    readonly description: string;
    readonly enforcementLevel: EnforcementLevel;
    /** Empty when the stack complies. */
    readonly violations: readonly PolicyViolation[];
}

type AnyPolicy = ResourceValidationPolicy | StackValidationPolicy;

/**
 * Runs the real `@pulumi/policy` analyzer in-process over a recorded resource tree, as the engine
 * would at preview: stack policies through the `analyzeStack` RPC handler (once, all resources),
 * resource policies through the `analyze` handler (once per resource). Returns one verdict per
 * policy, in the order given.
 */
export async function analyzeStack(resources: readonly RecordedResource[], policies: readonly AnyPolicy[] = allPolicies): Promise<PolicyVerdict[]> {
    const levelOf = (p: AnyPolicy): EnforcementLevel => p.enforcementLevel ?? PACK_ENFORCEMENT_LEVEL;
    const active = policies.filter((p) => levelOf(p) !== "disabled");
    const stackPolicies = active.filter((p): p is StackValidationPolicy => "validateStack" in p);
    const resourcePolicies = active.filter((p): p is ResourceValidationPolicy => !("validateStack" in p));

    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const wire = new Map<string, unknown>();
    for (const r of resources) wire.set(r.urn, await toWireProperties(r.inputs));
    const ctx: RequestContext = { byUrn, wire };

    const reported: Reported[] = [];
    if (stackPolicies.length > 0) {
        const req = new analyzerProto.AnalyzeStackRequest();
        req.setResourcesList(resources.map((r) => analyzerResource(r, ctx)));
        const analyze = server.makeAnalyzeStackRpcFun(PACK_NAME, PACK_VERSION, PACK_ENFORCEMENT_LEVEL, stackPolicies);
        reported.push(...(await call(analyze, req)));
    }
    if (resourcePolicies.length > 0) {
        const analyze = server.makeAnalyzeRpcFun(PACK_NAME, PACK_VERSION, PACK_ENFORCEMENT_LEVEL, resourcePolicies);
        for (const r of resources) {
            // The engine attributes a resource policy's violation to the resource it analyzed.
            reported.push(...(await call(analyze, analyzeRequest(r, ctx))).map((d) => ({ ...d, urn: d.urn || r.urn })));
        }
    }

    return policies.map((p) => ({
        policy: p.name,
        description: p.description,
        enforcementLevel: levelOf(p),
        violations: reported
            .filter((d) => d.policy === p.name)
            .map((d) => ({
                message: d.message.startsWith(`${p.description}\n`) ? d.message.slice(p.description.length + 1) : d.message,
                ...(d.urn ? { urn: d.urn } : {}),
                enforcementLevel: d.enforcementLevel,
            })),
    }));
}

// --- The analyzer's internals, typed locally: `@pulumi/policy/server` ships an empty .d.ts. ---

const PACK_VERSION = "0.0.0-local";
/** What `new PolicyPack` defaults to when a policy sets no level. */
const PACK_ENFORCEMENT_LEVEL: EnforcementLevel = "advisory";

type RpcHandler = (call: { request: unknown }, callback: (err: unknown, res?: AnalyzeResponse) => void) => Promise<void>;
type MakeHandler = (packName: string, packVersion: string, packLevel: EnforcementLevel, policies: readonly AnyPolicy[]) => RpcHandler;
const server = require("@pulumi/policy/server") as { makeAnalyzeRpcFun: MakeHandler; makeAnalyzeStackRpcFun: MakeHandler };

/** A generated protobuf message, used only through its setters. */
type Message = Record<string, (value: unknown) => void>;
type MessageClass = new () => Message;
const analyzerProto = require("@pulumi/pulumi/proto/analyzer_pb") as Record<
    "AnalyzeRequest" | "AnalyzeStackRequest" | "AnalyzerResource" | "AnalyzerResourceOptions" | "AnalyzerProviderResource",
    MessageClass
>;
const { Struct } = require("google-protobuf/google/protobuf/struct_pb") as { Struct: { fromJavaScript(o: unknown): unknown } };
const rpc = require("@pulumi/pulumi/runtime/rpc") as {
    serializeProperties(label: string, props: Record<string, unknown>): Promise<Record<string, unknown>>;
    specialSigKey: string;
    specialResourceSig: string;
    unknownValue: string;
};

interface AnalyzeResponse {
    getDiagnosticsList(): {
        getPolicyname(): string;
        getMessage(): string;
        getUrn(): string;
        getEnforcementlevel(): number;
    }[];
}
interface Reported {
    readonly policy: string;
    readonly message: string;
    readonly urn: string;
    readonly enforcementLevel: EnforcementLevel;
}
/** pulumirpc.EnforcementLevel, by wire number. */
const LEVELS: readonly EnforcementLevel[] = ["advisory", "mandatory", "disabled", "remediate"];

function call(handler: RpcHandler, request: unknown): Promise<Reported[]> {
    return new Promise((resolve, reject) => {
        void handler({ request }, (err, res) => {
            if (err || !res) return reject(err ?? new Error("the analyzer returned no response"));
            resolve(
                res.getDiagnosticsList().map((d) => ({
                    policy: d.getPolicyname(),
                    message: d.getMessage(),
                    urn: d.getUrn(),
                    enforcementLevel: LEVELS[d.getEnforcementlevel()] ?? "advisory",
                })),
            );
        });
    });
}

// --- RecordedResource → the engine's analyzer messages. ---

interface RequestContext {
    readonly byUrn: ReadonlyMap<string, RecordedResource>;
    /** Each resource's properties in wire form. */
    readonly wire: ReadonlyMap<string, unknown>;
}

/** Sets what AnalyzerResource and AnalyzeRequest share: type, URN, name, properties, options, provider. */
function describeResource(m: Message, r: RecordedResource, ctx: RequestContext): Message {
    m.setType(r.type);
    m.setUrn(r.urn);
    m.setName(r.name);
    m.setProperties(Struct.fromJavaScript(ctx.wire.get(r.urn)));
    m.setOptions(options(r));
    const provider = providerOf(r, ctx);
    if (provider) m.setProvider(provider);
    return m;
}

function analyzerResource(r: RecordedResource, ctx: RequestContext): Message {
    const m = describeResource(new analyzerProto.AnalyzerResource(), r, ctx);
    m.setParent(r.parent);
    m.setDependenciesList([...r.dependencies]);
    return m;
}

function analyzeRequest(r: RecordedResource, ctx: RequestContext): Message {
    return describeResource(new analyzerProto.AnalyzeRequest(), r, ctx);
}

function options(r: RecordedResource): Message {
    const m = new analyzerProto.AnalyzerResourceOptions();
    m.setParent(r.parent);
    return m;
}

/**
 * The provider the engine would hand the analyzer: the explicit one the resource names, else, for
 * a custom resource, its package's default provider (the engine registers one; the mocks do not).
 * Components and providers themselves get none, as from the engine.
 */
function providerOf(r: RecordedResource, ctx: RequestContext): Message | undefined {
    if (!r.custom || r.type.startsWith("pulumi:providers:")) return undefined;
    const m = new analyzerProto.AnalyzerProviderResource();
    const explicit = r.provider ? ctx.byUrn.get(r.provider.slice(0, r.provider.lastIndexOf("::"))) : undefined;
    if (explicit) {
        m.setType(explicit.type);
        m.setUrn(explicit.urn);
        m.setName(explicit.name);
        m.setProperties(Struct.fromJavaScript(ctx.wire.get(explicit.urn)));
        return m;
    }
    const pkg = r.type.split(":")[0];
    const [stack, project] = r.urn.split("::");
    m.setType(`pulumi:providers:${pkg}`);
    m.setUrn(`${stack}::${project}::pulumi:providers:${pkg}::default`);
    m.setName("default");
    m.setProperties(Struct.fromJavaScript({}));
    return m;
}

/**
 * Recorded inputs in the form the engine sends an analyzer: the SDK's own serializer resolves
 * promises, outputs and assets and turns unknowns into the unknown sentinel; resource references
 * then become the custom resource's id or the component's URN, as the engine sends them to
 * analyzers.
 */
async function toWireProperties(inputs: Record<string, unknown>): Promise<unknown> {
    return withoutResourceReferences(await rpc.serializeProperties("policy analysis", inputs));
}

function withoutResourceReferences(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(withoutResourceReferences);
    if (v === null || typeof v !== "object") return v;
    const o = v as Record<string, unknown>;
    if (o[rpc.specialSigKey] === rpc.specialResourceSig) {
        if (typeof o.id === "string") return o.id === "" ? rpc.unknownValue : o.id;
        return o.urn;
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, withoutResourceReferences(x)]));
}
