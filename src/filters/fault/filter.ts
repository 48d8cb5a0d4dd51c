/**
 * Fault injection (envoy.filters.http.fault): delay and/or abort a percentage of requests, or
 * the requests that ask for it by header when header control is configured. Delay first, then
 * abort, as Envoy does. Aborts of gRPC requests are gRPC statuses (trailers-only).
 */
import { addResponseFlag } from '../../proxy/stream-info.js';
import type { FilterStatus, HttpFilter, HttpStream } from '../types.js';
import { FAULT_HEADERS, type FaultConfig } from './config.js';

export interface FaultShared {
  readonly cfg: FaultConfig;
  readonly delays: { inc(): void };
  readonly aborts: { inc(): void };
  /** Faults in progress, shared by every request of the listener. */
  active: { n: number };
  readonly random: () => number;
}

function headerNumber(s: HttpStream, name: string): number | undefined {
  const v = s.requestHeaders.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

export class FaultFilter implements HttpFilter {
  constructor(private readonly shared: FaultShared) {}

  onRequestHeaders(s: HttpStream): FilterStatus | Promise<FilterStatus> {
    const { cfg, active } = this.shared;
    for (const h of cfg.headers) {
      const v = s.requestHeaders.get(h.name);
      if (v === undefined || (h.exact !== undefined && v !== h.exact)) return 'continue';
    }
    if (active.n >= cfg.maxActiveFaults) return 'continue';
    const delayMs = this.delayFor(s);
    if (delayMs > 0) {
      active.n++;
      this.shared.delays.inc();
      addResponseFlag(s.info, 'DI');
      return new Promise<FilterStatus>((resolve) => {
        setTimeout(() => {
          active.n--;
          resolve(this.abortIfDue(s) ? 'stop' : 'continue');
        }, delayMs);
      });
    }
    return this.abortIfDue(s) ? 'stop' : 'continue';
  }

  private roll(percent: number): boolean {
    return percent >= 100 || this.shared.random() * 100 < percent;
  }

  private delayFor(s: HttpStream): number {
    const d = this.shared.cfg.delay;
    if (d === null) return 0;
    let ms = d.fixedMs;
    let percent = d.percent;
    if (d.fromHeader) {
      const h = headerNumber(s, FAULT_HEADERS.delay);
      if (h === undefined) return 0;
      ms = Math.max(0, h);
      percent = Math.min(percent, headerNumber(s, FAULT_HEADERS.delayPercent) ?? percent);
    }
    return ms > 0 && this.roll(percent) ? ms : 0;
  }

  /** Sends the abort reply when this request is to be aborted; true if it did. */
  private abortIfDue(s: HttpStream): boolean {
    const a = this.shared.cfg.abort;
    if (a === null) return false;
    let status = a.httpStatus;
    let grpc = a.grpcStatus;
    let percent = a.percent;
    if (a.fromHeader) {
      const hs = headerNumber(s, FAULT_HEADERS.abort);
      const hg = headerNumber(s, FAULT_HEADERS.abortGrpc);
      if (hs === undefined && hg === undefined) return false;
      if (hs !== undefined && hs >= 200 && hs < 600) status = hs;
      if (hg !== undefined && hg >= 1 && hg <= 16) grpc = hg;
      percent = Math.min(percent, headerNumber(s, FAULT_HEADERS.abortPercent) ?? percent);
    }
    if ((status === 0 && grpc === 0) || !this.roll(percent)) return false;
    this.shared.aborts.inc();
    s.sendLocalReply(status || 503, 'fault filter abort', { flag: 'FI', details: 'fault_filter_abort', grpcStatus: grpc || undefined });
    return true;
  }
}
