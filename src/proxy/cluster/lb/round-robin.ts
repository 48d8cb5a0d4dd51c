/**
 * ROUND_ROBIN.
 *
 * - Equal weights: plain index rotation over the active hosts.
 * - Unequal weights: smooth weighted round robin (the sequence Envoy's EDF scheduler and nginx
 *   produce: weights 1:3 give exactly 1 and 3 picks in every 4, interleaved). When one period
 *   of the sequence (Σw / gcd(w)) is small it is precomputed once per refresh with nginx's
 *   integer algorithm, so a pick is the same index rotation as the unweighted case. Larger
 *   periods use the EDF scheduler per pick (O(log n), no allocation).
 *
 * Like Envoy, the rotation starts at a random position so that many proxies restarted together
 * do not all send their first request to the same host.
 */
import type { Host } from '../host.js';
import { BaseLoadBalancer, equalWeights } from './base.js';
import { EdfScheduler } from './edf.js';
import { randomIndex } from './rand.js';

/** Longest precomputed weighted sequence, and the most build work (period × hosts) allowed for it. */
const MAX_TABLE = 16_384;
const MAX_TABLE_WORK = 4_000_000;

export class RoundRobinLoadBalancer extends BaseLoadBalancer {
  /** The rotation: the active hosts (equal weights) or one precomputed weighted period. */
  private table: Host[] = [];
  private index = 0;
  /** True when the period was too long to precompute: pick through the EDF scheduler. */
  private useEdf = false;
  private readonly edf = new EdfScheduler();

  protected rebuild(active: Host[]): void {
    const n = active.length;
    this.useEdf = false;
    this.table = active;
    if (n > 1 && !equalWeights(active)) {
      let g = 0;
      let total = 0;
      for (const h of active) {
        g = gcd(g, h.weight);
        total += h.weight;
      }
      const period = total / g;
      if (period <= MAX_TABLE && period * n <= MAX_TABLE_WORK) {
        this.table = smoothSequence(active, g, period);
      } else {
        this.useEdf = true;
        const w = new Float64Array(n);
        for (let i = 0; i < n; i++) w[i] = active[i]!.weight;
        this.edf.reset(w);
        // Envoy pre-picks a random number of entries for the same reason as the random start.
        const prepicks = randomIndex(Math.min(period, 1024));
        for (let i = 0; i < prepicks; i++) this.edf.next();
      }
    }
    this.index = this.table.length > 0 ? randomIndex(this.table.length) : 0;
  }

  protected choose(_hash: number | undefined, _attempt: number): Host {
    if (this.useEdf) return this.active[this.edf.next()]!;
    const table = this.table;
    let i = this.index;
    if (i >= table.length) i = 0;
    this.index = i + 1;
    return table[i]!;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * One period of nginx's smooth weighted round robin: every step each host gains its weight,
 * the host with the most credit is picked and pays the total. Integer-exact: host i appears
 * exactly w_i / g times.
 */
function smoothSequence(hosts: readonly Host[], g: number, period: number): Host[] {
  const n = hosts.length;
  const w = new Float64Array(n);
  const credit = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = hosts[i]!.weight / g;
  const out = new Array<Host>(period);
  for (let k = 0; k < period; k++) {
    let best = 0;
    for (let i = 0; i < n; i++) {
      credit[i] = credit[i]! + w[i]!;
      if (credit[i]! > credit[best]!) best = i;
    }
    credit[best] = credit[best]! - period;
    out[k] = hosts[best]!;
  }
  return out;
}
