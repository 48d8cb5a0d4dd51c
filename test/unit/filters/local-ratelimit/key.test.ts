import { describe, expect, it } from 'vitest';
import { keyExtractor, perRouteKey, MAX_KEY_VALUE } from '../../../../src/filters/local-ratelimit/index.js';
import { stream } from './stream.js';

describe('rate limit keys', () => {
  it('global: one bucket', () => {
    const k = keyExtractor({ kind: 'global' });
    expect(k(stream({ path: '/a' }))).toBe(k(stream({ path: '/b', headers: { 'x-user': 'u' } })));
  });

  it('header: one bucket per value, requests without it share one other bucket', () => {
    const k = keyExtractor({ kind: 'header', name: 'x-user' });
    const alice = k(stream({ headers: { 'x-user': 'alice' } }));
    const bob = k(stream({ headers: { 'X-User': 'bob' } }));
    const none = k(stream());
    expect(new Set([alice, bob, none]).size).toBe(3);
    expect(k(stream({ headers: { 'x-user': 'alice' } }))).toBe(alice);
    expect(k(stream({ headers: { 'x-user': '' } }))).not.toBe(none);
    expect(k(stream({ headers: { 'x-user': 'a'.repeat(10_000) } })).length).toBe(MAX_KEY_VALUE + 1);
  });

  it('sourceIp: the peer address, IPv4-mapped IPv6 folded to IPv4', () => {
    const k = keyExtractor({ kind: 'sourceIp' });
    expect(k(stream({ remote: '127.0.0.7' }))).toBe('127.0.0.7');
    expect(k(stream({ remote: '::ffff:127.0.0.7' }))).toBe('127.0.0.7');
    expect(k(stream({ remote: '::1', headers: { 'x-forwarded-for': '10.0.0.1' } }))).toBe('::1');
  });

  it('path: without the query; route: the route name', () => {
    const p = keyExtractor({ kind: 'path' });
    expect(p(stream({ path: '/a/b?x=1' }))).toBe('/a/b');
    expect(p(stream({ path: '/a/b' }))).toBe('/a/b');
    const r = keyExtractor({ kind: 'route' });
    expect(r(stream({ route: 'orders' }))).toBe('orders');
  });

  it('per-route keys keep routes apart', () => {
    const k = perRouteKey(keyExtractor({ kind: 'global' }));
    expect(k(stream({ route: 'a' }))).not.toBe(k(stream({ route: 'b' })));
  });
});
