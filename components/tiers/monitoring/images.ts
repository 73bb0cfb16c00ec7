/** The Monitoring tier's images: multi-arch (arm64), pinned by digest. */
export const MONITORING_IMAGES = {
    prometheus: "prom/prometheus:v3.5.0@sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996",
    alertmanager: "prom/alertmanager:v0.28.1@sha256:27c475db5fb156cab31d5c18a4251ac7ed567746a2483ff264516437a39b15ba",
    grafana: "grafana/grafana:11.6.16@sha256:d67af92050b8d93b393dc741864752a69c9da1ffa39c1bb9af49ad5d9e47d2c3",
    nodeExporter: "prom/node-exporter:v1.9.1@sha256:d00a542e409ee618a4edc67da14dd48c5da66726bbd5537ab2af9c1dfc442c8a",
    /** Apache-2.0; the tests build the same version from its Go module (test/support/build-victoria.sh). */
    victoriaMetrics: "victoriametrics/victoria-metrics:v1.151.0@sha256:6d164540a04f49ba4e696cbdb70f9fee78be1e94b8f2a1292743a0b1ab8275bd",
    /**
     * Apache-2.0; distroless, so no healthcheck command can run in it. The Go module proxy serves
     * v1.52.1 and v1.52.2, not v1.52.0, of its module; their changelog ends at v1.52.0 with nothing
     * after it, so the tests build v1.52.2 (test/support/build-victoria.sh).
     */
    victoriaLogs: "victoriametrics/victoria-logs:v1.52.0@sha256:47b820890d64c4575a2a0a46415dcd8a4fd59a0f1fcd6a377693d7aea639442e",
    cadvisor: "gcr.io/cadvisor/cadvisor:v0.52.1@sha256:f40e65878e25c2e78ea037f73a449527a0fb994e303dc3e34cb6b187b4b91435",
} as const;
