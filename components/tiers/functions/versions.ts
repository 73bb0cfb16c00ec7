/**
 * Everything the Functions tier downloads, pinned in one place: the faasd release, the CNI plugins
 * release and the images faasd runs as its core services. Each value names where it was read.
 * Upgrading means changing this file and nothing else; the install script verifies every
 * download against what is written here before it installs anything.
 */
import { MONITORING_IMAGES } from "../monitoring/images";

/** Debian architectures picloud installs faasd on: the Pis (arm64), and amd64 test hosts. */
export type FaasdArch = "arm64" | "amd64";

/** The pinned artifacts of the Functions tier. */
export interface FaasdVersions {
    readonly faasd: {
        /** Release tag of github.com/openfaas/faasd. */
        readonly version: string;
        /**
         * SHA-256 of the release binary per architecture, when a source for it is known. Without
         * one the install script checks the download against the release's own `<asset>.sha256`
         * file, which catches a corrupt or truncated download but not a tampered release.
         */
        readonly sha256: Readonly<Partial<Record<FaasdArch, string>>>;
    };
    readonly cniPlugins: {
        /** Release tag of github.com/containernetworking/plugins. */
        readonly version: string;
        /** SHA-256 of `cni-plugins-linux-<arch>-<version>.tgz` per architecture. */
        readonly sha256: Readonly<Record<FaasdArch, string>>;
    };
    /** faasd's core services, multi-arch images pinned by digest. */
    readonly images: {
        readonly gateway: string;
        readonly queueWorker: string;
        readonly nats: string;
        readonly prometheus: string;
    };
}

/**
 * The versions picloud installs.
 *
 * - faasd 0.18.6: the release welteki/faasd-nix moved to in PR #24 (2024-02-16, "Bump faasd
 *   version 0.18.4 -> 0.18.6", https://github.com/openfaas/faasd/releases/tag/0.18.6), by an
 *   OpenFaaS maintainer, together with the image set below. No stored source gives the SHA-256 of
 *   its `faasd-arm64`/`faasd` assets, so none is pinned: the script checks the release's published
 *   `.sha256` files (openfaas/faasd .github/workflows/publish.yaml uploads `faasd-arm64.sha256`,
 *   written by the Makefile's `hashgen`: `shasum -a 256 bin/faasd-arm64 > bin/faasd-arm64.sha256`).
 * - CNI plugins v1.7.1: kubernetes-sigs/kubespray roles/kubespray_defaults/vars/main/checksums.yml
 *   (commit 118b2dce02d3e5730461c8ba8c91cd9dd5dc0b10, `cni_binary_checksums`); the arm64 value is
 *   also pinned, identically, by several unrelated projects' install scripts.
 * - gateway 0.27.5, queue-worker 0.14.1, nats-streaming 0.25.6: digests from welteki/faasd-nix
 *   images.nix (the version listing gateway 0.27.5), produced by nixpkgs' `nix-prefetch-docker`,
 *   which records `skopeo inspect … | jq .Digest` of the tag, the manifest-list digest. faasd's own
 *   docker-compose.yaml of that period (openfaas/faasd commit 1c1bfa6) runs the same queue-worker
 *   and nats-streaming tags.
 * - prometheus: the image picloud's Monitoring tier already pins (monitoring/images.ts), so a Pi
 *   running both holds one copy. faasd's compose of that period used v2.49.1; faasd's
 *   prometheus.yml is a plain static scrape config that v3 reads unchanged.
 */
export const FAASD_VERSIONS: FaasdVersions = {
    faasd: { version: "0.18.6", sha256: {} },
    cniPlugins: {
        version: "v1.7.1",
        sha256: {
            arm64: "119fcb508d1ac2149e49a550752f9cd64d023a1d70e189b59c476e4d2bf7c497",
            amd64: "1a28a0506bfe5bcdc981caf1a49eeab7e72da8321f1119b7be85f22621013098",
        },
    },
    images: {
        gateway: "ghcr.io/openfaas/gateway:0.27.5@sha256:a0814d6ede0a8a5fadb5b7e71f3fbfafef1d7a5f6e814babedfd24353a71641b",
        queueWorker: "ghcr.io/openfaas/queue-worker:0.14.1@sha256:978ed61fa5dbfb90b6fd00bdbf15965d03d49d7d5d720a653d1c180ca7740162",
        nats: "docker.io/library/nats-streaming:0.25.6@sha256:d3175589326bc542cdc97ec4900237e1b603492994037e2e0451fb86de40bfb0",
        prometheus: MONITORING_IMAGES.prometheus,
    },
};

/** Where a faasd release asset is downloaded from; openfaas/faasd hack/install.sh names the assets. */
export function faasdDownloadUrl(version: string, arch: FaasdArch): string {
    return `https://github.com/openfaas/faasd/releases/download/${version}/${arch === "arm64" ? "faasd-arm64" : "faasd"}`;
}

/** Where a CNI plugins release archive is downloaded from (openfaas/faasd hack/install.sh, docs/DEV.md). */
export function cniPluginsDownloadUrl(version: string, arch: FaasdArch): string {
    return `https://github.com/containernetworking/plugins/releases/download/${version}/cni-plugins-linux-${arch}-${version}.tgz`;
}
