// What `syncInterval: always` costs: two three-node NATS clusters side by side on namespaced Pis,
// on the nats.conf picloud renders, one fsyncing every message before it acknowledges it (the
// default) and one at NATS's own default (every 2 minutes), each with an R3 stream made by the
// rendered streams step. farm-bench times the same synchronous JetStream publish run against
// each, in turn (A B A B ...), so the ratio is taken pair by pair on the same machine. Needs root
// and `npm test`'s tools (test/support/install-cache-bus.sh). Run: npx tsx bench/bus-sync.ts
import { execFileSync } from "node:child_process";
import { parseStackConfig } from "../components/config/schema";
import { NatsLab } from "../test/support/natsLab";
import { NetnsLab, waitFor } from "../test/support/netnsLab";
import { validator } from "../test/support/validators";

const MESSAGES = 2000;
const CLIENTS = 4;

function busOptions(syncInterval: string) {
    const pis = [1, 2, 3].map((i) => ({ name: `pi-${i}`, address: `10.79.0.${10 + i}`, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaWQtkkIJq7Iza/VlBf4dpDjLz1Rser9LqnV8bTJjAk", memoryMb: 4096, storage: "ssd", model: "pi4" }));
    const bus = { syncInterval, accounts: { bench: { users: { bench: {} }, streams: { BENCH: { subjects: ["bench.>"], maxMb: 512 } } } } };
    return parseStackConfig({ values: { pis, tiers: { bus } }, secretKeys: ["sshPrivateKey"] }).tiers.bus!;
}

async function main(): Promise<void> {
    const lab = new NetnsLab("picloud-bench-nats");
    try {
        const clusters = [
            { name: "always", bus: new NatsLab(lab, busOptions("always"), `pcb-nats-a-${process.pid}-`, ["10.79.0.11", "10.79.0.12", "10.79.0.13"]) },
            { name: "2m", bus: new NatsLab(lab, busOptions("2m"), `pcb-nats-b-${process.pid}-`, ["10.79.1.11", "10.79.1.12", "10.79.1.13"]) },
        ];
        for (const [i, { bus }] of clusters.entries()) {
            bus.network(`pcb-nats-sw${i}-${process.pid}`);
            bus.nodes.forEach((_, n) => bus.start(n));
            const r = await bus.streamsStep();
            if (r.status !== 0) throw new Error(`streams step: ${r.stdout}${r.stderr}\n${bus.logs()}`);
            await waitFor("the stream to take a message", 30_000, () => bus.nats(1, "bench", ["request", "bench.warm", "x"]).out.includes('"stream":"BENCH"'));
        }
        const command = (bus: NatsLab) => ["ip", "netns", "exec", bus.nodes[1].ns, validator("nats"), "--server", bus.urls, "bench", "js", "pub", "sync", "bench.x", "--stream", "BENCH", "--msgs", String(MESSAGES), "--clients", String(CLIENTS), "--size", "128B", "--no-progress"];
        console.log(`NATS JetStream publish, R3, ${MESSAGES} messages of 128 B from ${CLIENTS} clients each waiting for its acknowledgement; A: sync_interval always, B: 2m (NATS's default)`);
        const out = execFileSync("farm-bench", ["-n", "5", "--timeout", "600", "--vs", command(clusters[1].bus).join(" "), "--", ...command(clusters[0].bus)], { encoding: "utf8", env: { ...process.env, NATS_USER: "bench", NATS_PASSWORD: clusters[0].bus.password } });
        console.log(out.trimEnd());
        console.log(`(messages per second = ${MESSAGES} / the median wall seconds; the wall time includes the CLI's start)`);
    } finally {
        await lab.stopAll();
        lab.remove();
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
