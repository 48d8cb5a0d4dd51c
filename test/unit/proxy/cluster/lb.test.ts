import { describe, expect, it } from 'vitest';
import {
  createLoadBalancer,
  hashString,
  Host,
  HostSet,
  LeastRequestLoadBalancer,
  MaglevLoadBalancer,
  RingHashLoadBalancer,
  RoundRobinLoadBalancer,
  type LbContext,
  type LbSpec,
  type LoadBalancer,
} from '../../../../src/proxy/cluster/index.js';

function hosts(weights: number[]): Host[] {
  return weights.map((w, i) => new Host(`10.0.0.${i + 1}`, 80, { weight: w }));
}

function spec(lbPolicy: LbSpec['lbPolicy'], extra: Partial<LbSpec> = {}): LbSpec {
  return {
    lbPolicy,
    healthyPanicThreshold: 50,
    ringHash: { minimumRingSize: 1024, maximumRingSize: 8 * 1024 * 1024 },
    leastRequest: { choiceCount: 2 },
    ...extra,
  };
}

function counts(lb: LoadBalancer, n: number, ctx: LbContext = { hash: undefined }): Map<Host, number> {
  const m = new Map<Host, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.pick(ctx)!;
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

describe('round robin', () => {
  it('rotates evenly over equal weights', () => {
    const hs = hosts([1, 1, 1, 1]);
    const lb = createLoadBalancer(spec('ROUND_ROBIN'), new HostSet(hs));
    expect(lb).toBeInstanceOf(RoundRobinLoadBalancer);
    const seq = Array.from({ length: 8 }, () => lb.pick({ hash: undefined })!);
    // Strict rotation: consecutive picks are distinct and the pattern repeats every 4.
    for (let i = 0; i < 4; i++) expect(seq[i + 4]).toBe(seq[i]);
    expect(new Set(seq.slice(0, 4)).size).toBe(4);
    const c = counts(lb, 4000);
    for (const h of hs) expect(c.get(h)).toBe(1000);
  });

  it('gives exact shares for weights 1:3 and interleaves them', () => {
    const hs = hosts([1, 3]);
    const lb = createLoadBalancer(spec('ROUND_ROBIN'), new HostSet(hs));
    const c = counts(lb, 10_000);
    expect(c.get(hs[0]!)).toBe(2500);
    expect(c.get(hs[1]!)).toBe(7500);
    // Smooth: the light host never gets two picks in a row.
    let prev: Host | null = null;
    for (let i = 0; i < 100; i++) {
      const h = lb.pick({ hash: undefined });
      if (h === hs[0]) expect(prev).not.toBe(hs[0]);
      prev = h;
    }
  });

  it('weights 1:2:5 over many picks', () => {
    const hs = hosts([1, 2, 5]);
    const lb = createLoadBalancer(spec('ROUND_ROBIN'), new HostSet(hs));
    const c = counts(lb, 8000);
    expect([c.get(hs[0]!), c.get(hs[1]!), c.get(hs[2]!)]).toEqual([1000, 2000, 5000]);
  });

  it('uses the EDF scheduler for long periods and still gives exact shares', () => {
    // Coprime weights: one period is 29889 picks, past the precomputed-table limit.
    const hs = hosts([9973, 9967, 9949]);
    const lb = createLoadBalancer(spec('ROUND_ROBIN'), new HostSet(hs));
    const total = 9973 + 9967 + 9949;
    const c = counts(lb, total);
    // Any window of one period is exact to within one pick (the start is randomised).
    expect(Math.abs(c.get(hs[0]!)! - 9973)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.get(hs[1]!)! - 9967)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.get(hs[2]!)! - 9949)).toBeLessThanOrEqual(1);
  });

  it('returns null when there are no hosts', () => {
    expect(createLoadBalancer(spec('ROUND_ROBIN'), new HostSet([])).pick({ hash: undefined })).toBeNull();
  });

  it('skips unhealthy hosts and follows the host set lazily', () => {
    const hs = hosts([1, 1, 1, 1]);
    const set = new HostSet(hs);
    const lb = createLoadBalancer(spec('ROUND_ROBIN'), set);
    hs[0]!.healthy = false;
    set.refresh();
    const c = counts(lb, 300);
    expect(c.has(hs[0]!)).toBe(false);
    expect(c.get(hs[1]!)).toBe(100);
  });
});

