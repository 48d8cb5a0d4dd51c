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
import { circuitBreakerFactory } from './circuit-breaker/index.js';
import { tracingFactory } from './tracing/index.js';
import { flowControlFactory } from './flow-control/index.js';

export const BUILTIN_FILTERS: readonly HttpFilterFactory<any, any>[] = [tracingFactory, istioStatsFactory, accessLogFactory, faultFactory, localRateLimitFactory, circuitBreakerFactory, flowControlFactory, routerFilter];

/** Idempotent: registering the same factories twice is a no-op. */
export function registerBuiltinFilters(registry: FilterRegistry): FilterRegistry {
  return registry.registerAll(BUILTIN_FILTERS);
}

export function builtinFilterRegistry(): FilterRegistry {
  return registerBuiltinFilters(new FilterRegistry());
}

export { FilterRegistry } from './registry.js';
export * from './types.js';
