import { describe, expect, it } from "vitest";
import { exampleStack } from "../../../test/support/exampleStacks";
import { shellcheck } from "../../../test/support/scripts";
import { stackDeclarations } from "../../cloud/network";
import { registrySchema } from "./config";
import { dnsRecords, dnsZone, recordsRemoveCommand, renderCorefile, renderRecordsScript, zonePrefix } from "./dns";

const options = registrySchema.parse({});

describe("the registry's zone and records", () => {
    it("names the zone after the stack unless the config names it, as a DNS name", () => {
        expect(dnsZone(options, "dev")).toBe("dev.internal");
        expect(dnsZone(options, "Prod_EU.2")).toBe("prod-eu-2.internal");
        expect(dnsZone(options, "2024")).toBe("c2024.internal");
        expect(dnsZone(registrySchema.parse({ dns: { zone: "pis.example.org" } }), "dev")).toBe("pis.example.org");
        expect(() => registrySchema.parse({ dns: { zone: "Not A Zone" } })).toThrow(/a DNS zone of lowercase labels such as dev.internal/);
    });

    it("keys each replica of a name under the name, as the etcd plugin reads it", () => {
        const records = dnsRecords([{ name: "hello.apps", addresses: ["10.0.0.2", "10.0.0.3"], declaredBy: "k" }], "dev.internal", 30);
        expect(records).toEqual([
            { key: "/skydns/internal/dev/apps/hello/0", value: '{"host":"10.0.0.2","ttl":30}', fqdn: "0.hello.apps.dev.internal", address: "10.0.0.2" },
            { key: "/skydns/internal/dev/apps/hello/1", value: '{"host":"10.0.0.3","ttl":30}', fqdn: "1.hello.apps.dev.internal", address: "10.0.0.3" },
        ]);
        expect(zonePrefix("dev.internal")).toBe("/skydns/internal/dev/");
    });

    it("refuses a name declared twice, and one that would read as a replica index", () => {
        expect(() => dnsRecords([{ name: "a.b", addresses: ["10.0.0.1"], declaredBy: "first" }, { name: "a.b", addresses: ["10.0.0.2"], declaredBy: "second" }], "z.internal", 30)).toThrow(
            "second: the name a.b.z.internal is declared by first already",
        );
        expect(() => dnsRecords([{ name: "0.b", addresses: ["10.0.0.1"], declaredBy: "k" }], "z.internal", 30)).toThrow("starts with a number");
    });

    for (const stack of ["dev", "prod"]) {
        it(`names every replica of every tier of ${stack}: each placed workload answers with exactly its replicas' Pis`, () => {
            const { config, plan } = exampleStack(stack);
            const { names } = stackDeclarations({ config, placement: plan.placement });
            const address = new Map(config.pis.map((p) => [p.name, p.address]));
            const answers = new Set(names.map((n) => [...n.addresses].join(",")));
            for (const w of plan.workloads.filter((x) => !x.hostAgent)) {
                const replicas = plan.placement.assignments.get(w.name)!.map((pi) => address.get(pi)!);
                expect(answers.has(replicas.join(",")), `${w.name} on ${replicas.join(",")}`).toBe(true);
            }
            expect(names.map((n) => n.name)).toEqual(expect.arrayContaining(["hello.apps", "etcd.registry", "prometheus.monitoring", "lb", "gateway.functions", `${config.pis[0].name}.pi`]));
            // Records for every name, without a clash.
            expect(dnsRecords(names, "z.internal", 30).length).toBe(names.reduce((n, x) => n + x.addresses.length, 0));
        });
    }
});

describe("the records script and the Corefiles", () => {
    const records = dnsRecords([{ name: "hello.apps", addresses: ["10.0.0.2"], declaredBy: "k" }], "dev.internal", 30);
    const etcdctl = ["docker", "exec", "etcd-0", "etcdctl", "--endpoints=http://127.0.0.1:2382"];

    it("passes shellcheck, and removes only the zone's own keys", () => {
        const script = renderRecordsScript({ zone: "dev.internal", records, etcdctl });
        const result = shellcheck(script);
        expect(result.status, result.output).toBe(0);
        expect(script).toContain("prefix='/skydns/internal/dev/'");
        expect(recordsRemoveCommand("dev.internal", etcdctl)).toBe("'docker' 'exec' 'etcd-0' 'etcdctl' '--endpoints=http://127.0.0.1:2382' del --prefix '/skydns/internal/dev/' >/dev/null 2>&1 || true");
    });

    it("refuses a record outside the zone rather than write it", () => {
        expect(() => renderRecordsScript({ zone: "dev.internal", records: dnsRecords([{ name: "x", addresses: ["10.0.0.1"], declaredBy: "k" }], "other.internal", 30), etcdctl })).toThrow(
            "expected a key under /skydns/internal/dev/",
        );
    });

    it("reads the zone from the Pi's own member over loopback, or forwards it to the members, and forwards the rest", () => {
        const member = renderCorefile({ zone: "dev.internal", bind: "10.0.0.1", metricsPort: 9153, source: { kind: "member", localClientPort: 2382 } });
        expect(member).toMatch(/^dev\.internal:53 \{\n {4}bind 10\.0\.0\.1\n/m);
        expect(member).toContain("    etcd {\n        path /skydns\n        endpoint http://127.0.0.1:2382\n    }");
        expect(member).toContain("    forward . /etc/resolv.conf\n");
        const other = renderCorefile({ zone: "dev.internal", bind: "10.0.0.9", metricsPort: 9153, forwardTo: ["9.9.9.9"], source: { kind: "members", addresses: ["10.0.0.1", "10.0.0.2"] } });
        expect(other).toContain("    forward . 10.0.0.1:53 10.0.0.2:53\n");
        expect(other).toContain("    forward . 9.9.9.9\n");
        expect(other).not.toContain("etcd {");
    });
});