describe('least request', () => {
  it('prefers the less loaded host (P2C)', () => {
    const hs = hosts([1, 1]);
    const lb = createLoadBalancer(spec('LEAST_REQUEST'), new HostSet(hs));
    expect(lb).toBeInstanceOf(LeastRequestLoadBalancer);
    hs[0]!.stats.rqActive = 10;
    const c = counts(lb, 10_000);
    // P(two draws both hit the busy host) = 1/4, so the idle host gets ~75%.
    expect(c.get(hs[1]!)! / 10_000).toBeGreaterThan(0.72);
  });

  it('with more choices the least loaded host wins more often', () => {
    const hs = hosts([1, 1, 1, 1]);
    hs.forEach((h, i) => (h.stats.rqActive = i === 2 ? 0 : 5));
    const lb = createLoadBalancer(spec('LEAST_REQUEST', { leastRequest: { choiceCount: 8 } }), new HostSet(hs));
    const c = counts(lb, 10_000);
    // 1 - (3/4)^8 ≈ 0.90
    expect(c.get(hs[2]!)! / 10_000).toBeGreaterThan(0.87);
  });

  it('unequal weights: follows weights when idle, avoids a busy host', () => {
    const hs = hosts([1, 3]);
    const lb = createLoadBalancer(spec('LEAST_REQUEST'), new HostSet(hs));
    const c = counts(lb, 20_000);
    const share = c.get(hs[1]!)! / 20_000;
    // Idle hosts: weighted P2C favours the heavy host at least as much as its weight.
    expect(share).toBeGreaterThan(0.75);
    hs[1]!.stats.rqActive = 50;
    const c2 = counts(lb, 10_000);
    expect(c2.get(hs[0]!)! / 10_000).toBeGreaterThan(0.4);
  });
});

describe('random', () => {
  it('is weighted within tolerance', () => {
    const hs = hosts([1, 3]);
    const lb = createLoadBalancer(spec('RANDOM'), new HostSet(hs));
    const n = 40_000;
    const c = counts(lb, n);
    expect(Math.abs(c.get(hs[0]!)! / n - 0.25)).toBeLessThan(0.02);
    expect(Math.abs(c.get(hs[1]!)! / n - 0.75)).toBeLessThan(0.02);
  });

  it('follows many different weights (alias table)', () => {
    const ws = [1, 2, 3, 4, 10];
    const hs = hosts(ws);
    const n = 100_000;
    const lb = createLoadBalancer(spec('RANDOM'), new HostSet(hs));
    const c = counts(lb, n);
    hs.forEach((h, i) => expect(Math.abs(c.get(h)! / n - ws[i]! / 20)).toBeLessThan(0.01));
  });

  it('is uniform with equal weights', () => {
    const hs = hosts([2, 2, 2, 2]);
    const lb = createLoadBalancer(spec('RANDOM'), new HostSet(hs));
    const c = counts(lb, 40_000);
    for (const h of hs) expect(Math.abs(c.get(h)! / 40_000 - 0.25)).toBeLessThan(0.02);
  });
});

describe.each(['RING_HASH', 'MAGLEV'] as const)('%s', (policy) => {
  const keys = Array.from({ length: 20_000 }, (_, i) => hashString(`user-${i}`));

  it('maps the same key to the same host', () => {
    const lb = createLoadBalancer(spec(policy), new HostSet(hosts([1, 1, 1])));
    expect(lb).toBeInstanceOf(policy === 'RING_HASH' ? RingHashLoadBalancer : MaglevLoadBalancer);
    for (const k of keys.slice(0, 200)) {
      const h = lb.pick({ hash: k });
      expect(lb.pick({ hash: k })).toBe(h);
    }
    // Independent of host order: a balancer built from a reversed list agrees.
    const hs = hosts([1, 1, 1]);
    const a = createLoadBalancer(spec(policy), new HostSet(hs));
    const b = createLoadBalancer(spec(policy), new HostSet(hs.slice().reverse()));
    for (const k of keys.slice(0, 500)) expect(a.pick({ hash: k })).toBe(b.pick({ hash: k }));
  });

  it('spreads keys roughly by weight', () => {
    const hs = hosts([1, 1, 2]);
    const lb = createLoadBalancer(spec(policy), new HostSet(hs));
    const c = new Map<Host, number>();
    for (const k of keys) {
      const h = lb.pick({ hash: k })!;
      c.set(h, (c.get(h) ?? 0) + 1);
    }
    const share = hs.map((h) => c.get(h)! / keys.length);
    expect(Math.abs(share[0]! - 0.25)).toBeLessThan(0.06);
    expect(Math.abs(share[1]! - 0.25)).toBeLessThan(0.06);
    expect(Math.abs(share[2]! - 0.5)).toBeLessThan(0.06);
  });

  it('removing one of N hosts moves only about 1/N of the keys', () => {
    const N = 5;
    const hs = hosts(Array(N).fill(1));
    const set = new HostSet(hs);
    const lb = createLoadBalancer(spec(policy), set);
    const before = keys.map((k) => lb.pick({ hash: k }));
    const removed = hs[2]!;
    set.update(hs.filter((h) => h !== removed));
    const after = keys.map((k) => lb.pick({ hash: k }));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === removed) expect(after[i]).not.toBe(removed);
      if (before[i] !== after[i]) moved++;
    }
    const frac = moved / keys.length;
    // The removed host's share (≈1/N) must move; a modulo hash would move ~(N-1)/N. Envoy's
    // ring re-scales replica counts with N, so a few more keys move than the bare 1/N.
    expect(frac).toBeGreaterThan(0.15);
    expect(frac).toBeLessThan(policy === 'MAGLEV' ? 0.25 : 0.35);
  });

  it('falls back to a random pick without a hash', () => {
    const hs = hosts([1, 1]);
    const lb = createLoadBalancer(spec(policy), new HostSet(hs));
    const c = counts(lb, 4000);
    expect(c.get(hs[0]!)! / 4000).toBeGreaterThan(0.3);
    expect(c.get(hs[1]!)! / 4000).toBeGreaterThan(0.3);
  });

  it('a retry with the same hash lands on another host', () => {
    const hs = hosts([1, 1, 1]);
    const lb = createLoadBalancer(spec(policy), new HostSet(hs));
    for (const k of keys.slice(0, 100)) {
      const first = lb.pick({ hash: k })!;
      const second = lb.pick({ hash: k, attempted: [first] });
      expect(second).not.toBe(first);
      expect(second).not.toBeNull();
    }
  });
});

