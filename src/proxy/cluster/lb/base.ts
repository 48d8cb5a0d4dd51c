/**
 * What every load balancer shares: choosing the host list to balance over (healthy hosts, or
 * all hosts in Envoy's panic mode), lazy rebuilds when the HostSet's version moved, and
 * retry-aware picking (Envoy's previous_hosts retry predicate).
 *
 * Panic mode (Envoy common_lb_config.healthy_panic_threshold): when fewer than
 * `healthyPanicThreshold` percent of the hosts are healthy, Envoy assumes health checking is
 * what is broken and balances over all hosts. 0 disables it; then no healthy host → null.
 * Priorities are flattened: every priority level is balanced as one set (no spill-over yet).
 */
import type { Host, HostSet } from '../host.js';
import type { LbContext, LoadBalancer } from './types.js';
import { randomIndex } from './rand.js';

/** Envoy host_selection_retry_max_attempts as used with the previous_hosts predicate. */
export const MAX_HOST_SELECTION_ATTEMPTS = 3;

export const DEFAULT_PANIC_THRESHOLD = 50;

export abstract class BaseLoadBalancer implements LoadBalancer {
  protected readonly hostSet: HostSet;
  /** Hosts being balanced over: hostSet.healthy, or hostSet.all in panic mode. */
  protected active: Host[] = [];
  /** True while the cluster is in panic mode (for stats: Envoy lb_healthy_panic). */
  panic = false;
  private readonly panicThreshold: number;
  private version = -1;

  constructor(hosts: HostSet, healthyPanicThreshold: number = DEFAULT_PANIC_THRESHOLD) {
    this.hostSet = hosts;
    this.panicThreshold = Number.isFinite(healthyPanicThreshold) ? Math.min(100, Math.max(0, healthyPanicThreshold)) : DEFAULT_PANIC_THRESHOLD;
  }

  refresh(): void {
    const hs = this.hostSet;
    this.version = hs.version;
    const all = hs.all;
    const healthy = hs.healthy;
    this.panic = this.panicThreshold > 0 && all.length > 0 && (healthy.length * 100) / all.length < this.panicThreshold;
    this.active = this.panic ? all : healthy;
    this.rebuild(this.active);
  }

  pick(ctx: LbContext): Host | null {
    if (this.version !== this.hostSet.version) this.refresh();
    const active = this.active;
    const n = active.length;
    if (n === 0) return null;
    const hash = ctx.hash;
    let h = this.choose(hash, 0);
    const attempted = ctx.attempted;
    if (attempted == null || attempted.length === 0 || n === 1 || !attempted.includes(h)) return h;
    for (let i = 1; i < MAX_HOST_SELECTION_ATTEMPTS; i++) {
      h = this.choose(hash, i);
      if (!attempted.includes(h)) return h;
    }
    // Still a host already tried: take the first untried one from a random start, if any.
    const start = randomIndex(n);
    for (let i = 0; i < n; i++) {
      const c = active[(start + i) % n]!;
      if (!attempted.includes(c)) return c;
    }
    return h;
  }

  /** Rebuild derived state for a new active list (not on the hot path). `active` is non-empty or empty. */
  protected abstract rebuild(active: Host[]): void;

  /**
   * Choose from `this.active` (non-empty). `attempt` is 0 for the first choice and counts up
   * while the chosen host was already tried; hash-based policies use it to step to another host.
   */
  protected abstract choose(hash: number | undefined, attempt: number): Host;
}

/** True when every host has the same weight (then the unweighted fast paths apply). */
export function equalWeights(hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false;
  return true;
}
