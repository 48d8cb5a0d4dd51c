/**
 * The built-in HTTP filters, registered explicitly from this one list (never through import
 * side effects). Issue "Filter chain and flow-control policies" adds rate limit, circuit breaker,
 * tracing and tcp-copy here.
 */
import type { HttpFilterFactory } from './types.js';
import { FilterRegistry } from './registry.js';
import { routerFilter } from './router/index.js';
import { istioStatsFactory } from './istio-stats/index.js';
import { accessLogFactory } from './access-log/index.js';
import { faultFactory } from './fault/index.js';
import { localRateLimitFactory } from './local-ratelimit/index.js';

export const BUILTIN_FILTERS: readonly HttpFilterFactory<any, any>[] = [istioStatsFactory, accessLogFactory, faultFactory, localRateLimitFactory, routerFilter];

/** Idempotent: registering the same factories twice is a no-op. */
export function registerBuiltinFilters(registry: FilterRegistry): FilterRegistry {
  return registry.registerAll(BUILTIN_FILTERS);
}

export function builtinFilterRegistry(): FilterRegistry {
  return registerBuiltinFilters(new FilterRegistry());
}

export { FilterRegistry } from './registry.js';
export * from './types.js';
