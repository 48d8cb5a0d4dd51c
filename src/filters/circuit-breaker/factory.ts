import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory, HttpStream } from '../types.js';
import { parseCircuitBreakerConfig, type BreakerSettings, type CircuitBreakerConfig } from './config.js';
import { acquireBreaker, type Breaker } from './breaker.js';
import { CircuitBreakerFilter, type CircuitShared } from './filter.js';

export const CIRCUIT_BREAKER_FILTER_NAME = 'capa.filters.http.circuit_breaker';
export const CIRCUIT_BREAKER_TYPE_URL = 'type.googleapis.com/capa.filters.http.circuit_breaker.v1.CircuitBreaker';

/**
 * Per-route overrides use the same schema and replace the listener's config for that route;
 * `{disabled: true}` turns the filter off there. Breakers are taken lazily (the first request
 * for a cluster / route) and released in close(); see breaker.ts for sharing across reloads.
 */
export const circuitBreakerFactory: HttpFilterFactory<CircuitBreakerConfig, CircuitBreakerConfig> = {
  name: CIRCUIT_BREAKER_FILTER_NAME,
  typeUrl: CIRCUIT_BREAKER_TYPE_URL,
  aliases: ['circuit_breaker'],
  parseConfig: parseCircuitBreakerConfig,
  parsePerRoute: parseCircuitBreakerConfig,

  build(config: CircuitBreakerConfig, ctx: FilterContext): BuiltFilter<CircuitBreakerConfig> {
    const releases: (() => void)[] = [];
    const make = (cfg: CircuitBreakerConfig): (() => HttpFilter) | null => {
      if (cfg.disabled) return null;
      const settings: BreakerSettings = {
        errorThresholdPercentage: cfg.errorThresholdPercentage,
        volumeThreshold: cfg.volumeThreshold,
        resetTimeoutMs: cfg.resetTimeoutMs,
        timeoutMs: cfg.timeoutMs,
        rollingCountTimeoutMs: cfg.rollingCountTimeoutMs,
        rollingCountBuckets: cfg.rollingCountBuckets,
      };
      const byRoute = cfg.scope === 'route';
      const breakers = new Map<string, Breaker>();
      const shared: CircuitShared = {
        breakerFor(s: HttpStream): Breaker | null {
          const cluster = s.clusterName;
          if (cluster === '') return null;
          const route = byRoute ? s.routeName : '';
          const key = byRoute ? `${route}\n${cluster}` : cluster;
          let b = breakers.get(key);
          if (b === undefined) {
            const lease = acquireBreaker(settings, { cluster, route }, { registry: ctx.registry, logger: ctx.logger });
            releases.push(lease.release);
            b = lease.breaker;
            breakers.set(key, b);
          }
          return b;
        },
      };
      return () => new CircuitBreakerFilter(shared);
    };
    const listenerLevel = make(config);
    return {
      forRoute: (perRoute) => (perRoute === undefined ? listenerLevel : make(perRoute)),
      close() {
        for (const r of releases.splice(0)) r();
      },
    };
  },
};
