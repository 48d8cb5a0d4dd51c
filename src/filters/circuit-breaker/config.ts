/**
 * capa.filters.http.circuit_breaker.v1.CircuitBreaker: opossum's breaker per upstream cluster
 * (default) or per route. The same schema parses the listener config and per-route overrides
 * (an override replaces the listener's config for that route; `{disabled: true}` turns it off).
 *
 * ```yaml
 * scope: cluster                 # cluster (one breaker per cluster) | route (per route and cluster)
 * errorThresholdPercentage: 50   # opens when more than this % of the window's requests failed
 * volumeThreshold: 20            # ... and the window holds at least this many requests
 * resetTimeout: 10s              # open → half-open after this; one probe request goes through
 * timeout: 2s                    # a request slower than this counts as a failure (0 = off)
 * rollingCountTimeout: 10s       # the statistics window
 * rollingCountBuckets: 10
 * ```
 */
import { z } from 'zod';
import { durationMs } from '../../config/units.js';

/** A duration ("2s", "300ms") or a number of milliseconds (0 = off where allowed). */
const ms = z.union([z.number().int().min(0), durationMs]);

export const circuitBreakerConfigSchema = z
  .strictObject({
    '@type': z.string().optional(),
    disabled: z.boolean().optional(),
    scope: z.enum(['cluster', 'route']).default('cluster'),
    errorThresholdPercentage: z.number().min(0).max(100).default(50),
    volumeThreshold: z.number().int().min(0).default(20),
    resetTimeout: ms.default(10_000),
    timeout: ms.default(2000),
    rollingCountTimeout: ms.default(10_000),
    rollingCountBuckets: z.number().int().min(1).max(1000).default(10),
  })
  .superRefine((c, ctx) => {
    if (c.resetTimeout < 1) ctx.addIssue({ code: 'custom', message: 'resetTimeout must be at least 1ms', path: ['resetTimeout'] });
    if (c.rollingCountTimeout < c.rollingCountBuckets) {
      ctx.addIssue({ code: 'custom', message: 'rollingCountTimeout must be at least 1ms per bucket', path: ['rollingCountTimeout'] });
    }
  })
  .transform((c) => ({
    disabled: c.disabled === true,
    scope: c.scope,
    errorThresholdPercentage: c.errorThresholdPercentage,
    volumeThreshold: c.volumeThreshold,
    resetTimeoutMs: c.resetTimeout,
    timeoutMs: c.timeout,
    rollingCountTimeoutMs: c.rollingCountTimeout,
    rollingCountBuckets: c.rollingCountBuckets,
  }));

export type CircuitBreakerConfig = Readonly<z.output<typeof circuitBreakerConfigSchema>>;
/** What one breaker is built from (the config without scope / disabled). */
export type BreakerSettings = Omit<CircuitBreakerConfig, 'disabled' | 'scope'>;

export function parseCircuitBreakerConfig(raw: unknown): CircuitBreakerConfig {
  return Object.freeze(circuitBreakerConfigSchema.parse(raw ?? {}));
}

export const CIRCUIT_HEADER = 'x-capa-circuit';
