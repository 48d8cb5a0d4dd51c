import { describe, expect, it } from 'vitest';
import { Host, HostSet, HEALTH_FLAG_OUTLIER } from '../../../../src/proxy/cluster/host.js';
import { OutlierDetector } from '../../../../src/proxy/cluster/outlier.js';
import type { OutlierDetectionSpec } from '../../../../src/config/snapshot.js';
import { clusterSchema } from '../../../../src/config/schema-clusters.js';

const spec = (o: Partial<OutlierDetectionSpec> = {}): OutlierDetectionSpec => ({
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  intervalMs: 100,
  baseEjectionTimeMs: 1000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 50,
  ...o,
});

function setup(o: Partial<OutlierDetectionSpec> = {}, n = 3) {
  const clock = { t: 0 };
  const hosts = new HostSet(Array.from({ length: n }, (_, i) => new Host('127.0.0.1', 1000 + i)));
  const events: string[] = [];
  const d = new OutlierDetector(spec(o), hosts, {
    onChange: () => hosts.refresh(),
    onEject: (h, reason, ms) => events.push(`eject ${h.port} ${reason} ${ms}`),
    onUneject: (h) => events.push(`back ${h.port}`),
    now: () => clock.t,
  });
  return { clock, hosts, d, events, h: hosts.all };
}

describe('outlier detection config', () => {
  it('defaults to Envoy values and is null when absent', () => {
    expect(clusterSchema.parse({ name: 'c', endpoints: ['127.0.0.1:1'] }).cluster.outlierDetection).toBeNull();
    expect(clusterSchema.parse({ name: 'c', endpoints: ['127.0.0.1:1'], outlierDetection: {} }).cluster.outlierDetection).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayFailure: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 10,
    });
    const c = clusterSchema.parse({ name: 'c', endpoints: ['127.0.0.1:1'], outlierDetection: { consecutive5xx: 3, baseEjectionTime: '300ms', interval: '50ms', maxEjectionPercent: 50 } });
    expect(c.cluster.outlierDetection).toMatchObject({ consecutive5xx: 3, baseEjectionTimeMs: 300, intervalMs: 50, maxEjectionPercent: 50 });
    expect(() => clusterSchema.parse({ name: 'c', endpoints: ['127.0.0.1:1'], outlierDetection: { consecutive5xx: -1 } })).toThrow(/consecutive5xx/);
  });
});

describe('OutlierDetector', () => {
  it('ejects after consecutive 5xx, a success in between resets the count', () => {
    const { d, h, hosts, events } = setup({ consecutiveGatewayFailure: 0 });
    for (let i = 0; i < 4; i++) d.report(h[0]!, 500);
    d.report(h[0]!, 200);
    for (let i = 0; i < 4; i++) d.report(h[0]!, 500);
    expect(h[0]!.healthy).toBe(true);
    d.report(h[0]!, 500);
    expect(h[0]!.healthFlagBits & HEALTH_FLAG_OUTLIER).toBeTruthy();
    expect(h[0]!.healthFlags()).toBe('/failed_outlier_check');
    expect(hosts.healthy).toEqual([h[1], h[2]]);
    expect(events).toEqual(['eject 1000 consecutive_5xx 1000']);
  });

  it('gateway failures (502-504 and 0 = connect failure) eject on their own counter', () => {
    const { d, h, events } = setup({ consecutive5xx: 0, consecutiveGatewayFailure: 3 });
    d.report(h[0]!, 0);
    d.report(h[0]!, 503);
    d.report(h[0]!, 500); // not a gateway error: resets the gateway count
    d.report(h[0]!, 502);
    d.report(h[0]!, 504);
    expect(h[0]!.healthy).toBe(true);
    d.report(h[0]!, 0);
    expect(h[0]!.healthy).toBe(false);
    expect(events).toEqual(['eject 1000 consecutive_gateway_failure 1000']);
  });

  it('returns the host on the interval tick after baseEjectionTime × ejections', () => {
    const { d, h, clock, events } = setup({ consecutive5xx: 1 });
    d.report(h[0]!, 500);
    clock.t = 999;
    d.tick();
    expect(h[0]!.healthy).toBe(false);
    clock.t = 1000;
    d.tick();
    expect(h[0]!.healthy).toBe(true);
    d.report(h[0]!, 500); // second ejection: twice as long
    expect(events.at(-1)).toBe('eject 1000 consecutive_5xx 2000');
    clock.t = 2999;
    d.tick();
    expect(h[0]!.healthy).toBe(false);
    clock.t = 3000;
    d.tick();
    expect(h[0]!.healthy).toBe(true);
    // Each healthy interval takes one off the multiplier.
    d.tick();
    d.tick();
    d.report(h[0]!, 500);
    expect(events.at(-1)).toBe('eject 1000 consecutive_5xx 1000');
  });

  it('never ejects more than maxEjectionPercent of the hosts', () => {
    const { d, h } = setup({ consecutive5xx: 1, maxEjectionPercent: 50 });
    d.report(h[0]!, 500);
    d.report(h[1]!, 500);
    expect(h.filter((x) => !x.healthy)).toEqual([h[0]]);
    const ten = setup({ consecutive5xx: 1, maxEjectionPercent: 10 });
    ten.d.report(ten.h[0]!, 500); // 1 of 3 = 33 % > 10 %: Envoy ejects nothing
    expect(ten.h[0]!.healthy).toBe(true);
  });
});
