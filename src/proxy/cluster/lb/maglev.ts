/**
 * MAGLEV: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016), as in Envoy's
 * MaglevLoadBalancer. It is not an alias of RING_HASH: lookups are one modulo into a fixed
 * table of 65537 slots (Envoy's default table_size), and removing a host disturbs few keys.
 *
 * Build (once per refresh): hosts are ordered by key so every proxy builds the same table.
 * Host i has offset = hash(key, 0) mod M and skip = hash(key, 1) mod (M − 1) + 1, and
 * fills its next free preferred slot (offset + skip × k) mod M in turns. Weights use Envoy's
 * scheme: a host takes a turn in iteration t only when t × weight ≥ its accumulated target,
 * which then grows by the largest weight, so slots are shared in proportion to weight.
 * Retries (`attempt` > 0) remix the hash to land on another slot.
 */
import type { Host } from '../host.js';
import { hashString, mix32 } from '../hash-policy.js';
import { BaseLoadBalancer } from './base.js';
import { randomU32 } from './rand.js';

export const MAGLEV_TABLE_SIZE = 65537;

export class MaglevLoadBalancer extends BaseLoadBalancer {
  private table: Host[] = [];

  protected rebuild(active: Host[]): void {
    const n = active.length;
    if (n === 0) {
      this.table = [];
      return;
    }
    const M = MAGLEV_TABLE_SIZE;
    const hosts = active.slice().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    // pos[i] is host i's next preferred slot, (offset + skip × next) mod M, kept incrementally.
    const pos = new Int32Array(n);
    const skip = new Int32Array(n);
    const target = new Float64Array(n);
    let maxW = 0;
    for (let i = 0; i < n; i++) {
      const h = hosts[i]!;
      pos[i] = hashString(h.key, 0) % M;
      skip[i] = (hashString(h.key, 1) % (M - 1)) + 1;
      if (h.weight > maxW) maxW = h.weight;
    }
    const slots = new Int32Array(M).fill(-1);
    let filled = 0;
    for (let iteration = 0; filled < M; iteration++) {
      for (let i = 0; i < n && filled < M; i++) {
        if (iteration * hosts[i]!.weight < target[i]!) continue;
        target[i] = target[i]! + maxW;
        const s = skip[i]!;
        let c = pos[i]!;
        while (slots[c] !== -1) {
          c += s;
          if (c >= M) c -= M;
        }
        slots[c] = i;
        c += s;
        pos[i] = c >= M ? c - M : c;
        filled++;
      }
    }
    const table = new Array<Host>(M);
    for (let s = 0; s < M; s++) table[s] = hosts[slots[s]!]!;
    this.table = table;
  }

  protected choose(hash: number | undefined, attempt: number): Host {
    let h = hash === undefined ? randomU32() : hash >>> 0;
    if (attempt > 0) h = mix32(h ^ attempt);
    return this.table[h % MAGLEV_TABLE_SIZE]!;
  }
}
