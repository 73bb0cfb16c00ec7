import { describe, expect, it } from "vitest";

import { GO_BUILD_IMAGE, goModuleImageTag, goProgramName, renderGoModuleDockerfile } from "./goModuleImage";

const VMBACKUP = { pkg: "github.com/VictoriaMetrics/VictoriaMetrics/app/vmbackup", version: "1.151.0" };

describe("images built from a Go module", () => {
    it("installs the package at its version in Go's pinned image and runs the binary alone", () => {
        const dockerfile = renderGoModuleDockerfile(VMBACKUP);
        expect(GO_BUILD_IMAGE).toMatch(/^golang:[0-9.]+-alpine@sha256:[0-9a-f]{64}$/);
        expect(goProgramName(VMBACKUP)).toBe("vmbackup");
        expect(dockerfile.split("\n")).toEqual([
            "# picloud: vmbackup from its Go module; rendered, do not edit",
            `FROM ${GO_BUILD_IMAGE} AS build`,
            "RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath github.com/VictoriaMetrics/VictoriaMetrics/app/vmbackup@v1.151.0",
            "FROM scratch",
            "COPY --from=build /out/vmbackup /vmbackup",
            'ENTRYPOINT ["/vmbackup"]',
            "",
        ]);
    });

    it("holds the binaries of more packages of the same module alongside, the first the entry point", () => {
        const dockerfile = renderGoModuleDockerfile({ ...VMBACKUP, alongside: ["github.com/VictoriaMetrics/VictoriaMetrics/app/vmrestore"] });
        expect(dockerfile).toContain(
            "RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath github.com/VictoriaMetrics/VictoriaMetrics/app/vmbackup@v1.151.0 github.com/VictoriaMetrics/VictoriaMetrics/app/vmrestore@v1.151.0\n",
        );
        expect(dockerfile).toContain("COPY --from=build /out/vmbackup /vmbackup\nCOPY --from=build /out/vmrestore /vmrestore\n");
        expect(dockerfile).toContain('ENTRYPOINT ["/vmbackup"]');
        expect(goModuleImageTag("vmbackup", { ...VMBACKUP, alongside: ["github.com/VictoriaMetrics/VictoriaMetrics/app/vmrestore"] })).not.toBe(goModuleImageTag("vmbackup", VMBACKUP));
    });

    it("tags by version and by the Dockerfile's content, so a change is a new image", () => {
        const tag = goModuleImageTag("vmbackup", VMBACKUP);
        expect(tag).toMatch(/^picloud\/vmbackup:1\.151\.0-[0-9a-f]{12}$/);
        expect(goModuleImageTag("vmbackup", VMBACKUP)).toBe(tag);
        expect(goModuleImageTag("vmbackup", VMBACKUP, `${renderGoModuleDockerfile(VMBACKUP)}# changed\n`)).not.toBe(tag);
        expect(goModuleImageTag("vmbackup", { ...VMBACKUP, version: "1.151.1" })).toMatch(/^picloud\/vmbackup:1\.151\.1-/);
    });

    it("refuses a package or version that would not render a sound Dockerfile", () => {
        for (const bad of [
            { ...VMBACKUP, version: "v1.151.0" },
            { ...VMBACKUP, version: "1.151" },
            { ...VMBACKUP, version: "1.151.0; rm -rf /" },
            { pkg: "github.com/x/Upper", version: "1.0.0" },
            { pkg: "github.com/x/y/", version: "1.0.0" },
            { pkg: "vmbackup", version: "1.0.0" },
            { pkg: "github.com/x/y $(reboot)", version: "1.0.0" },
            { ...VMBACKUP, alongside: ["github.com/other/app/vmbackup"] },
        ]) {
            expect(() => renderGoModuleDockerfile(bad)).toThrow(/package path ending in a lowercase name of its own at a version x\.y\.z/);
        }
    });
});
