/**
 * /config_dump: the Snapshot in the shape of Envoy's admin.v3.ConfigDump — one entry per
 * resource kind, each resource under `dynamic_*` with the Snapshot's version — so tools that read
 * Envoy's dump (istioctl proxy-config) find things where they expect them. Secret material is
 * redacted, as Envoy does.
 */
import type { Snapshot } from '../config/snapshot.js';

const T = 'type.googleapis.com/envoy.admin.v3.';

const SECRET_KEYS = /^(private_?key|password|passphrase|token|secret|client_?secret|inline_(string|bytes)|key_?pem)$/i;

function redact(key: string, value: unknown): unknown {
  return typeof value === 'string' && SECRET_KEYS.test(key) ? '[redacted]' : value;
}

export interface ConfigDumpOptions {
  /** Envoy's ?include_eds: add the endpoints. */
  includeEds: boolean;
  /** Envoy's ?resource=: only entries whose kind (e.g. dynamic_active_clusters) matches. */
  resource?: string;
}

export function configDump(snapshot: unknown, raw: unknown, opts: ConfigDumpOptions, updatedAt: Date): string {
  const s = (snapshot ?? {}) as Partial<Snapshot>;
  const version = s.version ?? '';
  const lastUpdated = updatedAt.toISOString();
  const configs: Record<string, unknown>[] = [
    {
      '@type': `${T}BootstrapConfigDump`,
      bootstrap: {
        node: s.node ?? {},
        source: s.source,
        mode: s.mode,
        sidecar: s.sidecar,
        app: s.app,
        access_log: s.accessLog,
        drain_time_ms: s.drainTimeMs,
        concurrency: s.concurrency,
        log_level: s.logLevel,
      },
      last_updated: lastUpdated,
    },
    {
      '@type': `${T}ClustersConfigDump`,
      version_info: version,
      dynamic_active_clusters: Object.values(s.clusters ?? {}).map((cluster) => ({ version_info: version, cluster, last_updated: lastUpdated })),
    },
    {
      '@type': `${T}ListenersConfigDump`,
      version_info: version,
      dynamic_listeners: (s.listeners ?? []).map((listener) => ({
        name: listener.name,
        active_state: { version_info: version, listener, last_updated: lastUpdated },
      })),
    },
    {
      '@type': `${T}RoutesConfigDump`,
      dynamic_route_configs: Object.values(s.routeConfigs ?? {}).map((route_config) => ({ version_info: version, route_config, last_updated: lastUpdated })),
    },
  ];
  if (opts.includeEds) {
    configs.push({
      '@type': `${T}EndpointsConfigDump`,
      dynamic_endpoint_configs: Object.values(s.endpoints ?? {}).map((endpoint_config) => ({ version_info: version, endpoint_config, last_updated: lastUpdated })),
    });
  }
  if (raw !== undefined) configs.push({ '@type': 'type.googleapis.com/capa.admin.v1.RawConfigDump', version_info: version, raw });
  const selected = opts.resource ? configs.filter((c) => opts.resource! in c).map((c) => ({ '@type': c['@type'], [opts.resource!]: c[opts.resource!] })) : configs;
  return `${JSON.stringify({ configs: selected }, redact, 2)}\n`;
}
