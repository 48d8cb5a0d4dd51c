/**
 * The counting backends behind a limit, built with rate-limiter-flexible (see config.ts for the
 * semantics): `RateLimiterMemory` in a single process, `RateLimiterCluster` in a data-plane
 * worker (counters in the primary), `RateLimiterRedis` for scope global — each a rate limiter
 * plus, when `burst > 0`, a burst allowance combined with `BurstyRateLimiter`.
 *
 * Limiters are shared and reference-counted by key prefix (listener + a hash of the limit), so a
 * reloaded configuration with an unchanged limit keeps counting where the old one was, and every
 * worker / sidecar with the same limit addresses the same counters.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type * as Rlf from 'rate-limiter-flexible';
import type { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { lazy } from '../../lazy.js';

/** rate-limiter-flexible is loaded when the first limiter is built (lazy.ts). */
export const rlf = lazy<typeof Rlf>('rate-limiter-flexible');
import type { KeySpec, LocalRateLimitConfig, RateSettings } from './config.js';
import { inClusterWorker, primaryState, probePrimary } from './cluster.js';
import { acquireRedis, type RedisLease } from './redis-client.js';

/** Answers whether one request under `key` may pass. */
export interface Limiter {
  /** Resolves when it may; rejects with a RateLimiterRes when limited, with an Error when the backend failed. */
  consume(key: string): Promise<RateLimiterRes>;
}

export interface LimiterLease {
  readonly limiter: Limiter;
  /** Which backend counts: for logs and tests. */
  readonly backend: 'memory' | 'cluster' | 'redis';
  release(): void;
}

export interface LimiterEnv {
  readonly listener: string;
  /** Identifies the owning data plane: in-process limits are per data plane, not per process. */
  readonly registry: Registry;
  readonly logger: Logger;
}

/** Milliseconds a worker waits for the primary's answer before counting it a backend failure. */
export const CLUSTER_TIMEOUT_MS = 1000;

export function limiterPrefix(base: string, listener: string, rate: RateSettings, by: KeySpec): string {
  const hash = createHash('sha1').update(JSON.stringify([rate.points, rate.windowMs, rate.burst, rate.burstWindowMs, by])).digest('hex').slice(0, 12);
  return `${base}:${listener}:${hash}`;
}

type Make = (keyPrefix: string, points: number, durationSec: number) => Limiter;

function compose(make: Make, prefix: string, rate: RateSettings): Limiter {
  const main = make(prefix, rate.points, rate.windowMs / 1000);
  if (rate.burst === 0) return main;
  return new (rlf().BurstyRateLimiter)(main as RateLimiterMemory, make(`${prefix}:burst`, rate.burst, rate.burstWindowMs / 1000) as RateLimiterMemory);
}

const memoryLimiter: Make = (keyPrefix, points, duration) => new (rlf().RateLimiterMemory)({ keyPrefix, points, duration });

// === impl pools ===

interface Counted<T> {
  readonly value: T;
  refs: number;
}

function lease<T>(pool: Map<string, Counted<T>>, key: string, create: () => T, dispose: (v: T) => void = () => {}): { value: T; release(): void } {
  let e = pool.get(key);
  if (!e) {
    e = { value: create(), refs: 0 };
    pool.set(key, e);
  }
  e.refs++;
  const entry = e;
  let released = false;
  return {
    value: entry.value,
    release() {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      if (pool.get(key) === entry) pool.delete(key);
      dispose(entry.value);
    },
  };
}

const memoryPools = new WeakMap<Registry, Map<string, Counted<Limiter>>>();
const redisPool = new Map<string, Counted<{ limiter: Limiter; redis: RedisLease }>>();
/** RateLimiterCluster instances add a process listener that is never removed: keep them for the process's life. */
const workerLimiters = new Map<string, Limiter>();

class WorkerLimiter implements Limiter {
  constructor(
    private readonly shared: Limiter,
    private readonly fallback: Limiter,
    private readonly logger: Logger,
  ) {
    void probePrimary(logger);
  }

  consume(key: string): Promise<RateLimiterRes> {
    const st = primaryState();
    if (st === 'present') return this.shared.consume(key);
    if (st === 'absent') return this.fallback.consume(key);
    return probePrimary(this.logger).then(() => this.consume(key));
  }
}

/** The limiter for a config with a rate; release it in BuiltFilter.close(). */
export function acquireLimiter(cfg: LocalRateLimitConfig & { rate: RateSettings }, env: LimiterEnv): LimiterLease {
  const rate = cfg.rate;
  if (cfg.scope === 'global') {
    const prefix = limiterPrefix(cfg.redis.keyPrefix, env.listener, rate, cfg.by);
    const l = lease(
      redisPool,
      `${cfg.redis.url}\n${prefix}`,
      () => {
        const redis = acquireRedis(cfg.redis.url, cfg.redis.timeoutMs, env.logger);
        const make: Make = (keyPrefix, points, duration) =>
          new (rlf().RateLimiterRedis)({ storeClient: redis.client, keyPrefix, points, duration, rejectIfRedisNotReady: true });
        const inner = compose(make, prefix, rate);
        const limiter: Limiter = {
          consume(key) {
            const wait = redis.pending();
            return wait === null ? inner.consume(key) : wait.then(() => inner.consume(key));
          },
        };
        return { limiter, redis };
      },
      (v) => v.redis.release(),
    );
    return { limiter: l.value.limiter, backend: 'redis', release: l.release };
  }
  const prefix = limiterPrefix('capa:rl', env.listener, rate, cfg.by);
  if (inClusterWorker()) {
    let limiter = workerLimiters.get(prefix);
    if (!limiter) {
      const clusterLimiter: Make = (keyPrefix, points, duration) => new (rlf().RateLimiterCluster)({ keyPrefix, points, duration, timeoutMs: CLUSTER_TIMEOUT_MS });
      limiter = new WorkerLimiter(compose(clusterLimiter, prefix, rate), compose(memoryLimiter, prefix, rate), env.logger);
      workerLimiters.set(prefix, limiter);
    }
    return { limiter, backend: 'cluster', release: () => {} };
  }
  let pool = memoryPools.get(env.registry);
  if (!pool) {
    pool = new Map();
    memoryPools.set(env.registry, pool);
  }
  const l = lease(pool, prefix, () => compose(memoryLimiter, prefix, rate));
  return { limiter: l.value, backend: 'memory', release: l.release };
}
