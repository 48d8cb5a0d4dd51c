/**
 * Service invocation → ordinary proxy configuration, so an invocation takes the same outbound
 * path as the app's own traffic (routing, filters, retries, metrics, tracing):
 *
 * - one cluster `invoke|<appId>` per app id resolved by `nameResolution` (static endpoints, or a
 *   STRICT_DNS host made from the DNS template); `invocation.apps` names existing clusters instead;
 * - a route configuration with one virtual host per app id (domain = the app id, which the
 *   Invoker sends as Host) routing `/` to its cluster. No catch-all: an unknown app id gets the
 *   proxy's own 404 route_not_found (flag NR), which the Invoker turns into a not-found error;
 * - the OUTBOUND listener `capa-invocation` on 127.0.0.1:`invocation.port`.
 *
 * Precedence when one app id appears in several places: invocation.apps, then
 * nameResolution.static, then nameResolution.dns (a duplicate inside one list is an error).
 * Without any app id there is no listener (nothing to bind, nothing to clash with).
 */
import { clusterSchema, type ParsedCluster } from './schema-clusters.js';
import { listenerSchema, type ParsedConfig, type ParsedListener } from './schema.js';
import { namedRouteConfig } from './schema-routes.js';
import { formatPath, problemsFromZod, type ConfigPath, type ProblemList } from './locate.js';
import type { InvocationAppSpec, InvocationSettings, RetryPolicySpec, RouteConfigSpec, VirtualHostSpec } from './snapshot.js';

export const INVOCATION_LISTENER = 'capa-invocation';

export function invokeClusterName(appId: string): string {
  return `invoke|${appId}`;
}

export interface CompiledInvocation {
  /** Clusters made by name resolution (empty when every app id names an existing cluster). */
  readonly clusters: readonly ParsedCluster[];
  /** The route configuration and listener, both named INVOCATION_LISTENER; null without app ids. */
  readonly routeConfig: RouteConfigSpec | null;
  readonly listener: ParsedListener | null;
  readonly settings: InvocationSettings;
}

interface Entry {
  readonly app: InvocationAppSpec;
  readonly timeoutMs: number;
  readonly retryPolicy: RetryPolicySpec | null;
}

/**
 * `userClusters` are the names under `clusters:`; `namespace` fills `{namespace}` in the DNS
 * template (node.namespace, else POD_NAMESPACE, else "default").
 */
export function compileInvocation(cfg: ParsedConfig, namespace: string, userClusters: ReadonlySet<string>, problems: ProblemList): CompiledInvocation {
  const inv = cfg.invocation;
  const nr = cfg.nameResolution;
  const entries = new Map<string, Entry>();
  const clusters: ParsedCluster[] = [];
  const defaults = { timeoutMs: inv.timeout, retryPolicy: inv.retryPolicy ?? null };

  /**
   * Domain matching ignores case, so app ids do too. `idPath` is where this id is written; false
   * when it is a duplicate in its own list or a stronger source already has it.
   */
  const claim = (appId: string, idPath: ConfigPath, seen: Map<string, ConfigPath>): boolean => {
    const key = appId.toLowerCase();
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
    entries.set(a.appId.toLowerCase(), {
      app: { appId: a.appId, cluster: a.cluster, resolvedBy: 'cluster' },
      timeoutMs: a.timeout ?? defaults.timeoutMs,
      retryPolicy: a.retryPolicy ?? defaults.retryPolicy,
    });
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
    entries.set(a.appId.toLowerCase(), { app: { appId: a.appId, cluster: name, resolvedBy: 'static' }, ...defaults });
  });

  if (nr.type === 'dns') {
    const dns = nr.dns;
    const seen = new Map<string, ConfigPath>();
    dns.apps.forEach((appId, i) => {
      const at = ['nameResolution', 'dns', 'apps', i];
      if (!claim(appId, at, seen)) return;
      const name = synthesised(appId, at);
      if (name === undefined) return;
      const host = dns.template.replaceAll('{appId}', appId).replaceAll('{namespace}', namespace);
      const parsed = clusterSchema.safeParse({ name, type: 'STRICT_DNS', endpoints: [`${host}:${dns.port}`], dnsRefreshRate: `${dns.refreshRate}ms` });
      if (!parsed.success) {
        problems.add(at, `the DNS template makes ${JSON.stringify(host)} for app id '${appId}', which is not a valid host name`);
        return;
      }
      clusters.push(parsed.data);
      entries.set(appId.toLowerCase(), { app: { appId, cluster: name, resolvedBy: 'dns' }, ...defaults });
    });
  }

  const listed = [...entries.values()];
  const settings: InvocationSettings = {
    listener: listed.length ? INVOCATION_LISTENER : '',
    timeoutMs: inv.timeout,
    apps: listed.map((e) => e.app),
  };
  if (listed.length === 0) return { clusters, routeConfig: null, listener: null, settings };

  cfg.listeners.forEach((l, i) => {
    if (l.name === INVOCATION_LISTENER) problems.add(['listeners', i, 'name'], `listener name '${INVOCATION_LISTENER}' is reserved for service invocation`);
  });
  cfg.routes.forEach((r, i) => {
    if (r.name === INVOCATION_LISTENER) problems.add(['routes', i, 'name'], `route configuration name '${INVOCATION_LISTENER}' is reserved for service invocation`);
  });
  return { clusters, routeConfig: routeConfig(listed), listener: invocationListener(inv.port), settings };
}

function routeConfig(entries: readonly Entry[]): RouteConfigSpec {
  const rc = namedRouteConfig.parse({
    name: INVOCATION_LISTENER,
    virtualHosts: entries.map((e) => ({
      name: e.app.appId,
      domains: [e.app.appId],
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
