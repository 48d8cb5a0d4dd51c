/**
 * RING_HASH: Envoy's Ketama-style consistent-hash ring.
 *
 * Built once per refresh exactly as Envoy's RingHashLoadBalancer sizes it: with weights
 * normalised to sum 1, scale = min(ceil(minWeight × minimumRingSize) / minWeight,
 * maximumRingSize), and host i gets entries until the running total reaches scale × weight_i.
 * Entry j of a host is hashString(`${host.key}_${j}`). The ring is two parallel arrays sorted by
 * hash (a Uint32Array of hashes and the hosts); a lookup is a binary search for the first entry
 * with hash ≥ the request hash, wrapping to the start, narrowed first by a bucket index on the
 * hash's top bits. Without a hash (no hash policy matched)
 * a random point is used, which still follows the weights. On a retry (`attempt` > 0) the
 * lookup steps `attempt` entries further round the ring, as Envoy does.
 */
import type { Host, HostSet } from '../host.js';
import { hashString } from '../hash-policy.js';
import { BaseLoadBalancer } from './base.js';
import { randomU32 } from './rand.js';

export const DEFAULT_MIN_RING_SIZE = 1024;
export const DEFAULT_MAX_RING_SIZE = 8 * 1024 * 1024;
/** Host indices are packed below the hash in one float64 for sorting (2^21 hosts max). */
const IDX_BITS = 2 ** 21;

export class RingHashLoadBalancer extends BaseLoadBalancer {
  private readonly minRingSize: number;
  private readonly maxRingSize: number;
  private hashes = new Uint32Array(0);
  private ringHosts: Host[] = [];
  /**
   * bucket[b] = index of the first ring entry whose top `bucketBits` bits are ≥ b, so a lookup
   * binary-searches only inside one bucket (a few entries) instead of the whole ring.
   */
  private bucket = new Uint32Array(2);
  private bucketShift = 31;

  constructor(hosts: HostSet, healthyPanicThreshold?: number, ringHash?: { minimumRingSize: number; maximumRingSize: number }) {
    super(hosts, healthyPanicThreshold);
    const max = ringHash && ringHash.maximumRingSize >= 1 ? Math.floor(ringHash.maximumRingSize) : DEFAULT_MAX_RING_SIZE;
    const min = ringHash && ringHash.minimumRingSize >= 1 ? Math.floor(ringHash.minimumRingSize) : DEFAULT_MIN_RING_SIZE;
    this.maxRingSize = max;
    this.minRingSize = Math.min(min, max);
  }

  /** Number of entries on the ring (for tests and /clusters). */
  get ringSize(): number {
    return this.hashes.length;
  }

  protected rebuild(active: Host[]): void {
    const n = active.length;
    if (n === 0) {
      this.hashes = new Uint32Array(0);
      this.ringHosts = [];
      this.buildBuckets();
      return;
    }
    let total = 0;
    let minW = Infinity;
    for (const h of active) {
      total += h.weight;
      if (h.weight < minW) minW = h.weight;
    }
    const minNorm = minW / total;
    const scale = Math.min(Math.ceil(minNorm * this.minRingSize) / minNorm, this.maxRingSize);
    const size = Math.ceil(scale);
    const packed = new Float64Array(size);
    let count = 0;
    let target = 0;
    for (let i = 0; i < n && count < size; i++) {
      const host = active[i]!;
      target += (scale * host.weight) / total;
      for (let j = 0; count < target && count < size; j++) {
        packed[count++] = hashString(`${host.key}_${j}`) * IDX_BITS + i;
      }
    }
    const ring = packed.subarray(0, count).sort();
    const hashes = new Uint32Array(count);
    const ringHosts = new Array<Host>(count);
    for (let k = 0; k < count; k++) {
      const v = ring[k]!;
      const hv = Math.floor(v / IDX_BITS);
      hashes[k] = hv;
      ringHosts[k] = active[v - hv * IDX_BITS]!;
    }
    this.hashes = hashes;
    this.ringHosts = ringHosts;
    this.buildBuckets();
  }

  private buildBuckets(): void {
    const hashes = this.hashes;
    const size = hashes.length;
    // About four entries per bucket, between 2 and 2^16 buckets.
    const bits = Math.min(16, Math.max(1, Math.floor(Math.log2(Math.max(1, size))) - 2));
    const shift = 32 - bits;
    const count = 1 << bits;
    const bucket = new Uint32Array(count + 1);
    let k = 0;
    for (let b = 0; b < count; b++) {
      const start = b * 2 ** shift;
      while (k < size && hashes[k]! < start) k++;
      bucket[b] = k;
    }
    bucket[count] = size;
    this.bucket = bucket;
    this.bucketShift = shift;
  }

  protected choose(hash: number | undefined, attempt: number): Host {
    const h = hash === undefined ? randomU32() : hash >>> 0;
    const hashes = this.hashes;
    const size = hashes.length;
    const b = h >>> this.bucketShift;
    let lo = this.bucket[b]!;
    let hi = this.bucket[b + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.ringHosts[(lo + attempt) % size]!;
  }
}
