/**
 * Circuit breaker, per request: admitted by the breaker of its cluster (or route) in
 * onRequestHeaders, settled in onComplete. A failure is a response status ≥ 500 or an ending
 * with an upstream-failure flag (UF, UC, UT, UH, UO). An open breaker answers 503 "circuit open"
 * (gRPC 14) with `x-capa-circuit: open`, flag UO and details circuit_open; the upstream is not
 * contacted.
 */
import type { StreamInfo } from '../../proxy/stream-info.js';
import type { FilterStatus, HttpFilter, HttpStream } from '../types.js';
import { CIRCUIT_HEADER } from './config.js';
import type { Breaker, Settle } from './breaker.js';

export interface CircuitShared {
  /** The breaker for this request, null when none applies (no cluster picked yet). */
  breakerFor(s: HttpStream): Breaker | null;
}

const FAILURE_FLAGS = ['UF', 'UC', 'UT', 'UH', 'UO'];

export function isFailure(info: StreamInfo): boolean {
  if (info.responseCode >= 500) return true;
  const f = info.responseFlags;
  if (f === '') return false;
  for (const flag of f.split(',')) if (FAILURE_FLAGS.includes(flag)) return true;
  return false;
}

const OPEN_REPLY = { flag: 'UO', details: 'circuit_open', grpcStatus: 14, headers: { [CIRCUIT_HEADER]: 'open' } } as const;

export class CircuitBreakerFilter implements HttpFilter {
  private settle: Settle | null = null;

  constructor(private readonly shared: CircuitShared) {}

  onRequestHeaders(s: HttpStream): FilterStatus {
    const b = this.shared.breakerFor(s);
    if (b === null) return 'continue';
    const settle = b.admit();
    if (settle === null) {
      s.sendLocalReply(503, 'circuit open', { ...OPEN_REPLY, headers: { ...OPEN_REPLY.headers } });
      return 'stop';
    }
    this.settle = settle;
    return 'continue';
  }

  onComplete(s: HttpStream): void {
    const settle = this.settle;
    if (settle === null) return;
    this.settle = null;
    settle(isFailure(s.info));
  }
}
