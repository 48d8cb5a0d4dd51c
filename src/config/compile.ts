/**
 * compileConfig: the validated YAML (ParsedConfig) → the immutable Snapshot. Adds what needs
 * the whole file or the filter registry: the capture listeners and passthrough clusters of
 * interception, filter chains, references between listeners, routes and clusters, and address
 * clashes. Every problem names its place in the YAML; all of them are reported at once.
 */
import type { FilterRegistry } from '../filters/registry.js';
import {
  deepFreeze,
  type ClusterSpec,
  type FilterConfigSpec,
  type FlowControlSettings,
  type ListenerSpec,
  type LoadAssignment,
  type NodeInfo,
  type RouteConfigSpec,
  type Snapshot,
} from './snapshot.js';
import type { Env } from './env.js';
import { ProblemList, type ConfigPath, type Locator } from './locate.js';
import { compileHttpFilters } from './compile-filters.js';
import {
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
  VIRTUAL_INBOUND,
  VIRTUAL_OUTBOUND,
  captureRouteConfig,
  checkRouteConfig,
} from './compile-routes.js';
import { originalDstCluster } from './schema-clusters.js';
import { FLOW_CONTROL_FILTER_NAME } from '../filters/flow-control/factory.js';
import { NO_FLOW_CONTROL } from './policies.js';
import { compileComponents } from './compile-components.js';
import { compileInvocation } from './compile-invocation.js';
import { builtinComponentRegistry } from '../components/index.js';
import type { ComponentRegistry } from '../components/registry.js';

/** Istio's inbound passthrough source address (IPv4); the app sees inbound traffic from it. */
const INBOUND_PASSTHROUGH_SOURCE = '127.0.0.6';
import { listenerSchema, type ParsedConfig, type ParsedListener } from './schema.js';

export { DEFAULT_HTTP_FILTERS } from './compile-filters.js';

export interface CompileOptions {
  readonly filters: FilterRegistry;
  /** Snapshot.version, chosen by the caller (the watcher counts loads). */
  readonly version: string;
  /** Environment for node defaults (POD_NAME, POD_NAMESPACE, ...). Default process.env. */
  readonly env?: Env;
  /** File name used in error messages. */
  readonly file?: string;
  /** Maps problems to line:col; load.ts passes one over the parsed YAML. */
  readonly locate?: Locator;
  /** Checked policy documents (load.ts, policies.ts); none by default. */
  readonly flowControl?: FlowControlSettings;
  /** Component types for `components:`; the built-in ones by default. */
  readonly components?: ComponentRegistry;
}

const INTERCEPTION_PATH = ['sidecar', 'traffic', 'interception'];

