/**
 * Images built on each Pi from a Go module, where no image of the program's own could be pinned
 * by a checked digest: `go install` in Go's official image, pinned by digest, with the module
 * verified by Go's checksum database, and the static binary alone in the image that runs. The tag
 * is content-addressed, so a new version or Dockerfile is a new image and the old one stays for a
 * rollback.
 */
import { contentHash } from "./contentHash";

/** Go's official image the builds run in, pinned by digest. */
export const GO_BUILD_IMAGE = "golang:1.25-alpine@sha256:3eb6c2b3db8d55e38537302edb510b4417f8a115efbd5906d131ceba9468e29a";

/** A program to build: its package (`module/path/cmd`) at a module version, named after the package's last element. */
export interface GoProgram {
    readonly pkg: string;
    /** Without the leading v. */
    readonly version: string;
    /** More packages of the same module, at the same version, whose binaries the image holds beside it (run with `--entrypoint /<name>`). */
    readonly alongside?: readonly string[];
}

/** The binary's name: the package's last element, as `go install` names it. */
export function goProgramName(program: Pick<GoProgram, "pkg">): string {
    return program.pkg.split("/").at(-1)!;
}

/** The Dockerfile: built from its module in Go's image, the binary alone in the image that runs. */
export function renderGoModuleDockerfile(program: GoProgram): string {
    const pkgs = [program.pkg, ...(program.alongside ?? [])];
    const names = pkgs.map((pkg) => goProgramName({ pkg }));
    const sound = (pkg: string, i: number) => /^[a-z0-9.-]+(\/[A-Za-z0-9._-]+)+$/.test(pkg) && /^[a-z0-9][a-z0-9.-]*$/.test(names[i]) && names.indexOf(names[i]) === i;
    if (!pkgs.every(sound) || !/^[0-9]+\.[0-9]+\.[0-9]+$/.test(program.version)) {
        throw new Error(`a Go program is a package path ending in a lowercase name of its own at a version x.y.z, got ${pkgs.join(" ")} @ ${program.version}`);
    }
    return [
        `# picloud: ${names.join(", ")} from ${names.length > 1 ? "their" : "its"} Go module; rendered, do not edit`,
        `FROM ${GO_BUILD_IMAGE} AS build`,
        `RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath ${pkgs.map((pkg) => `${pkg}@v${program.version}`).join(" ")}`,
        "FROM scratch",
        ...names.map((name) => `COPY --from=build /out/${name} /${name}`),
        `ENTRYPOINT ["/${names[0]}"]`,
        "",
    ].join("\n");
}

/** The tag the image is built under: `picloud/<short>:<version>-<hash of its Dockerfile>`. */
export function goModuleImageTag(short: string, program: GoProgram, dockerfile = renderGoModuleDockerfile(program)): string {
    return `picloud/${short}:${program.version}-${contentHash(dockerfile).slice(0, 12)}`;
}
