/**
 * Local limits across worker processes (`concurrency > 1`). Each worker counting for itself
 * would multiply the limit by the worker count, so workers use rate-limiter-flexible's
 * `RateLimiterCluster`, which asks a `RateLimiterClusterMaster` in the primary over the cluster
 * IPC channel, and the primary holds the one set of counters.
 *
 * The primary must call `setupRateLimiterPrimary()` once before it forks the workers
 * (src/sidecar.ts `startWorkers()`). A worker checks that it did with a probe message; when the
 * primary does not answer within PROBE_TIMEOUT_MS the worker logs an error and counts locally
 * (each worker then admits the full limit).
 */
import cluster from 'node:cluster';
import { rlf } from './limiter.js';
import type { Logger } from 'pino';

const CHANNEL = 'capa_ratelimit';
export const PROBE_TIMEOUT_MS = 1000;

interface ProbeMessage {
  readonly channel: typeof CHANNEL;
  readonly op: 'probe' | 'ack';
}

const isProbe = (m: unknown, op: ProbeMessage['op']): boolean =>
  typeof m === 'object' && m !== null && (m as ProbeMessage).channel === CHANNEL && (m as ProbeMessage).op === op;

let primaryReady = false;

/**
 * Call once in the primary process before forking data-plane workers. Idempotent; a no-op
 * outside the primary. Creates the master that holds the counters of every worker's local
 * limits and answers the workers' probe.
 */
export function setupRateLimiterPrimary(): void {
  if (primaryReady || !cluster.isPrimary) return;
  primaryReady = true;
  new (rlf().RateLimiterClusterMaster)();
  cluster.on('message', (worker, m: unknown) => {
    if (isProbe(m, 'probe')) worker.send({ channel: CHANNEL, op: 'ack' } satisfies ProbeMessage);
  });
}

/** True in a capa data-plane worker (forked by the sidecar with CAPA_WORKER=1). */
export function inClusterWorker(): boolean {
  return cluster.isWorker && process.env.CAPA_WORKER === '1' && typeof process.send === 'function';
}

export type PrimaryState = 'unknown' | 'present' | 'absent';

let state: PrimaryState = 'unknown';
let probe: Promise<PrimaryState> | null = null;

export function primaryState(): PrimaryState {
  return state;
}

/** In a worker: whether the primary runs a RateLimiterClusterMaster (asked once per process). */
export function probePrimary(logger: Logger): Promise<PrimaryState> {
  if (probe) return probe;
  probe = new Promise<PrimaryState>((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isProbe(m, 'ack')) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      state = 'present';
      resolve(state);
    };
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      state = 'absent';
      logger.error(
        {},
        'rate limit: the primary process did not call setupRateLimiterPrimary(); local limits are counted per worker (the limit is multiplied by the worker count)',
      );
      resolve(state);
    }, PROBE_TIMEOUT_MS);
    timer.unref();
    process.on('message', onMessage);
    process.send?.({ channel: CHANNEL, op: 'probe' } satisfies ProbeMessage);
  });
  return probe;
}

/** Worker count the primary passed (`CAPA_WORKER_COUNT`), 1 when unknown. */
export function workerCount(): number {
  if (!inClusterWorker()) return 1;
  const n = Number(process.env.CAPA_WORKER_COUNT);
  return Number.isInteger(n) && n > 0 ? n : 1;
}
