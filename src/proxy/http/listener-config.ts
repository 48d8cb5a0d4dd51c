/**
 * Compiles one HTTP listener of a Snapshot: builds each filter factory once, reduces the chain
 * per route (per-route overrides applied, disabled filters dropped, hooks detected) and builds
 * the route table. Runs when a Snapshot is swapped in, never per request.
 */
import type { ListenerSpec, Snapshot, RouteConfigSpec } from '../../config/snapshot.js';
import { ConfigError } from '../../errors.js';
import type { FilterRegistry } from '../../filters/registry.js';
import { ROUTER_FILTER_NAME, type BuiltFilter, type FilterContext, type HttpFilter } from '../../filters/types.js';
import { RouteTable } from '../router/route-table.js';
import { compileAction, mergeMutations, type ReducedChain, type RouteData } from './compiled-route.js';

export interface HttpListenerConfig {
  readonly spec: ListenerSpec;
  readonly routes: RouteTable<RouteData>;
  /** Chain used when no route matched (filters still see the request, then 404). */
  readonly defaultChain: ReducedChain;
  /** Release what the filters built (timers, files). */
  close(): void;
}

interface BuiltEntry {
  readonly name: string;
  readonly built: BuiltFilter<unknown>;
  readonly parsePerRoute: ((raw: unknown) => unknown) | undefined;
}

function reduce(entries: readonly BuiltEntry[], override: (name: string) => unknown): ReducedChain {
  const create: (() => HttpFilter)[] = [];
  let hasRequestData = false;
  let hasResponseHeaders = false;
  let hasResponseData = false;
  let hasComplete = false;
  for (const e of entries) {
    const raw = override(e.name);
    if (raw !== undefined && raw !== null && typeof raw === 'object' && (raw as { disabled?: unknown }).disabled === true) continue;
    const perRoute = raw === undefined ? undefined : e.parsePerRoute ? e.parsePerRoute(raw) : undefined;
    const factory = e.built.forRoute(perRoute);
    if (factory === null) continue;
    const sample = factory();
    hasRequestData ||= sample.onRequestData !== undefined;
    hasResponseHeaders ||= sample.onResponseHeaders !== undefined;
    hasResponseData ||= sample.onResponseData !== undefined;
    hasComplete ||= sample.onComplete !== undefined;
    create.push(factory);
  }
  return { create, hasRequestData, hasResponseHeaders, hasResponseData, hasComplete };
}

const EMPTY_ROUTE_CONFIG: RouteConfigSpec = {
  name: '',
  virtualHosts: [],
  requestHeadersToAdd: [],
  requestHeadersToRemove: [],
  responseHeadersToAdd: [],
  responseHeadersToRemove: [],
};

export function compileHttpListener(
  spec: ListenerSpec,
  snap: Snapshot,
  registry: FilterRegistry,
  ctx: FilterContext,
): HttpListenerConfig {
  const entries: BuiltEntry[] = [];
  for (const f of spec.httpFilters) {
    if (f.name === ROUTER_FILTER_NAME || f.disabled) continue;
    const factory = registry.get(f.name);
    if (!factory) throw new ConfigError(`listener ${spec.name}: unknown http filter ${f.name}`);
    const cfg = factory.parseConfig(f.config ?? {});
    const built = factory.build(cfg, ctx) as BuiltFilter<unknown>;
    entries.push({ name: factory.name, built, parsePerRoute: factory.parsePerRoute?.bind(factory) });
  }
  const rc = snap.routeConfigs[spec.routeConfigName] ?? EMPTY_ROUTE_CONFIG;
  const aliasOf = (name: string): string[] => {
    const f = registry.get(name);
    return f ? [f.name, ...(f.aliases ?? [])] : [name];
  };
  const routes = new RouteTable<RouteData>(rc, (r, vh) => {
    const chain = reduce(entries, (name) => {
      for (const n of aliasOf(name)) {
        if (r.typedPerFilterConfig[n] !== undefined) return r.typedPerFilterConfig[n];
      }
      for (const n of aliasOf(name)) {
        if (vh.typedPerFilterConfig[n] !== undefined) return vh.typedPerFilterConfig[n];
      }
      return undefined;
    });
    const m = mergeMutations(r, vh, rc);
    return { chain, action: compileAction(r, vh), requestHeaders: m.request, responseHeaders: m.response };
  });
  const defaultChain = reduce(entries, () => undefined);
  return {
    spec,
    routes,
    defaultChain,
    close() {
      for (const e of entries) e.built.close?.();
    },
  };
}
