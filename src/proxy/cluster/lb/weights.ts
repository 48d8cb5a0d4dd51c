/**
 * Weighted random selection in O(1) per draw with Vose's alias method: built once per
 * refresh, no allocation per draw. Host i is drawn with probability weight_i / Σweight.
 */
import type { Host } from '../host.js';
import { randomU32 } from './rand.js';

export class WeightedSampler {
  /** prob[i]: chance to keep column i (scaled to [0, 2^32)); otherwise take alias[i]. */
  private prob = new Float64Array(0);
  private alias = new Int32Array(0);
  private n = 0;
  total = 0;

  reset(hosts: readonly Host[]): void {
    const n = hosts.length;
    if (this.prob.length < n) {
      this.prob = new Float64Array(n);
      this.alias = new Int32Array(n);
    }
    this.n = n;
    let total = 0;
    for (const h of hosts) total += h.weight;
    this.total = total;
    if (n === 0) return;
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = (hosts[i]!.weight * n) / total;
      if (scaled[i]! < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns]!;
      const l = large[nl - 1]!;
      this.prob[s] = scaled[s]! * 4294967296;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      if (scaled[l]! < 1) {
        nl--;
        small[ns++] = l;
      }
    }
    while (nl > 0) {
      const l = large[--nl]!;
      this.prob[l] = 4294967296;
      this.alias[l] = l;
    }
    while (ns > 0) {
      const s = small[--ns]!;
      this.prob[s] = 4294967296;
      this.alias[s] = s;
    }
  }

  /** Index of a host drawn with probability weight / total. */
  randomIndex(): number {
    const i = Math.floor(randomU32() * (1 / 4294967296) * this.n);
    return randomU32() < this.prob[i]! ? i : this.alias[i]!;
  }
}
