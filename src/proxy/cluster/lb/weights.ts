/**
 * Weighted random selection over cumulative weights: built once per refresh, binary search per
 * pick, no allocation.
 */
import type { Host } from '../host.js';
import { random01 } from './rand.js';

export class CumulativeWeights {
  private cum = new Float64Array(0);
  private n = 0;
  total = 0;

  reset(hosts: readonly Host[]): void {
    const n = hosts.length;
    if (this.cum.length < n) this.cum = new Float64Array(n);
    let t = 0;
    for (let i = 0; i < n; i++) {
      t += hosts[i]!.weight;
      this.cum[i] = t;
    }
    this.n = n;
    this.total = t;
  }

  /** Index of a host drawn with probability weight / total. */
  randomIndex(): number {
    const r = random01() * this.total;
    const cum = this.cum;
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
