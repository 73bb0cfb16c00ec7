/**
 * picloud's public API: `import { PiHost, PiCloud, AppServers } from "picloud"`.
 * Layers, bottom to top: config → placement → renderers → network → host → runtime → monitoring →
 * tiers → cloud → plan (test/layers.test.ts keeps imports downward); the
 * offline plan runs the program on the SDK's mock runtime.
 */

export { PicloudConfigError, configKey } from "./config/errors";
export type { ConfigProblem } from "./config/errors";
export { parseStackConfig, PI_MEMORY_SIZES_MB, DEFAULT_OS_RESERVE_MB, inSubnet } from "./config/schema";
export type { StackConfig, PiConfig, PiModel, RawStackConfig } from "./config/schema";
export type { PlacementConstraints, HealthcheckConfig } from "./config/workload";
export type { AppConfig } from "./tiers/apps/config";
export type { FunctionsConfig, FunctionConfig } from "./tiers/functions/config";
export type { LoadBalancerConfig } from "./tiers/loadBalancer/config";
export type { MonitoringConfig } from "./tiers/monitoring/config";
export type { RegistryConfig } from "./tiers/serviceRegistry/config";
export type { BlobConfig, BucketAccess } from "./tiers/blob/config";
export type { DatabaseConfig } from "./tiers/database/config";
export { appSchema } from "./tiers/apps/config";
export { functionsSchema } from "./tiers/functions/config";
export { loadBalancerSchema, loadBalancerTopology } from "./tiers/loadBalancer/config";
export { registrySchema } from "./tiers/serviceRegistry/config";
export { blobSchema } from "./tiers/blob/config";
export { databaseSchema } from "./tiers/database/config";

export { placeReplicas, PlacementError } from "./placement/place";
export type { PlacementPlan, PiUsage, PlacedReplica, WorkloadDemand, PlaceOptions, PlacementChange, PreviousPlacement, QuorumGroup } from "./placement/place";
export { majority } from "./placement/place";
export { renderPlacementLock, parsePlacementLock, describeChanges, lockOf, sameLock } from "./placement/lock";
export type { PlacementLock } from "./placement/lock";
export { analyseSinglePiLoss } from "./placement/resilience";
export type { PiLossImpact } from "./placement/resilience";

export {
    renderBootstrapScript,
    renderReadinessScript,
    renderHostCheckScript,
    renderFirewallScript,
    renderFirewallConfirmScript,
    shellQuote,
    DOCKER_READY_LINE,
    BOOTSTRAP_SUMMARY,
    FIREWALL_SUMMARY,
    FIREWALL_ROLLBACK_SECONDS,
} from "./renderers/hostScripts";
export type { BootstrapInput } from "./renderers/hostScripts";
export { renderKnownHosts, knownHostsLine } from "./renderers/knownHosts";
export { renderShipCommand, shippedPath, scriptPath, withRerunKey, SCRIPTS_DIR } from "./renderers/remoteCommands";
export type { FileOwner } from "./renderers/remoteCommands";
export type { KnownHost } from "./renderers/knownHosts";

export { PiHost, piConnection } from "./host/piHost";
export type { PiHostArgs } from "./host/piHost";

export { demandOf } from "./runtime/workload";
export type { Workload, WorkloadPort, WorkloadVolume } from "./runtime/workload";
export { DockerRuntime, containerArgs, dockerSshOptions, dockerHost, LABELS } from "./runtime/dockerRuntime";
export type { WorkloadRuntime, DeployedReplica, DockerRuntimeOptions } from "./runtime/dockerRuntime";

export { ATTACHMENT_TYPE, targetDownRule, backupAgeRule, monitoringGaps, alertPrefix } from "./monitoring/contract";
export type { MonitoringSpec, ScrapeTarget, AlertRule, Dashboard, DashboardPanel, Severity } from "./monitoring/contract";
export { Attachment, attachMonitoring, MonitoredComponent, monitoringEndpointFromOutput, monitoringEndpointFromStack, monitoringCoverage, attachmentFiles, prometheusReloadCommand } from "./monitoring/attachment";
export type { MonitoringEndpoint, MonitoringEndpointOutput, AttachmentArgs, AttachmentDeclaration, MonitoringCoverage } from "./monitoring/attachment";
export * from "./monitoring/renderers";
export { Monitoring, PROMETHEUS_RELOAD, attachHostMonitoring } from "./tiers/monitoring/monitoring";
export { ServiceRegistry, REGISTRY_BACKUP_DIR } from "./tiers/serviceRegistry/serviceRegistry";
export { BlobStorage } from "./tiers/blob/blobStorage";
export type { BlobStorageArgs } from "./tiers/blob/blobStorage";
export { GARAGE_IMAGE, renderGarageToml, renderGarageInit, blobSpec, garageWorkload } from "./tiers/blob/garage";
export type { BlobEnvironment } from "./tiers/blob/garage";
export { Database } from "./tiers/database/database";
export type { DatabaseArgs } from "./tiers/database/database";
export { POSTGRES_BASE_IMAGE, PATRONI_VERSION, POSTGRES_EXPORTER_IMAGE, renderPatroniYml, renderPatroniDockerfile, renderClusterStep, postgresWorkload, exporterWorkload, scramVerifier } from "./tiers/database/postgres";
export { databaseSpec, databaseServices } from "./tiers/database/specs";
export type { DatabaseEnvironment } from "./tiers/database/specs";
export { etcdWorkload, etcdMemberFlags, etcdMembers, registrySpec, registryFlows, ETCD_IMAGE } from "./tiers/serviceRegistry/specs";
export { renderBackupTimerScript, renderBackupRunner, backupTimerRemoveCommand, BACKUP_METRIC } from "./renderers/backupTimer";
export { renamedOptions } from "./host/renames";
export type { Rename } from "./host/renames";
export type { MonitoringArgs } from "./tiers/monitoring/monitoring";
export { monitoringWorkloads, monitoringTierSpec, hostSpec, monitoringPis, monitoringHomes, alertmanagerClusterFlags, MONITORING_PORTS, MONITORING_DIRS } from "./tiers/monitoring/specs";
export { MONITORING_IMAGES } from "./tiers/monitoring/images";

