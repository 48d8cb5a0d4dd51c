import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { parseLocalRateLimitConfig, type LocalRateLimitConfig } from './config.js';
import { keyExtractor, perRouteKey } from './key.js';
import { LocalRateLimitFilter, type RateLimitShared } from './filter.js';
import { acquireLimiter, type Limiter } from './limiter.js';
import { rateLimitMetrics, routeCounters } from './metrics.js';
import { workerCount } from './cluster.js';

export const LOCAL_RATELIMIT_FILTER_NAME = 'envoy.filters.http.local_ratelimit';
export const LOCAL_RATELIMIT_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/**
 * Per-route overrides use the same schema and replace the listener's config for that route
 * (with their own buckets and in-flight count); `{disabled: true}` turns the filter off there.
 * Limiters and Redis clients are taken when built and released in close().
 */
export const localRateLimitFactory: HttpFilterFactory<LocalRateLimitConfig, LocalRateLimitConfig> = {
  name: LOCAL_RATELIMIT_FILTER_NAME,
  typeUrl: LOCAL_RATELIMIT_TYPE_URL,
  aliases: ['capa.filters.http.ratelimit', 'ratelimit'],
  parseConfig: parseLocalRateLimitConfig,
  parsePerRoute: parseLocalRateLimitConfig,

  build(config: LocalRateLimitConfig, ctx: FilterContext): BuiltFilter<LocalRateLimitConfig> {
    const listener = ctx.listenerName;
    const m = rateLimitMetrics(ctx.registry);
    const counters = routeCounters(m, listener);
    const releases: (() => void)[] = [];
    const workers = workerCount();
    const make = (cfg: LocalRateLimitConfig, perRoute: boolean): (() => HttpFilter) | null => {
      if (cfg.disabled || (cfg.rate === null && cfg.maxInFlight === 0)) return null;
      let limiter: Limiter | null = null;
      if (cfg.rate !== null) {
        const lease = acquireLimiter({ ...cfg, rate: cfg.rate }, { listener, registry: ctx.registry, logger: ctx.logger });
        releases.push(lease.release);
        limiter = lease.limiter;
      }
      const keyOf = keyExtractor(cfg.by);
      const errors = { passed: m.backendErrors.labels(listener, cfg.scope, 'passed'), rejected: m.backendErrors.labels(listener, cfg.scope, 'rejected') };
      let lastLog = 0;
      const shared: RateLimitShared = {
        limiter,
        keyOf: perRoute ? perRouteKey(keyOf) : keyOf,
        limit: String(cfg.rate?.points ?? 0),
        statusCode: cfg.statusCode,
        failOpen: cfg.failOpen,
        responseHeaders: cfg.responseHeaders,
        inFlight: cfg.maxInFlight > 0 ? { n: 0, max: Math.max(1, Math.ceil(cfg.maxInFlight / workers)) } : null,
        counters,
        onBackendError(e, passed) {
          (passed ? errors.passed : errors.rejected).inc();
          const now = Date.now();
          if (now - lastLog < 10_000) return;
          lastLog = now;
          const error = e instanceof Error ? e.message : String(e);
          ctx.logger.warn({ listener, scope: cfg.scope, error, failOpen: cfg.failOpen }, 'rate limit backend failed');
        },
      };
      return () => new LocalRateLimitFilter(shared);
    };
    const listenerLevel = make(config, false);
    return {
      forRoute: (perRoute) => (perRoute === undefined ? listenerLevel : make(perRoute, true)),
      close() {
        for (const r of releases.splice(0)) r();
      },
    };
  },
};
