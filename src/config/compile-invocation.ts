/**
 * Service invocation → ordinary proxy configuration, so an invocation takes the same outbound
 * path as the app's own traffic (routing, filters, retries, metrics, tracing):
 *
 * - one cluster `invoke|<appId>` per app id listed for name resolution (static endpoints, or a
 *   STRICT_DNS host made from the DNS template); `invocation.apps` names existing clusters instead;
 * - with `nameResolution.type: dns`, one DYNAMIC_FORWARD_PROXY cluster `invoke|*` for every app id
 *   listed nowhere: the app id (the Host the Invoker sends) becomes the template's DNS name when a
 *   request first asks for it, through a DNS cache (src/proxy/cluster/dynamic-forward-proxy.ts);
 * - a route configuration with one virtual host per listed app id (domains: the app id and its
 *   `app.<own namespace>` form) routing `/` to its cluster, plus, with `type: dns`, a catch-all
 *   `*` to `invoke|*`. Without the catch-all (`type: static`) an unknown app id gets the proxy's
 *   own 404 route_not_found (flag NR), which the Invoker turns into a not-found error;
 * - the OUTBOUND listener `capa-invocation` on 127.0.0.1:`invocation.port`.
 *
 * App ids are `app` or Dapr's `app.namespace`; `app.<own namespace>` is the same app as `app`.
 * Our own app id, unless listed, is our own app (`app.address`:`app.port`), as Dapr invokes itself.
 * Precedence when one app appears in several places: invocation.apps, then nameResolution.static,
 * then nameResolution.dns (a duplicate inside one list is an error). Service invocation is on when
 * the configuration has a `nameResolution` or `invocation` section or lists an app id; without it
 * (or with `type: static` and no app id) there is no listener: nothing to bind, nothing to clash with.
 */
import { clusterSchema, type ParsedCluster } from './schema-clusters.js';
import { listenerSchema, type ParsedConfig, type ParsedListener } from './schema.js';
import { namedRouteConfig } from './schema-routes.js';
import { DEFAULT_INVOCATION, DEFAULT_NAME_RESOLUTION } from './schema-invocation.js';
import { parseAppId } from './app-id.js';
import { formatPath, problemsFromZod, type ConfigPath, type ProblemList } from './locate.js';
import type { ClusterSpec, InvocationAppSpec, InvocationSettings, RetryPolicySpec, RouteConfigSpec, VirtualHostSpec } from './snapshot.js';

export const INVOCATION_LISTENER = 'capa-invocation';
/** The dynamic forward proxy cluster of `type: dns` (no app id can be `*`, so no clash with invoke|<appId>). */
export const ON_DEMAND_CLUSTER = 'invoke|*';

export function invokeClusterName(appId: string): string {
  return `invoke|${appId}`;
}

export interface CompiledInvocation {
  /** Clusters made by name resolution (empty when every app id names an existing cluster and resolution is static). */
  readonly clusters: readonly ParsedCluster[];
  /** The route configuration and listener, both named INVOCATION_LISTENER; null when invocation is off. */
  readonly routeConfig: RouteConfigSpec | null;
  readonly listener: ParsedListener | null;
  readonly settings: InvocationSettings;
}

interface Entry {
  readonly app: InvocationAppSpec;
  /** Host values routed to this app: the id as written, and `app.<own namespace>` for the short form. */
  readonly domains: readonly string[];
  readonly timeoutMs: number;
  readonly retryPolicy: RetryPolicySpec | null;
}

/**
 * `userClusters` are the names under `clusters:`; `namespace` is our own namespace (node.namespace,
 * else POD_NAMESPACE, else "default"): it fills `{namespace}` in the DNS template for app ids
 * without one, and `app.<namespace>` is the same app as `app`.
 */
