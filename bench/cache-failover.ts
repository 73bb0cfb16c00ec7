// Cache failover time: three Valkey nodes and three Sentinels (Debian's Redis 7 standing in, on
// the files and start scripts picloud renders, at its defaults) on namespaced Pis; the primary is
// SIGKILLed ROUNDS times and a client asking the Sentinels writes every 100 ms until a write is
// acknowledged again. Prints each round and the median; the old primary is started again (it
// rejoins as a replica) before the next round. Needs root and `npm test`'s tools
// (test/support/install-cache-bus.sh). Run: npx tsx bench/cache-failover.ts
import * as path from "node:path";
import { replicaIdentities } from "../components/runtime/workload";
import { cacheSchema } from "../components/tiers/cache/config";
import { VALKEY_DATA_IN_CONTAINER, VALKEY_WORKLOAD } from "../components/tiers/cache/valkey";
import { NetnsLab } from "../test/support/netnsLab";
import { type CacheHost, ValkeyLab } from "../test/support/valkeyLab";
import { median } from "./syntheticStack";

const ROUNDS = 5;

async function main(): Promise<void> {
    const lab = new NetnsLab("picloud-bench-valkey");
    const prefix = `pcb-valkey-${process.pid}-`;
    try {
        const options = cacheSchema.parse({});
        const addresses = ["10.78.0.11", "10.78.0.12", "10.78.0.13"];
        const identities = replicaIdentities({ name: VALKEY_WORKLOAD, data: { containerPath: VALKEY_DATA_IN_CONTAINER } }, ["pi-1", "pi-2", "pi-3"], (pi) => addresses[Number(pi.slice(3)) - 1]);
        const hosts: CacheHost[] = identities.map((identity) => ({ identity, ns: `${prefix}${identity.index}`, dir: path.join(lab.work, `pi-${identity.index}`) }));
        lab.addSwitch(`${prefix}sw`);
        hosts.forEach((h, i) => lab.addHost(h.ns, `${prefix}sw`, `port${i}`, `${h.identity.address}/24`));
        const cache = new ValkeyLab(lab, options, hosts);
        hosts.forEach((h) => cache.startNode(h));
        await cache.settled(hosts[0]);
        hosts.forEach((h) => cache.startSentinel(h));
        await cache.sentinelsAgree(hosts[0]);
        const times: number[] = [];
        console.log(`cache failover (down-after ${options.downAfterSeconds} s), ${ROUNDS} rounds: primary SIGKILLed, a Sentinel-aware client writing every 100 ms`);
        for (let round = 1; round <= ROUNDS; round++) {
            const client = hosts.find((h) => h.identity.address !== cache.master(hosts[0]))!;
            const { ms, primary, old } = await cache.failover(client);
            times.push(ms);
            console.log(`  round ${round}: writes acknowledged again after ${(ms / 1000).toFixed(2)} s (${old.identity.address} -> ${primary.identity.address})`);
            cache.startNode(old);
            await cache.settled(primary);
            await cache.sentinelsAgree(primary);
        }
        console.log(`  median ${(median(times) / 1000).toFixed(2)} s, min ${(Math.min(...times) / 1000).toFixed(2)} s, max ${(Math.max(...times) / 1000).toFixed(2)} s`);
    } finally {
        await lab.stopAll();
        lab.remove();
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