export { TierComponent, replicaEndpoints } from "./tiers/tierComponent";
export type { TierArgs } from "./tiers/tierComponent";
export { AppServers, appWorkload, appMonitoringSpec, metricsHostPort } from "./tiers/apps/appServers";
export type { AppServersArgs } from "./tiers/apps/appServers";
export { appBackend, appWorkloadName } from "./tiers/apps/appServers";
export { LoadBalancer } from "./tiers/loadBalancer/loadBalancer";
export type { LoadBalancerArgs } from "./tiers/loadBalancer/loadBalancer";
export { loadBalancerWorkload, loadBalancerSpec, backendGoldenSignals, haproxyInput, keepalivedInputs, HAPROXY_IMAGE } from "./tiers/loadBalancer/specs";
export type { EdgeBackend } from "./tiers/loadBalancer/specs";
export { renderHaproxyConfig, renderKeepalivedConfig } from "./tiers/loadBalancer/renderers";
export type { HaproxyConfigInput, HaproxyBackend, HaproxyRoute, HaproxyServer, KeepalivedConfigInput } from "./tiers/loadBalancer/renderers";
export { certificateBundleProblems } from "./tiers/loadBalancer/tls";
export { Functions } from "./tiers/functions/functionsTier";
export type { FunctionsArgs } from "./tiers/functions/functionsTier";
export { faasdDemand, functionsSpec, functionsBackend } from "./tiers/functions/specs";
export { renderFaasdInstallScript, faasdHostPorts } from "./tiers/functions/renderers";
export type { FaasdInput } from "./tiers/functions/renderers";
export { FAASD_VERSIONS } from "./tiers/functions/versions";
export { remoteCommand, runRootScript, shipFile, shipSecret } from "./host/remoteFiles";
export type { Connection, RemoteCommandArgs, ShipFileArgs, RootScript } from "./host/remoteFiles";
export { hostHardening } from "./host/piHost";
export * from "./renderers/hardening";
export type { HostHardening } from "./renderers/hostScripts";
export { FIREWALL_UNIT } from "./renderers/hostScripts";
export { cloudFlows, planNetwork, stackDeclarations } from "./cloud/network";
export { publishedPorts } from "./network/flows";
export type { NetworkOptions, PlacedWorkloads } from "./cloud/network";
export { zoneOf, formatFlows, inboundFlows, resolveSource, checkNetworkPlan, ZONES } from "./network/flows";
export type { Zone, Flow, FlowSource, FlowProtocol, NetworkPlan, PublishedPort } from "./network/flows";
export { renderNftables } from "./network/nftables";
export { NFTABLES_FILES, NFTABLES_TABLE } from "./renderers/firewallFiles";
export type { NftablesOptions } from "./network/nftables";
export { rollsOneAtATime } from "./runtime/dockerRuntime";
export { TIERS } from "./tiers/registry";
export type { TierDefinition, TierContext, EdgeComponent, SecretValues } from "./tiers/registry";

export { PiCloud, planCloud } from "./cloud/piCloud";
export type { PiCloudArgs, CloudPlan, PlacementInput } from "./cloud/piCloud";
export { readStackConfig, loadStackConfig, secretValues } from "./cloud/stackConfig";
export { picloudProgram, readPlacementLock } from "./cloud/program";
export type { ProgramPlacement } from "./cloud/program";
export type { PicloudStackOutputs } from "./cloud/program";

export { runPlan, SECRET_PLACEHOLDER } from "./plan/plan";
export type { PlanOptions, PlanResult, StackSource, RenderedFile } from "./plan/plan";
export { formatPlan, coverageTable } from "./plan/report";
export { policyVerdicts, mandatoryViolations } from "./plan/policyVerdicts";
export type { PolicyVerdict, PolicyViolation, MandatoryViolation } from "./plan/policyVerdicts";
export { installMockRuntime } from "./plan/mockRuntime";
export type { MockRuntimeOptions, MockRun, RecordedResource } from "./plan/mockRuntime";
