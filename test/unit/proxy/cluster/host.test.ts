import { describe, expect, it } from 'vitest';
import type { EndpointSpec } from '../../../../src/config/snapshot.js';
import { Host, HostSet, hostKey, hostsFromAssignment } from '../../../../src/proxy/cluster/index.js';

const loc = { region: 'r', zone: 'z', subZone: '' };
function ep(address: string, port = 80, extra: Partial<EndpointSpec> = {}): EndpointSpec {
  return { address, port, weight: 1, healthStatus: 'UNKNOWN', locality: loc, priority: 0, ...extra };
}

describe('Host', () => {
  it('formats keys for IPv4 and IPv6', () => {
    expect(hostKey('1.2.3.4', 80)).toBe('1.2.3.4:80');
    expect(hostKey('::1', 80)).toBe('[::1]:80');
    expect(new Host('::1', 8080).key).toBe('[::1]:8080');
  });

  it('starts healthy unless the endpoint says UNHEALTHY or DRAINING', () => {
    expect(new Host('1.1.1.1', 1).healthy).toBe(true);
    expect(new Host('1.1.1.1', 1).healthFlags()).toBe('healthy');
    const bad = Host.fromEndpoint(ep('1.1.1.1', 1, { healthStatus: 'UNHEALTHY' }));
    expect(bad.healthy).toBe(false);
    expect(bad.healthFlags()).toBe('/failed_eds_health');
    expect(Host.fromEndpoint(ep('1.1.1.1', 1, { healthStatus: 'DRAINING' })).healthFlags()).toBe('/eds_status_draining');
  });

  it('tracks active-HC failure separately from EDS health', () => {
    const h = Host.fromEndpoint(ep('1.1.1.1', 1, { healthStatus: 'UNHEALTHY' }));
    h.healthy = false;
    expect(h.healthFlags()).toBe('/failed_active_hc/failed_eds_health');
    h.healthy = true;
    expect(h.healthy).toBe(false);
    h.setEdsHealthStatus('HEALTHY');
    expect(h.healthy).toBe(true);
  });

  it('clamps weights to ≥ 1', () => {
    expect(new Host('1.1.1.1', 1, { weight: 0 }).weight).toBe(1);
    expect(new Host('1.1.1.1', 1, { weight: 5 }).weight).toBe(5);
  });
});

describe('HostSet', () => {
  it('refresh() recomputes healthy and bumps version', () => {
    const a = new Host('1.1.1.1', 1);
    const b = new Host('1.1.1.2', 1);
    const set = new HostSet([a, b]);
    const v = set.version;
    expect(set.healthy).toEqual([a, b]);
    b.healthy = false;
    set.refresh();
    expect(set.healthy).toEqual([a]);
    expect(set.version).toBe(v + 1);
  });

  it('hostsFromAssignment keeps Host objects, counters and health across updates', () => {
    const set = new HostSet(hostsFromAssignment([ep('10.0.0.1'), ep('10.0.0.2')]));
    const first = set.all[0]!;
    first.stats.rqTotal = 7;
    first.healthy = false;
    set.update(hostsFromAssignment([ep('10.0.0.1', 80, { weight: 3 }), ep('10.0.0.3'), ep('10.0.0.1')], set));
    expect(set.all.map((h) => h.key)).toEqual(['10.0.0.1:80', '10.0.0.3:80']);
    expect(set.all[0]).toBe(first);
    expect(first.stats.rqTotal).toBe(7);
    expect(first.weight).toBe(3);
    expect(first.healthy).toBe(false);
    expect(set.healthy.map((h) => h.key)).toEqual(['10.0.0.3:80']);
  });
});
