import { describe, expect, it } from 'vitest';
import { hostOfAuthority, serviceFromCluster } from '../../../src/observability/istio-service.js';

describe('serviceFromCluster', () => {
  it('takes the FQDN from Istio cluster names', () => {
    expect(serviceFromCluster('outbound|80||reviews.default.svc.cluster.local')).toEqual({ host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' });
    expect(serviceFromCluster('outbound|443|v1|httpbin.org')).toEqual({ host: 'httpbin.org', name: 'httpbin.org', namespace: '' });
  });
  it('uses plain names as they are and knows clusters that name no service', () => {
    expect(serviceFromCluster('backend')).toEqual({ host: 'backend', name: 'backend', namespace: '' });
    for (const c of ['', 'inbound|9080||', 'PassthroughCluster', 'InboundPassthroughCluster', 'BlackHoleCluster']) expect(serviceFromCluster(c)).toBeNull();
  });
  it('a wildcard cluster (invocation’s invoke|*, a wildcard ServiceEntry) names no single service: the Host header does', () => {
    expect(serviceFromCluster('invoke|*')).toBeNull();
    expect(serviceFromCluster('outbound|443||*.example.com')).toBeNull();
    expect(serviceFromCluster('invoke|orders')).toEqual({ host: 'orders', name: 'orders', namespace: '' });
  });
  it('strips ports from authorities', () => {
    expect(hostOfAuthority('Reviews:9080')).toBe('reviews');
    expect(hostOfAuthority('[::1]:80')).toBe('[::1]');
    expect(hostOfAuthority('')).toBe('');
  });
});
