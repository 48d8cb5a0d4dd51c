/**
 * Per request: the first policy (document order) whose match fits the request applies, and only
 * it: rate limit → concurrency → fault → circuit breaker (last, so it guards the upstream and
 * injected aborts do not count as upstream failures), each carried out by the existing filter
 * classes (LocalRateLimitFilter, FaultFilter, CircuitBreakerFilter). A request no policy matches
 * passes untouched.
 */
import type { FilterStatus, HttpFilter, HttpStream, ResponseHead } from '../types.js';
import { LocalRateLimitFilter, type RateLimitShared } from '../local-ratelimit/filter.js';
import type { FaultFilter } from '../fault/filter.js';
import { CircuitBreakerFilter, type CircuitShared } from '../circuit-breaker/filter.js';
import type { RequestMatcher } from './match.js';
import type { PolicyCounters } from './metrics.js';

export interface BuiltPolicy {
  readonly name: string;
  readonly matches: RequestMatcher;
  readonly counters: PolicyCounters;
  /** null: the policy has no rate limit. */
  readonly rate: RateLimitShared | null;
  /** null: no concurrency limit. */
  readonly concurrency: RateLimitShared | null;
  /** Stateless, shared by every request of the policy. */
  readonly fault: FaultFilter | null;
  /** null: no circuit breaker. */
  readonly breaker: CircuitShared | null;
}

type Step = { onRequestHeaders(s: HttpStream): FilterStatus | Promise<FilterStatus> };

export class FlowControlFilter implements HttpFilter {
  private rate: LocalRateLimitFilter | null = null;
  private slot: LocalRateLimitFilter | null = null;
  private breaker: CircuitBreakerFilter | null = null;

  constructor(private readonly policies: readonly BuiltPolicy[]) {}

  onRequestHeaders(s: HttpStream): FilterStatus | Promise<FilterStatus> {
    const ps = this.policies;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      if (!p.matches(s.authority, s.path, s.method)) continue;
      if (p.rate !== null) this.rate = new LocalRateLimitFilter(p.rate);
      if (p.concurrency !== null) this.slot = new LocalRateLimitFilter(p.concurrency);
      if (p.breaker !== null) this.breaker = new CircuitBreakerFilter(p.breaker);
      return this.run(s, p, 0);
    }
    return 'continue';
  }

  /** Steps from `from` on; a 'stop' means the step sent the local reply (and counted it). */
  private run(s: HttpStream, p: BuiltPolicy, from: number): FilterStatus | Promise<FilterStatus> {
    for (let i = from; i < 4; i++) {
      const step: Step | null = i === 0 ? this.rate : i === 1 ? this.slot : i === 2 ? p.fault : this.breaker;
      if (step === null) continue;
      const r = step.onRequestHeaders(s);
      if (r === 'stop') {
        // The breaker does not count its refusals itself (the others do, through their counters).
        if (i === 3) p.counters.rejected.inc();
        return 'stop';
      }
      if (r !== 'continue') {
        const next = i + 1;
        return r.then((st) => (st === 'stop' ? 'stop' : this.run(s, p, next)));
      }
    }
    p.counters.passed.inc();
    return 'continue';
  }

  onResponseHeaders(s: HttpStream, head: ResponseHead): void {
    this.rate?.onResponseHeaders(s, head);
  }

  onComplete(s: HttpStream): void {
    this.slot?.onComplete();
    this.breaker?.onComplete(s);
  }
}