/** Compile; throws one ConfigError listing every problem. */
export function compileConfig(cfg: ParsedConfig, opts: CompileOptions): Snapshot {
  const problems = new ProblemList();
  const env = opts.env ?? process.env;
  const interception = cfg.sidecar.traffic.interception;

  // --- clusters ---
  const clusters: Record<string, ClusterSpec> = {};
  const endpoints: Record<string, LoadAssignment> = {};
  cfg.clusters.forEach((c, i) => {
    if (clusters[c.cluster.name]) problems.add(['clusters', i, 'name'], `duplicate cluster name '${c.cluster.name}'`);
    clusters[c.cluster.name] = c.cluster;
    endpoints[c.cluster.name] = c.loadAssignment;
  });
  for (const name of [PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER]) {
    if (clusters[name]) continue;
    const c = originalDstCluster(name, name === INBOUND_PASSTHROUGH_CLUSTER ? INBOUND_PASSTHROUGH_SOURCE : undefined);
    clusters[name] = c.cluster;
    endpoints[name] = c.loadAssignment;
  }
  const appId = cfg.app.id ?? env.APP_ID ?? 'default';
  const node = nodeInfo(cfg, appId, env);
  const invocation = compileInvocation(cfg, node.namespace, new Set(Object.keys(clusters)), problems, appId);
  for (const c of invocation.clusters) {
    clusters[c.cluster.name] = c.cluster;
    endpoints[c.cluster.name] = c.loadAssignment;
  }
  const clusterNames = new Set(Object.keys(clusters));

  // --- route configurations ---
  const routeConfigs: Record<string, RouteConfigSpec> = {};
  const addRouteConfig = (rc: RouteConfigSpec, base: ConfigPath, namePath: ConfigPath) => {
    if (routeConfigs[rc.name]) problems.add(namePath, `duplicate route configuration name '${rc.name}'`);
    routeConfigs[rc.name] = checkRouteConfig(rc, base, clusterNames, opts.filters, problems);
  };
  if (interception.enabled) {
    routeConfigs[VIRTUAL_OUTBOUND] = captureRouteConfig(VIRTUAL_OUTBOUND, PASSTHROUGH_CLUSTER);
    routeConfigs[VIRTUAL_INBOUND] = captureRouteConfig(VIRTUAL_INBOUND, INBOUND_PASSTHROUGH_CLUSTER);
  }
  cfg.routes.forEach((rc, i) => addRouteConfig(rc, ['routes', i], ['routes', i, 'name']));
  if (invocation.routeConfig) routeConfigs[invocation.routeConfig.name] = invocation.routeConfig;
  cfg.listeners.forEach((l, i) => {
    if (l.routes) addRouteConfig({ name: l.name, ...l.routes }, ['listeners', i, 'routes'], ['listeners', i, 'routes']);
  });

  // --- flow control: one filter at the front of every HTTP chain, only when a policy is in force ---
  const flowControl = opts.flowControl ?? NO_FLOW_CONTROL;
  cfg.listeners.forEach((l, i) =>
    l.httpFilters?.forEach((f, j) => {
      if (opts.filters.get(f.name)?.name === FLOW_CONTROL_FILTER_NAME) {
        problems.add(['listeners', i, 'httpFilters', j, 'name'], `${FLOW_CONTROL_FILTER_NAME} is added by the compiler when FlowControlPolicy documents exist; do not list it`);
      }
    }),
  );
  let flowFilter: FilterConfigSpec | null = null;
  if (flowControl.policies.length > 0) {
    if (!opts.filters.get(FLOW_CONTROL_FILTER_NAME)) problems.add(['flowControl'], `flow-control policies need the http filter ${FLOW_CONTROL_FILTER_NAME}, which is not registered`);
    flowFilter = { name: FLOW_CONTROL_FILTER_NAME, config: { policies: flowControl.policies }, disabled: false };
  }
  const withFlow = (chain: FilterConfigSpec[]): FilterConfigSpec[] => (flowFilter === null ? chain : [flowFilter, ...chain]);

  // --- listeners ---
  const listeners: ListenerSpec[] = [];
  const listenerPaths: ConfigPath[] = [];
  if (interception.enabled) {
    const capture = [
      [VIRTUAL_OUTBOUND, interception.outboundPort, 'outbound-capture', 'OUTBOUND', PASSTHROUGH_CLUSTER, 'outboundPort'],
      [VIRTUAL_INBOUND, interception.inboundPort, 'inbound-capture', 'INBOUND', INBOUND_PASSTHROUGH_CLUSTER, 'inboundPort'],
    ] as const;
    for (const [name, port, kind, direction, tcpCluster, key] of capture) {
      const parsed = listenerSchema.parse({ name, port, protocol: 'auto', routeConfig: name, tcpCluster, trafficDirection: direction });
      listeners.push(toListenerSpec(parsed, kind, withFlow(compileHttpFilters(undefined, [...INTERCEPTION_PATH, key], opts.filters, problems))));
      listenerPaths.push([...INTERCEPTION_PATH, key]);
    }
  }
  cfg.listeners.forEach((l, i) => {
    const at = ['listeners', i];
    if (listeners.some((x) => x.name === l.name)) problems.add([...at, 'name'], `duplicate listener name '${l.name}'`);
    if (l.routeConfig !== undefined && !routeConfigs[l.routeConfig]) {
      const known = cfg.routes.map((r) => r.name);
      problems.add([...at, 'routeConfig'], `unknown route configuration '${l.routeConfig}' (defined: ${known.length ? known.join(', ') : 'none'})`);
    }
    if (l.tcpCluster !== undefined && !clusterNames.has(l.tcpCluster)) problems.add([...at, 'tcpCluster'], `unknown cluster '${l.tcpCluster}'`);
    const filters = l.protocol === 'tcp' ? [] : withFlow(compileHttpFilters(l.httpFilters, l.httpFilters ? [...at, 'httpFilters'] : [...at, 'name'], opts.filters, problems));
    listeners.push(toListenerSpec(l, 'plain', filters));
    listenerPaths.push([...at, 'port']);
  });
  if (invocation.listener) {
    listeners.push(toListenerSpec(invocation.listener, 'plain', withFlow(compileHttpFilters(undefined, ['invocation'], opts.filters, problems))));
    listenerPaths.push(['invocation', 'port']);
  }
  checkAddresses(cfg, listeners, listenerPaths, problems);
  const components = compileComponents(cfg.components, opts.components ?? builtinComponentRegistry(), problems);

  problems.throwIfAny(opts.file ?? 'config', opts.locate);

  const snapshot: Snapshot = {
    version: opts.version,
    source: 'yaml',
    node,
    mode: cfg.mode,
    sidecar: {
      port: cfg.sidecar.port,
      grpcPort: cfg.sidecar.grpcPort,
      metricsPort: cfg.sidecar.metricsPort,
      adminPort: cfg.sidecar.adminPort,
      adminAddress: cfg.sidecar.adminAddress,
      prometheusPort: cfg.sidecar.prometheusPort,
      readinessPort: cfg.sidecar.readinessPort,
      interception: { ...interception },
    },
    app: { id: appId, port: cfg.app.port, address: cfg.app.address, protocol: cfg.app.protocol },
    listeners,
    routeConfigs,
    clusters,
    endpoints,
    accessLog: { ...cfg.accessLog },
    tcpCopy: { ...cfg.tcpCopy },
    flowControl,
    components,
    invocation: invocation.settings,
    drainTimeMs: cfg.drainTime,
    concurrency: cfg.concurrency,
    logLevel: cfg.logLevel,
  };
  // Copy through JSON: the Snapshot must not share objects with the parsed config, and this
  // proves it is plain data.
  return deepFreeze(JSON.parse(JSON.stringify(snapshot)) as Snapshot);
}

