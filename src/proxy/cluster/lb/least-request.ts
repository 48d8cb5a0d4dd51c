/**
 * LEAST_REQUEST.
 *
 * Equal weights: Envoy's power of `choiceCount` choices: draw `choiceCount` hosts at random
 * (with replacement) and keep the one with the fewest active requests (`stats.rqActive`,
 * maintained by the pool); ties keep the first drawn.
 *
 * Unequal weights: Envoy switches to an EDF scheduler over weight / (active + 1)^bias. We use
 * weighted P2C instead: the `choiceCount` candidates are drawn in proportion to weight and the
 * one with the lowest (active + 1) / weight wins. It needs no per-pick scheduler update, and
 * load still follows weight when hosts are equally busy while shifting away from a slow host.
 */
import type { Host, HostSet } from '../host.js';
import { BaseLoadBalancer, equalWeights } from './base.js';
import { randomIndex } from './rand.js';
import { WeightedSampler } from './weights.js';

export const DEFAULT_CHOICE_COUNT = 2;

export class LeastRequestLoadBalancer extends BaseLoadBalancer {
  private readonly choiceCount: number;
  private weighted = false;
  private readonly weights = new WeightedSampler();

  constructor(hosts: HostSet, healthyPanicThreshold?: number, choiceCount: number = DEFAULT_CHOICE_COUNT) {
    super(hosts, healthyPanicThreshold);
    this.choiceCount = Number.isInteger(choiceCount) && choiceCount >= 2 ? choiceCount : DEFAULT_CHOICE_COUNT;
  }

  protected rebuild(active: Host[]): void {
    this.weighted = active.length > 1 && !equalWeights(active);
    if (this.weighted) this.weights.reset(active);
  }

  protected choose(_hash: number | undefined, _attempt: number): Host {
    const active = this.active;
    const n = active.length;
    if (n === 1) return active[0]!;
    if (!this.weighted) {
      let best = active[randomIndex(n)]!;
      for (let i = 1; i < this.choiceCount; i++) {
        const c = active[randomIndex(n)]!;
        if (c.stats.rqActive < best.stats.rqActive) best = c;
      }
      return best;
    }
    let best = active[this.weights.randomIndex()]!;
    let bestLoad = (best.stats.rqActive + 1) / best.weight;
    for (let i = 1; i < this.choiceCount; i++) {
      const c = active[this.weights.randomIndex()]!;
      const load = (c.stats.rqActive + 1) / c.weight;
      if (load < bestLoad) {
        best = c;
        bestLoad = load;
      }
    }
    return best;
  }
}
