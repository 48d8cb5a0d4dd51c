/**
 * Outlier detection (Envoy's passive health checking, the consecutive-error detectors).
 *
 * The router reports the outcome of every upstream attempt: the HTTP status, or 0 for a connect
 * failure, reset or timeout (Envoy's non-split mode maps those local-origin errors to 5xx
 * gateway failures). A host with `consecutive5xx` 5xx in a row, or `consecutiveGatewayFailure`
 * 502/503/504 (or 0) in a row, is ejected: HEALTH_FLAG_OUTLIER is set, so the load balancers skip
 * it. Any other status resets the counters (a non-gateway 5xx resets only the gateway counter).
 *
 * As in Envoy:
 * - an ejection lasts `baseEjectionTime × n` (capped at `maxEjectionTime`), n counting the
 *   host's ejections; n goes down by one for every interval the host spends un-ejected;
 * - hosts come back on the `interval` tick after their time is up;
 * - a host is ejected only while `(ejected + 1) / hosts ≤ maxEjectionPercent`, so with the
 *   default 10 % a cluster of fewer than 10 hosts never ejects (Envoy's `always_eject_one_host`
 *   is not offered; the note on issue 5 lists it).
 * The counter is reset after each detection, also when the ejection was refused by the limit.
 */
import { Counter, type Registry } from 'prom-client';
import type { OutlierDetectionSpec } from '../../config/snapshot.js';
import { HEALTH_FLAG_OUTLIER, type Host, type HostSet } from './host.js';

interface HostState {
  c5xx: number;
  cGateway: number;
  /** Ejections so far (Envoy num_ejections), the multiplier of baseEjectionTime. */
  ejections: number;
  /** When the current ejection ends (ms, `now()` clock); 0 when not ejected. */
  until: number;
}

export interface OutlierCallbacks {
  /** A host was ejected or returned: refresh the host set and load balancer. */
  onChange(): void;
  onEject?(host: Host, reason: 'consecutive_5xx' | 'consecutive_gateway_failure', ms: number): void;
  onUneject?(host: Host): void;
  /** Injected clock for tests. */
  now?: () => number;
}

const isGateway = (status: number): boolean => status === 0 || (status >= 502 && status <= 504);

// === impl OutlierDetector ===

export class OutlierDetector {
  private readonly state = new WeakMap<Host, HostState>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(
    private readonly spec: OutlierDetectionSpec,
    private readonly hosts: HostSet,
    private readonly cb: OutlierCallbacks,
  ) {
    this.now = cb.now ?? Date.now;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.spec.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private stateOf(host: Host): HostState {
    let st = this.state.get(host);
    if (st === undefined) {
      st = { c5xx: 0, cGateway: 0, ejections: 0, until: 0 };
      this.state.set(host, st);
    }
    return st;
  }

  /** One attempt's outcome: HTTP status, or 0 for connect failure / reset / timeout. */
  report(host: Host, status: number): void {
    const st = this.stateOf(host);
    const is5xx = status === 0 || status >= 500;
    if (!is5xx) {
      st.c5xx = 0;
      st.cGateway = 0;
      return;
    }
    if (st.until !== 0) return; // already ejected: late answers of requests in flight
    st.c5xx++;
    if (isGateway(status)) st.cGateway++;
    else st.cGateway = 0;
    const { consecutive5xx, consecutiveGatewayFailure } = this.spec;
    if (consecutiveGatewayFailure > 0 && st.cGateway >= consecutiveGatewayFailure) {
      st.c5xx = st.cGateway = 0;
      this.eject(host, st, 'consecutive_gateway_failure');
    } else if (consecutive5xx > 0 && st.c5xx >= consecutive5xx) {
      st.c5xx = st.cGateway = 0;
      this.eject(host, st, 'consecutive_5xx');
    }
  }

  private eject(host: Host, st: HostState, reason: 'consecutive_5xx' | 'consecutive_gateway_failure'): void {
    const all = this.hosts.all;
    let ejected = 0;
    for (const h of all) if (h.healthFlagBits & HEALTH_FLAG_OUTLIER) ejected++;
    if (((ejected + 1) * 100) / all.length > this.spec.maxEjectionPercent) return;
    st.ejections++;
    const ms = Math.min(this.spec.baseEjectionTimeMs * st.ejections, this.spec.maxEjectionTimeMs);
    st.until = this.now() + ms;
    host.healthFlagBits |= HEALTH_FLAG_OUTLIER;
    this.cb.onEject?.(host, reason, ms);
    this.cb.onChange();
  }

  /** Envoy's interval timer: return hosts whose time is up, decay the ejection multiplier. */
  tick(): void {
    const now = this.now();
    let changed = false;
    for (const h of this.hosts.all) {
      const st = this.state.get(h);
      if (st === undefined) continue;
      if (st.until !== 0) {
        if (now < st.until) continue;
        st.until = 0;
        st.c5xx = st.cGateway = 0;
        h.healthFlagBits &= ~HEALTH_FLAG_OUTLIER;
        changed = true;
        this.cb.onUneject?.(h);
      } else if (st.ejections > 0) {
        st.ejections--;
      }
    }
    if (changed) this.cb.onChange();
  }
}

// === metrics ===

const byRegistry = new WeakMap<Registry, Counter<'cluster'>>();

/** `capa_outlier_ejections_total{cluster}` (Envoy outlier_detection.ejections_enforced_total). */
export function outlierEjectionsCounter(registry: Registry): Counter<'cluster'> {
  let c = byRegistry.get(registry);
  if (c === undefined) {
    c = new Counter({ name: 'capa_outlier_ejections_total', help: 'Hosts ejected by outlier detection', labelNames: ['cluster'], registers: [registry] });
    byRegistry.set(registry, c);
  }
  return c;
}