export function compileInvocation(cfg: ParsedConfig, namespace: string, userClusters: ReadonlySet<string>, problems: ProblemList, ownAppId = ''): CompiledInvocation {
  const inv = cfg.invocation ?? DEFAULT_INVOCATION;
  const nr = cfg.nameResolution ?? DEFAULT_NAME_RESOLUTION;
  const configured = cfg.nameResolution !== undefined || cfg.invocation !== undefined;
  const entries = new Map<string, Entry>();
  const clusters: ParsedCluster[] = [];
  const defaults = { timeoutMs: inv.timeout, retryPolicy: inv.retryPolicy ?? null };
  const ownNamespace = namespace.toLowerCase();

  /** The id's identity: `app` for the short form and for `app.<own namespace>`, else `app.namespace` (lower case). */
  const keyOf = (appId: string): string => {
    const p = parseAppId(appId);
    if (p === undefined) return appId.toLowerCase();
    return p.namespace === undefined || p.namespace.toLowerCase() === ownNamespace ? p.app.toLowerCase() : appId.toLowerCase();
  };
  const domainsOf = (appId: string): string[] => {
    const p = parseAppId(appId);
    if (p === undefined || keyOf(appId) !== p.app.toLowerCase()) return [appId];
    return p.namespace === undefined ? [appId, `${appId}.${namespace}`] : [p.app, appId];
  };
  const entry = (appId: string, app: InvocationAppSpec, settings: { timeoutMs: number; retryPolicy: RetryPolicySpec | null }): Entry => ({ app, domains: domainsOf(appId), ...settings });

  /**
   * Domain matching ignores case, so app ids do too. `idPath` is where this id is written; false
   * when it is a duplicate in its own list or a stronger source already has it.
   */
  const claim = (appId: string, idPath: ConfigPath, seen: Map<string, ConfigPath>): boolean => {
    const key = keyOf(appId);
    const first = seen.get(key);
    if (first !== undefined) {
      problems.add(idPath, `duplicate app id '${appId}' (already at ${formatPath(first)})`);
      return false;
    }
    seen.set(key, idPath);
    return !entries.has(key);
  };
  const synthesised = (appId: string, at: ConfigPath): string | undefined => {
    const name = invokeClusterName(appId);
    if (!userClusters.has(name)) return name;
    problems.add(at, `app id '${appId}' needs the cluster name '${name}', which clusters: already uses; rename that cluster or map the app id in invocation.apps`);
    return undefined;
  };

  const explicit = new Map<string, ConfigPath>();
  inv.apps.forEach((a, i) => {
    const at = ['invocation', 'apps', i];
    if (!claim(a.appId, [...at, 'appId'], explicit)) return;
    if (!userClusters.has(a.cluster)) {
      const defined = cfg.clusters.map((c) => c.cluster.name);
      problems.add([...at, 'cluster'], `unknown cluster '${a.cluster}' (defined: ${defined.length ? defined.join(', ') : 'none'})`);
      return;
    }
    entries.set(
      keyOf(a.appId),
      entry(a.appId, { appId: a.appId, cluster: a.cluster, resolvedBy: 'cluster' }, { timeoutMs: a.timeout ?? defaults.timeoutMs, retryPolicy: a.retryPolicy ?? defaults.retryPolicy }),
    );
  });

  const statics = new Map<string, ConfigPath>();
  nr.static.apps.forEach((a, i) => {
    const at = ['nameResolution', 'static', 'apps', i];
    if (!claim(a.appId, [...at, 'appId'], statics)) return;
    const name = synthesised(a.appId, [...at, 'appId']);
    if (name === undefined) return;
    // The cluster schema checks the endpoints ("host:port", {address, port, weight}); its issue
    // paths (`endpoints[k]`) are the same under this entry.
    const parsed = clusterSchema.safeParse({ name, endpoints: a.endpoints });
    if (!parsed.success) {
      problems.addAll(problemsFromZod(parsed.error.issues, at));
      return;
    }
    clusters.push(parsed.data);
    entries.set(keyOf(a.appId), entry(a.appId, { appId: a.appId, cluster: name, resolvedBy: 'static' }, defaults));
  });

  let onDemand: ParsedCluster | null = null;
  if (nr.type === 'dns') {
    const dns = nr.dns;
    const seen = new Map<string, ConfigPath>();
    dns.apps.forEach((appId, i) => {
      const at = ['nameResolution', 'dns', 'apps', i];
      if (!claim(appId, at, seen)) return;
      const name = synthesised(appId, at);
      if (name === undefined) return;
      const p = parseAppId(appId)!;
      const host = dns.template.replaceAll('{appId}', p.app).replaceAll('{namespace}', p.namespace ?? namespace);
      const parsed = clusterSchema.safeParse({ name, type: 'STRICT_DNS', endpoints: [`${host}:${dns.port}`], dnsRefreshRate: `${dns.refreshRate}ms` });
      if (!parsed.success) {
        problems.add(at, `the DNS template makes ${JSON.stringify(host)} for app id '${appId}', which is not a valid host name`);
        return;
      }
      clusters.push(parsed.data);
      entries.set(keyOf(appId), entry(appId, { appId, cluster: name, resolvedBy: 'dns' }, defaults));
    });
    if (configured) {
      if (userClusters.has(ON_DEMAND_CLUSTER)) {
        const i = cfg.clusters.findIndex((c) => c.cluster.name === ON_DEMAND_CLUSTER);
        problems.add(['clusters', i, 'name'], `cluster name '${ON_DEMAND_CLUSTER}' is reserved for service invocation (nameResolution type dns resolves unlisted app ids through it)`);
      } else {
        onDemand = onDemandCluster(nr.dns, namespace);
        clusters.push(onDemand);
      }
    }
  }

  // Dapr calls its own app directly when the target is its own app id: with invocation on and an
  // app port, our app id (and app.<own namespace>) reaches app.address:app.port unless listed.
  if (configured && cfg.app.port > 0 && ownAppId !== '' && parseAppId(ownAppId)?.namespace === undefined && !entries.has(keyOf(ownAppId))) {
    const name = invokeClusterName(ownAppId);
    if (!userClusters.has(name)) {
      const parsed = clusterSchema.safeParse({ name, endpoints: [{ address: cfg.app.address, port: cfg.app.port }] });
      if (parsed.success) {
        clusters.push(parsed.data);
        entries.set(keyOf(ownAppId), entry(ownAppId, { appId: ownAppId, cluster: name, resolvedBy: 'static' }, defaults));
      }
    }
  }

  const listed = [...entries.values()];
  const on = listed.length > 0 || onDemand !== null;
  const settings: InvocationSettings = {
    listener: on ? INVOCATION_LISTENER : '',
    timeoutMs: inv.timeout,
    apps: listed.map((e) => e.app),
    onDemandCluster: onDemand === null ? '' : ON_DEMAND_CLUSTER,
  };
  if (!on) return { clusters, routeConfig: null, listener: null, settings };

  cfg.listeners.forEach((l, i) => {
    if (l.name === INVOCATION_LISTENER) problems.add(['listeners', i, 'name'], `listener name '${INVOCATION_LISTENER}' is reserved for service invocation`);
  });
  cfg.routes.forEach((r, i) => {
    if (r.name === INVOCATION_LISTENER) problems.add(['routes', i, 'name'], `route configuration name '${INVOCATION_LISTENER}' is reserved for service invocation`);
  });
  const all: Entry[] = onDemand === null ? listed : [...listed, { app: { appId: '*', cluster: ON_DEMAND_CLUSTER, resolvedBy: 'dns' }, domains: ['*'], ...defaults }];
  return { clusters, routeConfig: routeConfig(all), listener: invocationListener(inv.port), settings };
}

