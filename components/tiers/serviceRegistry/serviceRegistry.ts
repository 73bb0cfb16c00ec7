import type * as pulumi from "@pulumi/pulumi";
import type { RegistryConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { runRootScript, shipFile } from "../../host/remoteFiles";
import { backupTimerRemoveCommand, renderBackupTimerScript } from "../../renderers/backupTimer";
import { TierArgs, TierComponent, hostOf } from "../tierComponent";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../monitoring/specs";
import { ETCD_WORKLOAD, etcdSnapshotCommand, etcdWorkload, memberEtcdctl, registrySpec } from "./specs";
import { COREDNS_DIR, DnsName, DnsRecord, corednsWorkload, corefiles, dnsRecords, recordsRemoveCommand, renderRecordsScript } from "./dns";

/** Where the registry's snapshots are kept on the Pi that takes them. */
export const REGISTRY_BACKUP_DIR = "/srv/picloud/backups/etcd";

/** Arguments of {@link ServiceRegistry}. */
export interface ServiceRegistryArgs extends TierArgs {
    /** Options under `picloud:tiers.registry`. */
    readonly options: RegistryConfig;
    /** Hosts by Pi name, for the Corefiles, the records and the backup timer. */
    readonly hosts: ReadonlyMap<string, PiHost>;
    /** The zone CoreDNS answers (`dnsZone`). */
    readonly zone: string;
    /** Every name of the stack, from every tier's declaration. */
    readonly names: readonly DnsName[];
    /** A tier keeps its state in etcd (the database): members serve the DCS port too. Default false. */
    readonly serveDcs?: boolean;
}

/**
 * The service registry: an etcd cluster, three members on distinct SSD Pis (one on a stack of
 * fewer than three), each with its data on its own Pi, replaced one at a time; a snapshot on a
 * systemd timer on the first member's Pi, with an alert when the last one is too old; etcd's
 * golden signals. Placement refuses a stack where losing one Pi would break its quorum and could
 * be helped. CoreDNS on every Pi answers the zone's names from the records the cluster's init
 * step keeps in etcd.
 */
export class ServiceRegistry extends TierComponent {
    /** The zone's records as written to etcd. */
    readonly records: readonly DnsRecord[];

    constructor(name: string, args: ServiceRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:registry:ServiceRegistry", name, opts);
        const { options } = args;
        const piHost = (pi: string) => hostOf(args.hosts, pi, "picloud:tiers.registry");
        this.runWorkloads([etcdWorkload(options, args.pis, args.serveDcs ?? false)], args);
        const members = this.replicas[ETCD_WORKLOAD];
        const first = members[0];
        const host = piHost(first.pi);

        // Every Pi's Corefile before its CoreDNS starts; a changed one is reloaded by CoreDNS itself.
        const files = corefiles(options, args.pis, members.map((m) => m.identity), args.zone);
        const shipped = [...files].map(([pi, text]) =>
            shipFile(`${name}-${pi}-corefile`, { connection: piHost(pi).connection, text, remotePath: `${COREDNS_DIR}/Corefile`, owner: "root" }, { parent: this, dependsOn: [piHost(pi).ready] }),
        );
        this.runWorkloads([corednsWorkload(options, args.pis)], args, shipped);

        // The cluster's init step, on the first member once every member runs: the zone's records,
        // written again whenever a name or an address changes.
        this.records = dnsRecords(args.names, args.zone, options.dns.ttlSeconds);
        runRootScript(
            `${name}-dns-records`,
            {
                connection: host.connection,
                scriptName: "registry-dns-records.sh",
                script: renderRecordsScript({ zone: args.zone, records: this.records, etcdctl: memberEtcdctl(first.identity, options) }),
                remove: recordsRemoveCommand(args.zone, memberEtcdctl(first.identity, options)),
            },
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );
        runRootScript(
            `${name}-backup`,
            {
                connection: host.connection,
                scriptName: "backup-etcd.sh",
                script: renderBackupTimerScript({
                    name: "etcd",
                    onCalendar: options.backup.onCalendar,
                    command: etcdSnapshotCommand(first.identity, options),
                    local: { directory: REGISTRY_BACKUP_DIR, keep: options.backup.keep },
                    textfileDir: NODE_EXPORTER_TEXTFILE_DIR,
                }),
                remove: backupTimerRemoveCommand("etcd", NODE_EXPORTER_TEXTFILE_DIR),
            },
            // Once the whole cluster is up: a snapshot needs a leader.
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );
        this.attach(registrySpec(options, members.map((m) => m.identity), args.pis), args.monitoring);
        this.registerOutputs({ members: members.map((m) => `${m.identity.address}:${options.clientPort}`), zone: args.zone, names: this.records.length });
    }
}
