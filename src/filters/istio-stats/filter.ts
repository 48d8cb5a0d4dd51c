/**
 * The Istio stats filter: one stateless object shared by every request of a route; it only
 * observes the finished exchange.
 */
import type { HttpFilter, HttpStream } from '../types.js';
import type { IstioMetrics } from '../../observability/metrics.js';

export class IstioStatsFilter implements HttpFilter {
  constructor(
    private readonly metrics: IstioMetrics,
    private readonly hostHeaderFallback: boolean,
  ) {}

  onComplete(s: HttpStream): void {
    this.metrics.recordHttp(s.info, s.isGrpc, this.hostHeaderFallback);
  }
}
