/**
 * Route configurations at compile time: every cluster a route names must exist (Envoy's
 * validate_clusters), per-filter overrides are checked by their factories, and the two
 * generated route configurations of the capture listeners.
 */
import type { FilterRegistry } from '../filters/registry.js';
import type { RouteConfigSpec, RouteSpec, VirtualHostSpec } from './snapshot.js';
import { compilePerFilterConfig } from './compile-filters.js';
import type { ConfigPath, ProblemList } from './locate.js';
import { namedRouteConfig } from './schema-routes.js';

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const VIRTUAL_INBOUND = 'virtualInbound';

/**
 * Check one route configuration; `base` is its YAML path (`routes[i]` or `listeners[i].routes`).
 * Returns it with per-filter overrides keyed by canonical filter names.
 */
export function checkRouteConfig(
  rc: RouteConfigSpec,
  base: ConfigPath,
  clusters: ReadonlySet<string>,
  reg: FilterRegistry,
  problems: ProblemList,
): RouteConfigSpec {
  const virtualHosts = rc.virtualHosts.map((vh, v): VirtualHostSpec => {
    const vhPath = [...base, 'virtualHosts', v];
    const routes = vh.routes.map((r, i): RouteSpec => {
      const rPath = [...vhPath, 'routes', i];
      const a = r.action;
      if (a.kind === 'route') {
        if (a.weightedClusters.length === 0 && !clusters.has(a.cluster)) {
          problems.add([...rPath, 'route', 'cluster'], `unknown cluster '${a.cluster}'`);
        }
        a.weightedClusters.forEach((w, k) => {
          if (!clusters.has(w.name)) problems.add([...rPath, 'route', 'weightedClusters', 'clusters', k, 'name'], `unknown cluster '${w.name}'`);
        });
      }
      const typedPerFilterConfig = compilePerFilterConfig(r.typedPerFilterConfig, [...rPath, 'typedPerFilterConfig'], reg, problems);
      return { ...r, typedPerFilterConfig };
    });
    const typedPerFilterConfig = compilePerFilterConfig(vh.typedPerFilterConfig, [...vhPath, 'typedPerFilterConfig'], reg, problems);
    return { ...vh, routes, typedPerFilterConfig };
  });
  return { ...rc, virtualHosts };
}

/** The route configuration of a capture listener: everything to one ORIGINAL_DST cluster, no timeout. */
export function captureRouteConfig(name: string, cluster: string): RouteConfigSpec {
  const vhost = cluster === PASSTHROUGH_CLUSTER ? 'allow_any' : 'inbound|http|0';
  return namedRouteConfig.parse({
    name,
    virtualHosts: [{ name: vhost, domains: ['*'], routes: [{ name: vhost, match: { prefix: '/' }, route: { cluster, timeout: '0s' } }] }],
  });
}