function toListenerSpec(l: ParsedListener, kind: ListenerSpec['kind'], httpFilters: ListenerSpec['httpFilters']): ListenerSpec {
  return {
    name: l.name,
    address: l.address,
    port: l.port,
    kind,
    direction: l.trafficDirection,
    protocol: l.protocol,
    routeConfigName: l.routeConfig ?? (l.routes ? l.name : ''),
    tcpCluster: l.tcpCluster ?? '',
    httpFilters,
    http: {
      requestTimeoutMs: l.requestTimeout,
      requestHeadersTimeoutMs: l.requestHeadersTimeout,
      idleTimeoutMs: l.idleTimeout,
      maxRequestHeadersBytes: l.maxRequestHeaders,
      useRemoteAddress: l.useRemoteAddress,
      generateRequestId: l.generateRequestId,
      serverName: l.serverName,
      maxReplayBufferBytes: l.perRequestBufferLimit,
    },
  };
}

const WILDCARDS = new Set(['0.0.0.0', '::']);
const SIDECAR_PORTS = ['port', 'grpcPort', 'metricsPort', 'adminPort', 'prometheusPort', 'readinessPort'] as const;

/** Two listeners on one address:port (a wildcard address overlaps every address), or on a sidecar server's port. */
function checkAddresses(cfg: ParsedConfig, listeners: readonly ListenerSpec[], paths: readonly ConfigPath[], problems: ProblemList): void {
  listeners.forEach((l, i) => {
    if (l.port === 0) return;
    for (let j = 0; j < i; j++) {
      const o = listeners[j]!;
      if (o.port !== l.port) continue;
      if (o.address === l.address || WILDCARDS.has(o.address) || WILDCARDS.has(l.address)) {
        problems.add(paths[i]!, `listener '${l.name}' on ${l.address}:${l.port} clashes with listener '${o.name}' on ${o.address}:${o.port}`);
        return;
      }
    }
    for (const key of SIDECAR_PORTS) {
      if (cfg.sidecar[key] === l.port) {
        problems.add(paths[i]!, `listener '${l.name}' uses port ${l.port}, which sidecar.${key} already uses`);
        return;
      }
    }
  });
}

function nodeInfo(cfg: ParsedConfig, appId: string, env: Env): NodeInfo {
  const n = cfg.node;
  const namespace = n.namespace ?? env.POD_NAMESPACE ?? 'default';
  const workloadName = n.workloadName ?? env.ISTIO_META_WORKLOAD_NAME ?? appId;
  const podName = env.POD_NAME ?? workloadName;
  const ip = env.INSTANCE_IP ?? '127.0.0.1';
  return {
    id: n.id ?? `sidecar~${ip}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: n.cluster ?? workloadName,
    workloadName,
    namespace,
    canonicalService: n.canonicalService ?? workloadName,
    canonicalRevision: n.canonicalRevision ?? 'latest',
    meshId: n.meshId ?? env.ISTIO_META_MESH_ID ?? 'cluster.local',
  };
}
