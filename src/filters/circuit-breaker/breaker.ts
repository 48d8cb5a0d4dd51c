/**
 * One opossum CircuitBreaker driven by the request path: `admit()` fires the breaker with a
 * Promise that the filter settles when the stream completes, so opossum keeps the rolling
 * statistics, the timeout, the open → half-open timer and the single half-open probe.
 * opossum calls its action synchronously inside `fire()` when it lets the call through, which
 * tells us at once whether the request was admitted (no await on the request path).
 *
 * Breakers are shared per metrics registry and key (scope + cluster/route + settings), so every
 * listener using the same cluster sees one breaker and a configuration reload keeps its state.
 * A breaker no longer used by any built filter is shut down after a grace period.
 */
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BreakerSettings } from './config.js';
import { circuitMetrics } from './metrics.js';

export const CIRCUIT_CLOSED = 0;
export const CIRCUIT_OPEN = 1;
export const CIRCUIT_HALF_OPEN = 2;

/** Settle an admitted request: true when it failed. */
export type Settle = (failed: boolean) => void;

const FAILED = new Error('upstream failure');
const noop = (): void => {};

// === impl Breaker ===

export class Breaker {
  private readonly cb: CircuitBreaker<[Promise<void>], void>;
  private admitted = false;
  private readonly rejectedInc: () => void;

  constructor(
    settings: BreakerSettings,
    labels: { cluster: string; route: string },
    registry: Registry,
    logger: Logger,
  ) {
    this.cb = new CircuitBreaker(
      (p: Promise<void>) => {
        this.admitted = true;
        return p;
      },
      {
        errorThresholdPercentage: settings.errorThresholdPercentage,
        volumeThreshold: settings.volumeThreshold,
        resetTimeout: settings.resetTimeoutMs,
        timeout: settings.timeoutMs > 0 ? settings.timeoutMs : false,
        rollingCountTimeout: settings.rollingCountTimeoutMs,
        rollingCountBuckets: settings.rollingCountBuckets,
        // Neither is read here (state comes from the events, metrics are our own), and both cost
        // on the request path: latency percentiles keep every request's latency in the window
        // and sort them, and the per-bucket snapshot re-adds the whole window each second.
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
      },
    );
    const m = circuitMetrics(registry);
    const gauge = m.state.labels(labels.cluster, labels.route);
    const rejected = m.rejected.labels(labels.cluster, labels.route);
    this.rejectedInc = () => rejected.inc();
    gauge.set(CIRCUIT_CLOSED);
    const log = (state: string, level: 'info' | 'warn') => logger[level]({ cluster: labels.cluster, route: labels.route || undefined, state }, `circuit breaker ${state}`);
    this.cb.on('open', () => {
      gauge.set(CIRCUIT_OPEN);
      log('open', 'warn');
    });
    this.cb.on('halfOpen', () => {
      gauge.set(CIRCUIT_HALF_OPEN);
      log('half-open', 'info');
    });
    this.cb.on('close', () => {
      gauge.set(CIRCUIT_CLOSED);
      log('closed', 'info');
    });
  }

  get state(): number {
    return this.cb.opened ? CIRCUIT_OPEN : this.cb.halfOpen ? CIRCUIT_HALF_OPEN : CIRCUIT_CLOSED;
  }

  /** Null when the breaker refuses the request (open, or half-open with its probe in flight). */
  admit(): Settle | null {
    let settle: Settle = noop;
    const p = new Promise<void>((resolve, reject) => {
      settle = (failed) => (failed ? reject(FAILED) : resolve());
    });
    this.admitted = false;
    this.cb.fire(p).catch(noop);
    if (this.admitted) return settle;
    this.rejectedInc();
    return null;
  }

  shutdown(): void {
    this.cb.shutdown();
  }
}

// === shared breakers ===

interface Entry {
  readonly breaker: Breaker;
  refs: number;
  dispose: NodeJS.Timeout | null;
  readonly labels: { cluster: string; route: string };
}

const byRegistry = new WeakMap<Registry, Map<string, Entry>>();
/** How long an unused breaker survives (a reload re-acquires it within this time). */
export const BREAKER_GRACE_MS = 60_000;

export interface BreakerLease {
  readonly breaker: Breaker;
  release(): void;
}

export function acquireBreaker(
  settings: BreakerSettings,
  labels: { cluster: string; route: string },
  ctx: { registry: Registry; logger: Logger },
): BreakerLease {
  let map = byRegistry.get(ctx.registry);
  if (map === undefined) {
    map = new Map();
    byRegistry.set(ctx.registry, map);
  }
  const key = JSON.stringify([labels.cluster, labels.route, settings]);
  let e = map.get(key);
  if (e === undefined) {
    e = { breaker: new Breaker(settings, labels, ctx.registry, ctx.logger), refs: 0, dispose: null, labels };
    map.set(key, e);
  }
  if (e.dispose !== null) {
    clearTimeout(e.dispose);
    e.dispose = null;
  }
  e.refs++;
  const entry = e;
  const m = map;
  let released = false;
  return {
    breaker: e.breaker,
    release() {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      entry.dispose = setTimeout(() => {
        if (entry.refs > 0) return;
        m.delete(key);
        entry.breaker.shutdown();
        circuitMetrics(ctx.registry).state.remove(entry.labels.cluster, entry.labels.route);
      }, BREAKER_GRACE_MS);
      entry.dispose.unref();
    },
  };
}
