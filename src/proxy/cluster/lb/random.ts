/**
 * RANDOM, weighted: a host is drawn with probability weight / total weight. (Envoy's random LB
 * ignores weights; honouring them is the documented choice here.) Equal weights skip the
 * binary search.
 */
import type { Host } from '../host.js';
import { BaseLoadBalancer, equalWeights } from './base.js';
import { randomIndex } from './rand.js';
import { WeightedSampler } from './weights.js';

export class RandomLoadBalancer extends BaseLoadBalancer {
  private weighted = false;
  private readonly weights = new WeightedSampler();

  protected rebuild(active: Host[]): void {
    this.weighted = active.length > 1 && !equalWeights(active);
    if (this.weighted) this.weights.reset(active);
  }

  protected choose(_hash: number | undefined, _attempt: number): Host {
    const active = this.active;
    if (this.weighted) return active[this.weights.randomIndex()]!;
    return active[randomIndex(active.length)]!;
  }
}
