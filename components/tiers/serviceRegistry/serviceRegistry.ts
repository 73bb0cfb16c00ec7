import type * as pulumi from "@pulumi/pulumi";
import type { RegistryConfig } from "./config";
import type { PiHost } from "../../host/piHost";
import { runRootScript } from "../../host/remoteFiles";
import { backupTimerRemoveCommand, renderBackupTimerScript } from "../../renderers/backupTimer";
import { TierArgs, TierComponent } from "../tierComponent";
import { NODE_EXPORTER_TEXTFILE_DIR } from "../monitoring/specs";
import { ETCD_WORKLOAD, etcdSnapshotCommand, etcdWorkload, registrySpec } from "./specs";

/** Where the registry's snapshots are kept on the Pi that takes them. */
export const REGISTRY_BACKUP_DIR = "/srv/picloud/backups/etcd";

/** Arguments of {@link ServiceRegistry}. */
export interface ServiceRegistryArgs extends TierArgs {
    /** Options under `picloud:tiers.registry`. */
    readonly options: RegistryConfig;
    /** Hosts by Pi name, for the backup timer. */
    readonly hosts: ReadonlyMap<string, PiHost>;
}

/**
 * The service registry: an etcd cluster, three members on distinct SSD Pis (one on a stack of
 * fewer than three), each with its data on its own Pi, replaced one at a time; a snapshot on a
 * systemd timer on the first member's Pi, with an alert when the last one is too old; etcd's
 * golden signals. Placement refuses a stack where losing one Pi would break its quorum and could
 * be helped.
 */
export class ServiceRegistry extends TierComponent {
    constructor(name: string, args: ServiceRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("picloud:registry:ServiceRegistry", name, opts);
        const { options } = args;
        this.runWorkloads([etcdWorkload(options, args.pis)], args);
        const members = this.replicas[ETCD_WORKLOAD];
        const first = members[0];
        const host = args.hosts.get(first.pi);
        if (!host) throw new Error(`picloud:tiers.registry: no host for Pi "${first.pi}"`);
        runRootScript(
            `${name}-backup`,
            {
                connection: host.connection,
                scriptName: "backup-etcd.sh",
                script: renderBackupTimerScript({
                    name: "etcd",
                    onCalendar: options.backup.onCalendar,
                    command: etcdSnapshotCommand(first.identity, options),
                    directory: REGISTRY_BACKUP_DIR,
                    keep: options.backup.keep,
                    textfileDir: NODE_EXPORTER_TEXTFILE_DIR,
                }),
                remove: backupTimerRemoveCommand("etcd", NODE_EXPORTER_TEXTFILE_DIR),
            },
            // Once the whole cluster is up: a snapshot needs a leader.
            { parent: this, dependsOn: members.map((m) => m.resource) },
        );
        this.attach(registrySpec(options, members.map((m) => m.identity)), args.monitoring);
        this.registerOutputs({ members: members.map((m) => `${m.identity.address}:${options.clientPort}`) });
    }
}