describe('ring lookup', () => {
  it('the bucketed binary search agrees with a linear scan, including the wrap', () => {
    for (const [min, ws] of [[16, [1, 2]], [1024, [1, 1, 3]], [5000, [1, 7, 2, 9]]] as const) {
      const lb = new RingHashLoadBalancer(new HostSet(hosts([...ws])), 50, { minimumRingSize: min, maximumRingSize: 1 << 20 });
      lb.refresh();
      const internal = lb as unknown as { hashes: Uint32Array; ringHosts: Host[] };
      const ring = internal.hashes;
      const reference = (h: number): Host => {
        for (let i = 0; i < ring.length; i++) if (ring[i]! >= h) return internal.ringHosts[i]!;
        return internal.ringHosts[0]!;
      };
      const probes = [0, 1, 0xffffffff, ring[0]!, ring[ring.length - 1]!, ring[ring.length - 1]! + 1, ring[5]! - 1];
      for (let i = 0; i < 2000; i++) probes.push(hashString(`probe-${i}`));
      for (const h of probes) expect(lb.pick({ hash: h >>> 0 })).toBe(reference(h >>> 0));
    }
  });
});

describe('ring size', () => {
  it('is clamped between minimum and maximum', () => {
    const small = new RingHashLoadBalancer(new HostSet(hosts([1, 1, 1])), 50, { minimumRingSize: 64, maximumRingSize: 1024 });
    small.refresh();
    expect(small.ringSize).toBeGreaterThanOrEqual(64);
    expect(small.ringSize).toBeLessThanOrEqual(66);
    const capped = new RingHashLoadBalancer(new HostSet(hosts([1, 100_000])), 50, { minimumRingSize: 1024, maximumRingSize: 2048 });
    capped.refresh();
    expect(capped.ringSize).toBe(2048);
  });
});

describe('panic mode', () => {
  it.each(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const)('%s balances over all hosts when the healthy share is below the threshold', (policy) => {
    const hs = hosts([1, 1, 1, 1]);
    const set = new HostSet(hs);
    const lb = createLoadBalancer(spec(policy), set);
    // 2 of 4 healthy = 50%: not in panic, only healthy hosts are used.
    hs[0]!.healthy = false;
    hs[1]!.healthy = false;
    set.refresh();
    let c = counts(lb, 2000);
    expect(c.has(hs[0]!) || c.has(hs[1]!)).toBe(false);
    // 1 of 4 healthy = 25% < 50%: panic, every host is used.
    hs[2]!.healthy = false;
    set.refresh();
    c = counts(lb, 2000);
    for (const h of hs) expect(c.get(h) ?? 0).toBeGreaterThan(200);
  });

  it('with threshold 0 and no healthy host returns null', () => {
    const hs = hosts([1, 1]);
    const set = new HostSet(hs);
    const lb = createLoadBalancer(spec('ROUND_ROBIN', { healthyPanicThreshold: 0 }), set);
    hs[0]!.healthy = false;
    hs[1]!.healthy = false;
    set.refresh();
    expect(lb.pick({ hash: undefined })).toBeNull();
  });

  it('all hosts unhealthy with the default threshold still returns a host', () => {
    const hs = hosts([1, 1]);
    const set = new HostSet(hs);
    const lb = createLoadBalancer(spec('RANDOM'), set);
    for (const h of hs) h.healthy = false;
    set.refresh();
    expect(hs).toContain(lb.pick({ hash: undefined }));
  });
});

describe('retry avoidance', () => {
  it.each(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const)('%s avoids attempted hosts when others exist', (policy) => {
    const hs = hosts([1, 1, 1]);
    const lb = createLoadBalancer(spec(policy), new HostSet(hs));
    const ctx: LbContext = { hash: undefined, attempted: [hs[0]!, hs[1]!] };
    for (let i = 0; i < 200; i++) expect(lb.pick(ctx)).toBe(hs[2]);
    // Everything attempted: still returns some host.
    ctx.attempted = hs.slice();
    expect(hs).toContain(lb.pick(ctx));
    // A single host is returned even if it was attempted.
    const one = createLoadBalancer(spec(policy), new HostSet([hs[0]!]));
    expect(one.pick({ hash: 1, attempted: [hs[0]!] })).toBe(hs[0]);
  });
});
