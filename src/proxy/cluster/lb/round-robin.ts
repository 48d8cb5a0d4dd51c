/**
 * ROUND_ROBIN. Equal weights: plain index rotation. Unequal weights: Envoy's EDF scheduler
 * (smooth weighted round robin), so weights 1:3 give exactly 1 and 3 picks in every 4.
 * Like Envoy, the rotation starts at a random position so that many proxies restarted together
 * do not all send their first request to the same host.
 */
import type { Host } from '../host.js';
import { BaseLoadBalancer, equalWeights } from './base.js';
import { EdfScheduler } from './edf.js';

export class RoundRobinLoadBalancer extends BaseLoadBalancer {
  private index = 0;
  private weighted = false;
  private readonly edf = new EdfScheduler();

  protected rebuild(active: Host[]): void {
    const n = active.length;
    this.weighted = n > 1 && !equalWeights(active);
    if (this.weighted) {
      const w = new Float64Array(n);
      let total = 0;
      for (let i = 0; i < n; i++) total += w[i] = active[i]!.weight;
      this.edf.reset(w);
      // Envoy pre-picks a random number of entries for the same reason as the random start.
      const prepicks = (Math.random() * Math.min(total, 1024)) | 0;
      for (let i = 0; i < prepicks; i++) this.edf.next();
    } else {
      this.index = n > 0 ? (Math.random() * n) | 0 : 0;
    }
  }

  protected choose(_hash: number | undefined, _attempt: number): Host {
    const active = this.active;
    if (this.weighted) return active[this.edf.next()]!;
    let i = this.index;
    if (i >= active.length) i = 0;
    this.index = i + 1;
    return active[i]!;
  }
}
