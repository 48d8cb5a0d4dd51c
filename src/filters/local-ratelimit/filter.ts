/**
 * Local rate limit (envoy.filters.http.local_ratelimit) and max-in-flight limit, per request.
 * The concurrency slot is taken first (synchronously), then the rate is checked: the limiter
 * answers with a Promise, which is returned to the chain so the request waits for it. Over the
 * rate: 429 (gRPC 8), flag RL, `retry-after` and `ratelimit-*` headers. Slot released in
 * onComplete, which runs for every ending (reply, local reply, reset).
 */
import type { RateLimiterRes } from 'rate-limiter-flexible';
import { rlf } from './limiter.js';
import type { FilterStatus, HttpFilter, HttpStream, ResponseHead } from '../types.js';
import { RATELIMIT_HEADERS } from './config.js';
import type { KeyOf } from './key.js';
import type { Limiter } from './limiter.js';
import type { RouteCounters } from './metrics.js';

export interface RateLimitShared {
  /** null: only the concurrency limit. */
  readonly limiter: Limiter | null;
  readonly keyOf: KeyOf;
  /** `ratelimit-limit` value. */
  readonly limit: string;
  readonly statusCode: number;
  readonly failOpen: boolean;
  readonly responseHeaders: boolean;
  /** null: no concurrency limit. `n` is shared by every request under this config. */
  readonly inFlight: { n: number; readonly max: number } | null;
  readonly counters: (route: string) => RouteCounters;
  /** A backend failure; `passed` tells whether failOpen let the request through. */
  readonly onBackendError: (e: unknown, passed: boolean) => void;
}

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

export class LocalRateLimitFilter implements HttpFilter {
  /** The limiter's answer for a request that passed (for the response headers). */
  private res: RateLimiterRes | null = null;
  private holding = false;

  constructor(private readonly shared: RateLimitShared) {}

  onRequestHeaders(s: HttpStream): FilterStatus | Promise<FilterStatus> {
    const sh = this.shared;
    const slots = sh.inFlight;
    if (slots !== null) {
      if (slots.n >= slots.max) {
        sh.counters(s.routeName).rejectedConcurrency.inc();
        s.sendLocalReply(503, 'overloaded: too many requests in flight', {
          flag: 'UO',
          details: 'concurrency_limit_exceeded',
          headers: { [RATELIMIT_HEADERS.overloaded]: 'true' },
        });
        return 'stop';
      }
      slots.n++;
      this.holding = true;
    }
    const limiter = sh.limiter;
    if (limiter === null) {
      sh.counters(s.routeName).passed.inc();
      return 'continue';
    }
    return limiter.consume(sh.keyOf(s)).then(
      (res) => {
        this.res = res;
        sh.counters(s.routeName).passed.inc();
        return 'continue';
      },
      (rej: unknown) => this.refused(s, rej),
    );
  }

  private refused(s: HttpStream, rej: unknown): FilterStatus {
    const sh = this.shared;
    if (rej instanceof rlf().RateLimiterRes) {
      sh.counters(s.routeName).limited.inc();
      const wait = String(Math.max(1, seconds(rej.msBeforeNext)));
      s.sendLocalReply(sh.statusCode, 'local_rate_limited', {
        flag: 'RL',
        details: 'local_rate_limited',
        grpcStatus: 8,
        headers: {
          [RATELIMIT_HEADERS.retryAfter]: wait,
          [RATELIMIT_HEADERS.limit]: sh.limit,
          [RATELIMIT_HEADERS.remaining]: '0',
          [RATELIMIT_HEADERS.reset]: wait,
        },
      });
      return 'stop';
    }
    sh.onBackendError(rej, sh.failOpen);
    if (sh.failOpen) {
      sh.counters(s.routeName).passed.inc();
      return 'continue';
    }
    s.sendLocalReply(503, 'rate limit service unavailable', { details: 'rate_limiter_error', headers: { 'x-capa-ratelimit': 'unavailable' } });
    return 'stop';
  }

  onResponseHeaders(_s: HttpStream, head: ResponseHead): void {
    const res = this.res;
    if (res === null || !this.shared.responseHeaders) return;
    const h = head.headers;
    h.set(RATELIMIT_HEADERS.limit, this.shared.limit);
    h.set(RATELIMIT_HEADERS.remaining, String(Math.max(0, res.remainingPoints)));
    h.set(RATELIMIT_HEADERS.reset, String(seconds(res.msBeforeNext)));
  }

  onComplete(): void {
    if (!this.holding) return;
    this.holding = false;
    this.shared.inFlight!.n--;
  }
}
