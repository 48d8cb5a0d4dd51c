/**
 * capa.filters.http.flow_control: carries out the FlowControlPolicy documents of the Snapshot.
 * The config compiler (src/config/compile.ts) inserts it at the front of every HTTP listener
 * chain when at least one policy is in force, with `{policies: Snapshot.flowControl.policies}`;
 * with no policy it is not in any chain and costs nothing.
 *
 * Limiters come from the local_ratelimit filter's pool, keyed by `flowcontrol:<policy name>` and a
 * hash of the rate settings and key (limiterPrefix), and are shared by every listener: a reload
 * that leaves a policy's rate unchanged keeps its counters (the old chain is closed only after
 * the new one took its lease). In-flight counts are kept per policy name and limit, likewise.
 * Circuit breakers come from the circuit_breaker filter's pool, labelled `route="policy:<name>"`
 * (per cluster), and survive reloads with unchanged settings the same way.
 */
import type { Registry } from 'prom-client';
import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { keyExtractor } from '../local-ratelimit/key.js';
import { acquireLimiter } from '../local-ratelimit/limiter.js';
import { workerCount } from '../local-ratelimit/cluster.js';
import type { RateLimitShared } from '../local-ratelimit/filter.js';
import { FaultFilter } from '../fault/filter.js';
import { faultMetrics } from '../fault/metrics.js';
import { acquireBreaker, type Breaker } from '../circuit-breaker/breaker.js';
import type { BreakerSettings } from '../circuit-breaker/config.js';
import type { CircuitShared } from '../circuit-breaker/filter.js';
import { parseFlowControlConfig, type ParsedPolicy } from './config.js';
import { compileMatch } from './match.js';
import { flowControlMetric, policyCounters, type PolicyCounters } from './metrics.js';
import { FlowControlFilter, type BuiltPolicy } from './filter.js';

export const FLOW_CONTROL_FILTER_NAME = 'capa.filters.http.flow_control';
export const FLOW_CONTROL_TYPE_URL = 'type.googleapis.com/capa.filters.http.flow_control.v1.FlowControl';

const NOOP = { inc(): void {} };

/** In-flight counts by policy name + limit, per data plane (registry), so a reload does not reset them. */
const inFlightPools = new WeakMap<Registry, Map<string, { n: number; max: number }>>();

function inFlightOf(registry: Registry, key: string, max: number): { n: number; max: number } {
  let pool = inFlightPools.get(registry);
  if (!pool) inFlightPools.set(registry, (pool = new Map()));
  let slots = pool.get(key);
  if (!slots) pool.set(key, (slots = { n: 0, max }));
  return slots;
}

function buildPolicy(p: ParsedPolicy, ctx: FilterContext, releases: (() => void)[]): BuiltPolicy {
  const counters: PolicyCounters = policyCounters(flowControlMetric(ctx.registry), p.name);
  const listener = `flowcontrol:${p.name}`;
  const rl = p.spec.rateLimit;
  let rate: RateLimitShared | null = null;
  if (rl !== undefined && !rl.disabled && rl.rate !== null) {
    const lease = acquireLimiter({ ...rl, rate: rl.rate }, { listener, registry: ctx.registry, logger: ctx.logger });
    releases.push(lease.release);
    let lastLog = 0;
    rate = {
      limiter: lease.limiter,
      keyOf: keyExtractor(rl.by),
      limit: String(rl.rate.points),
      statusCode: rl.statusCode,
      failOpen: rl.failOpen,
      responseHeaders: rl.responseHeaders,
      inFlight: null,
      counters: () => ({ passed: NOOP, limited: counters.limited, rejectedConcurrency: counters.rejected }),
      onBackendError(e, passed) {
        const now = Date.now();
        if (now - lastLog < 10_000) return;
        lastLog = now;
        ctx.logger.warn({ policy: p.name, scope: rl.scope, error: e instanceof Error ? e.message : String(e), passed }, 'flow control: rate limit backend failed');
      },
    };
  }
  const maxInFlight = p.spec.concurrency?.maxInFlight ?? (rl !== undefined && !rl.disabled ? rl.maxInFlight : 0);
  let concurrency: RateLimitShared | null = null;
  if (maxInFlight > 0) {
    const max = Math.max(1, Math.ceil(maxInFlight / workerCount()));
    concurrency = {
      limiter: null,
      keyOf: () => '',
      limit: '0',
      statusCode: 503,
      failOpen: true,
      responseHeaders: false,
      inFlight: inFlightOf(ctx.registry, `${p.name}:${max}`, max),
      counters: () => ({ passed: NOOP, limited: NOOP, rejectedConcurrency: counters.rejected }),
      onBackendError() {},
    };
  }
  let fault: FaultFilter | null = null;
  const fc = p.spec.fault;
  if (fc !== undefined && (fc.delay !== null || fc.abort !== null)) {
    const fm = faultMetrics(ctx.registry);
    const aborts = fm.aborts.labels(ctx.listenerName);
    fault = new FaultFilter({
      cfg: fc,
      delays: fm.delays.labels(ctx.listenerName),
      aborts: {
        inc() {
          aborts.inc();
          counters.rejected.inc();
        },
      },
      active: { n: 0 },
      random: Math.random,
    });
  }
  let breaker: CircuitShared | null = null;
  const cb = p.spec.circuitBreaker;
  if (cb !== undefined && !cb.disabled) {
    const { disabled: _d, scope, ...settings } = cb;
    const s: BreakerSettings = settings;
    const breakers = new Map<string, Breaker>();
    breaker = {
      breakerFor(st) {
        const cluster = st.clusterName;
        if (cluster === '') return null;
        const route = scope === 'route' ? `policy:${p.name}/${st.routeName}` : `policy:${p.name}`;
        const key = `${route}\n${cluster}`;
        let b = breakers.get(key);
        if (b === undefined) {
          const lease = acquireBreaker(s, { cluster, route }, { registry: ctx.registry, logger: ctx.logger });
          releases.push(lease.release);
          b = lease.breaker;
          breakers.set(key, b);
        }
        return b;
      },
    };
  }
  return { name: p.name, matches: compileMatch(p.spec.match), counters, rate, concurrency, fault, breaker };
}

export const flowControlFactory: HttpFilterFactory<ParsedPolicy[], never> = {
  name: FLOW_CONTROL_FILTER_NAME,
  typeUrl: FLOW_CONTROL_TYPE_URL,
  parseConfig: parseFlowControlConfig,

  build(policies: ParsedPolicy[], ctx: FilterContext): BuiltFilter<never> {
    const releases: (() => void)[] = [];
    const built = policies.map((p) => buildPolicy(p, ctx, releases));
    const create: (() => HttpFilter) | null = built.length === 0 ? null : () => new FlowControlFilter(built);
    return {
      forRoute: () => create,
      close() {
        for (const r of releases.splice(0)) r();
      },
    };
  },
};