/** Envoy's dynamic forward proxy cluster with its DNS cache settings (lb_policy CLUSTER_PROVIDED). */
function onDemandCluster(dns: NonNullable<ParsedConfig['nameResolution']>['dns'], namespace: string): ParsedCluster {
  const base = clusterSchema.parse({ name: ON_DEMAND_CLUSTER, dnsRefreshRate: `${dns.refreshRate}ms` });
  const cluster: ClusterSpec = {
    ...base.cluster,
    type: 'DYNAMIC_FORWARD_PROXY',
    lbPolicy: 'CLUSTER_PROVIDED',
    dynamicForwardProxy: { nameTemplate: dns.template, defaultNamespace: namespace, port: dns.port, hostTtlMs: dns.hostTtl, maxHosts: dns.maxHosts },
  };
  return { cluster, loadAssignment: { clusterName: ON_DEMAND_CLUSTER, endpoints: [] } };
}

function routeConfig(entries: readonly Entry[]): RouteConfigSpec {
  const rc = namedRouteConfig.parse({
    name: INVOCATION_LISTENER,
    virtualHosts: entries.map((e) => ({
      name: e.app.appId,
      domains: e.domains,
      routes: [{ name: invokeClusterName(e.app.appId), match: { prefix: '/' }, route: { cluster: e.app.cluster, timeout: `${e.timeoutMs}ms` } }],
    })),
  });
  // Retry policies are already parsed (RetryPolicySpec), so they go in after the skeleton is.
  const virtualHosts = rc.virtualHosts.map((vh, v): VirtualHostSpec => {
    const retryPolicy = entries[v]!.retryPolicy;
    return { ...vh, routes: vh.routes.map((r) => (r.action.kind === 'route' ? { ...r, action: { ...r.action, retryPolicy } } : r)) };
  });
  return { ...rc, virtualHosts };
}

function invocationListener(port: number): ParsedListener {
  // Loopback only: the listener trusts whatever Host it is given, so only this pod may reach it.
  return listenerSchema.parse({ name: INVOCATION_LISTENER, address: '127.0.0.1', port, routeConfig: INVOCATION_LISTENER, trafficDirection: 'OUTBOUND' });
}
