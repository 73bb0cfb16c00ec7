import { describe, expect, it } from "vitest";
import { componentRenames, oldName, scoped } from "./renames";

describe("scoped names", () => {
    it("names a child after its parent and keeps its unscoped name as an alias", () => {
        const { name, opts } = scoped("picloud", "dev-1", { aliases: [{ name: "older" }], protect: true });
        expect(name).toBe("picloud-dev-1");
        expect(opts).toEqual({ aliases: [{ name: "older" }, { name: "dev-1" }], protect: true });
    });
});

describe("old names after a rename", () => {
    it("replaces whole dash-separated parts only, longest first, in one pass", () => {
        const renames = [
            { from: "picloud-hello", to: "picloud-web" },
            { from: "hello", to: "web" },
            { from: "app-hello", to: "app-web" },
        ];
        expect(oldName("picloud-web-app-web-0", renames)).toBe("picloud-hello-app-hello-0");
        expect(oldName("app-web-0", renames)).toBe("app-hello-0");
        expect(oldName("web", renames)).toBe("hello");
        expect(oldName("picloud-web-monitoring", renames)).toBe("picloud-hello-monitoring");
        // "web" inside a longer part is another name.
        expect(oldName("picloud-webapp-0", renames)).toBeUndefined();
        expect(oldName("cobweb", renames)).toBeUndefined();
    });

    it("does not rename what a rename has just produced", () => {
        // b → c and a → b at once: c-0 was b-0, b-0 was a-0; nothing is renamed twice.
        const renames = [{ from: "b", to: "c" }, { from: "a", to: "b" }];
        expect(oldName("c-0", renames)).toBe("b-0");
        expect(oldName("b-c", renames)).toBe("a-b");
    });

    it("derives a component's full old name from its short one, under any scope", () => {
        expect(componentRenames("picloud-web", "web", "hello")).toEqual([{ from: "hello", to: "web" }, { from: "picloud-hello", to: "picloud-web" }]);
        expect(componentRenames("web", "web", "hello")).toEqual([{ from: "hello", to: "web" }]);
        expect(componentRenames("picloud-web", "web", undefined)).toEqual([]);
    });
});
