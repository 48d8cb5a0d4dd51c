import { Counter, type Registry } from 'prom-client';

export type Decision = 'passed' | 'limited' | 'rejected_concurrency';

export interface RateLimitMetrics {
  readonly requests: Counter<'listener' | 'route' | 'decision'>;
  /** Backend (Redis, primary) failures, by what was done about them: passed (failOpen) or rejected. */
  readonly backendErrors: Counter<'listener' | 'scope' | 'action'>;
}

const byRegistry = new WeakMap<Registry, RateLimitMetrics>();

/** Envoy's local_rate_limit.{ok,rate_limited} plus the concurrency limit, one set per registry. */
export function rateLimitMetrics(registry: Registry): RateLimitMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      requests: new Counter({
        name: 'capa_ratelimit_requests_total',
        help: 'Requests seen by the rate limit filter, by decision',
        labelNames: ['listener', 'route', 'decision'],
        registers: [registry],
      }),
      backendErrors: new Counter({
        name: 'capa_ratelimit_backend_errors_total',
        help: 'Rate limit checks whose backend (Redis, primary process) failed',
        labelNames: ['listener', 'scope', 'action'],
        registers: [registry],
      }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

export interface RouteCounters {
  readonly passed: { inc(): void };
  readonly limited: { inc(): void };
  readonly rejectedConcurrency: { inc(): void };
}

/** Label children per route name, made on first use so the request path does no label lookups. */
export function routeCounters(m: RateLimitMetrics, listener: string): (route: string) => RouteCounters {
  const byRoute = new Map<string, RouteCounters>();
  return (route) => {
    let c = byRoute.get(route);
    if (!c) {
      c = {
        passed: m.requests.labels(listener, route, 'passed'),
        limited: m.requests.labels(listener, route, 'limited'),
        rejectedConcurrency: m.requests.labels(listener, route, 'rejected_concurrency'),
      };
      byRoute.set(route, c);
    }
    return c;
  };
}
