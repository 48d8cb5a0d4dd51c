export { startAdminServer } from './server.js';
export { READINESS_PATH, startMetricsServer, startReadinessServer, type MetricsSources, type ReadinessSources } from './probe-servers.js';
export { clustersJson, clustersText } from './clusters-format.js';
export { configDump, type ConfigDumpOptions } from './config-dump.js';
export type {
  AdminHandler,
  AdminServer,
  AdminServerOptions,
  AdminSources,
  ClusterStatus,
  HostStats,
  HostStatus,
  ListeningServer,
  ServerState,
} from './types.js';
