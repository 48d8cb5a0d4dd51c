/**
 * The dynamic forward proxy cluster (DYNAMIC_FORWARD_PROXY, `invoke|*`) and its DNS cache:
 * hosts made on first use from the request's Host, one lookup per name however many requests
 * wait, cached answers (synchronous), refresh, failed refreshes keeping the last addresses,
 * idle names expiring, the maxHosts bound, the DF failure, Dapr's app.namespace form, and the
 * cache surviving a reload. Lookups are injected (no DNS traffic), except one that resolves
 * 'localhost' through the real resolver the STRICT_DNS clusters use.
 */
import type { LookupAddress } from 'node:dns';
import type dns from 'node:dns';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clusterSchema } from '../../../../src/config/schema-clusters.js';
import type { ClusterSpec, DynamicForwardProxySpec, Snapshot } from '../../../../src/config/snapshot.js';
import { CapaError, localReplyFor } from '../../../../src/errors.js';
import { Cluster } from '../../../../src/proxy/cluster/cluster.js';
import { ClusterManager } from '../../../../src/proxy/cluster/cluster-manager.js';
import { DnsCache, DnsCacheManager, type DnsCacheConfig, type DnsHostInfo } from '../../../../src/proxy/cluster/dns-cache.js';
import { DNS_RESOLUTION_FAILURE, dnsNameFor } from '../../../../src/proxy/cluster/dynamic-forward-proxy.js';
import type { Host } from '../../../../src/proxy/cluster/host.js';

const logger = pino({ level: 'silent' });
const v4 = (address: string): LookupAddress => ({ address, family: 4 });

/** A lookup whose answers the test changes; `calls` lists the names asked, `gate` holds answers back. */
function fakeLookup(answers: Record<string, LookupAddress[] | Error>) {
  const calls: string[] = [];
  let release: (() => void) | null = null;
  let gate: Promise<void> | null = null;
  const fn = (async (host: string) => {
    calls.push(host);
    if (gate) await gate;
    const a = answers[host];
    if (a === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    if (a instanceof Error) throw a;
    return a;
  }) as unknown as typeof dns.promises.lookup;
  return {
    fn,
    calls,
    hold() {
      gate = new Promise((r) => (release = r));
    },
    release() {
      gate = null;
      release?.();
    },
  };
}

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const DFP: DynamicForwardProxySpec = { nameTemplate: '{appId}.{namespace}.svc.cluster.local', defaultNamespace: 'shop', port: 3500, hostTtlMs: 300_000, maxHosts: 1024 };

function dfpSpec(d: Partial<DynamicForwardProxySpec> = {}, refreshMs = 60_000): ClusterSpec {
  const base = clusterSchema.parse({ name: 'invoke|*', dnsRefreshRate: `${refreshMs}ms`, dnsLookupFamily: 'V4_ONLY' }).cluster;
  return { ...base, type: 'DYNAMIC_FORWARD_PROXY', lbPolicy: 'CLUSTER_PROVIDED', dynamicForwardProxy: { ...DFP, ...d } };
}

const open: { close(): void }[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});

function cluster(spec: ClusterSpec, caches: DnsCacheManager): Cluster {
  const c = new Cluster(spec, undefined, logger, { dnsCaches: caches });
  open.push(c);
  return c;
}

interface Picked {
  err: CapaError | null;
  host: Host | null;
  sync: boolean;
}

/** Cluster.dynamicHost as the router calls it; `sync` says whether the answer came before it returned. */
function pick(c: Cluster, authority: string, attempted: Host[] | null = null): Promise<Picked> {
  return new Promise((resolve) => {
    let returned = false;
    c.dynamicHost(authority, { hash: undefined, attempted }, (err, host) => resolve({ err, host, sync: !returned }));
    returned = true;
  });
}

describe('dnsNameFor (Dapr app ids → the template)', () => {
  it('fills {appId} and {namespace}: app → own namespace, app.namespace → that one; lower case; port stripped', () => {
    expect(dnsNameFor(DFP, 'orders')).toBe('orders.shop.svc.cluster.local');
    expect(dnsNameFor(DFP, 'Orders.Prod:80')).toBe('orders.prod.svc.cluster.local');
    expect(dnsNameFor({ ...DFP, nameTemplate: '{appId}-dapr.{namespace}.svc' }, 'pay')).toBe('pay-dapr.shop.svc');
  });
  it('refuses ids that are not app / app.namespace, and names that cannot be DNS names', () => {
    expect(dnsNameFor(DFP, 'a.b.c')).toBeInstanceOf(Error);
    expect(dnsNameFor(DFP, '[::1]:80')).toBeInstanceOf(Error);
    expect((dnsNameFor({ ...DFP, nameTemplate: '{appId}' }, 'x'.repeat(64)) as Error).message).toContain('cannot be a DNS name');
  });
});

describe('DnsCache', () => {
  const config: DnsCacheConfig = { refreshMs: 60_000, hostTtlMs: 300_000, maxHosts: 1024, family: 'V4_ONLY' };
  const caches: DnsCache[] = [];
  afterEach(() => {
    while (caches.length) caches.pop()!.close();
  });
  const make = (c: Partial<DnsCacheConfig>, lookup: ReturnType<typeof fakeLookup>, now?: () => number) => {
    const cache = new DnsCache({ ...config, ...c }, { lookup: lookup.fn, ...(now ? { now } : {}) });
    caches.push(cache);
    return cache;
  };

  it('one lookup per name however many ask while it runs; then answers from the cache', async () => {
    const l = fakeLookup({ 'a.svc': [v4('10.0.0.2'), v4('10.0.0.1')] });
    const cache = make({}, l);
    l.hold();
    const loaded: DnsHostInfo[] = [];
    expect(cache.load('a.svc', (i) => loaded.push(i)).status).toBe('loading');
    expect(cache.load('a.svc', (i) => loaded.push(i)).status).toBe('loading');
    l.release();
    await waitFor(() => loaded.length === 2);
    expect(l.calls).toEqual(['a.svc']);
    expect(loaded[0]).toMatchObject({ name: 'a.svc', addresses: ['10.0.0.1', '10.0.0.2'], resolved: true, error: '' });
    const hit = cache.load('a.svc', () => expect.unreachable());
    expect(hit).toMatchObject({ status: 'in-cache', info: { addresses: ['10.0.0.1', '10.0.0.2'] } });
    expect(cache.stats).toMatchObject({ queryAttempt: 1, querySuccess: 1, hostAdded: 1 });
  });

  it('refreshes every refreshMs; listeners hear changed addresses; a failed refresh keeps the last good ones', async () => {
    const answers: Record<string, LookupAddress[] | Error> = { 'a.svc': [v4('10.0.0.1')] };
    const l = fakeLookup(answers);
    const cache = make({ refreshMs: 20 }, l);
    const updates: string[][] = [];
    cache.subscribe({ onHostUpdate: (i) => updates.push([...i.addresses]), onHostRemove: () => expect.unreachable() });
    cache.load('a.svc', () => undefined);
    await waitFor(() => updates.length === 1);
    answers['a.svc'] = [v4('10.0.0.9')];
    await waitFor(() => updates.length === 2);
    expect(updates).toEqual([['10.0.0.1'], ['10.0.0.9']]);
    answers['a.svc'] = Object.assign(new Error('getaddrinfo EAI_AGAIN a.svc'), { code: 'EAI_AGAIN' });
    const failures = cache.stats.queryFailure;
    await waitFor(() => cache.stats.queryFailure > failures);
    const info = (cache.load('a.svc', () => undefined) as { info: DnsHostInfo }).info;
    expect(info).toMatchObject({ addresses: ['10.0.0.9'], error: 'EAI_AGAIN' });
    expect(updates).toHaveLength(2);
    expect(cache.stats.hostAddressChanged).toBe(1);
  });

  it('a name that never resolved is cached as failed (fast failures) and tried again at each refresh', async () => {
    const answers: Record<string, LookupAddress[] | Error> = {};
    const l = fakeLookup(answers);
    const cache = make({ refreshMs: 20 }, l);
    const first = await new Promise<DnsHostInfo>((r) => cache.load('late.svc', r));
    expect(first).toMatchObject({ resolved: true, addresses: [], error: 'ENOTFOUND' });
    expect(cache.load('late.svc', () => undefined)).toMatchObject({ status: 'in-cache', info: { addresses: [] } });
    answers['late.svc'] = [v4('10.0.0.5')];
    await waitFor(() => (cache.load('late.svc', () => undefined) as { info: DnsHostInfo }).info.addresses.length === 1);
    expect(l.calls.length).toBeGreaterThanOrEqual(2);
  });

  it('drops a name unused for hostTtl at its next refresh (listeners hear it); a used one stays', async () => {
    let now = 0;
    const l = fakeLookup({ 'idle.svc': [v4('10.0.0.1')], 'busy.svc': [v4('10.0.0.2')] });
    const cache = make({ refreshMs: 10, hostTtlMs: 1000 }, l, () => now);
    const removed: string[] = [];
    cache.subscribe({ onHostUpdate: () => undefined, onHostRemove: (n) => removed.push(n) });
    await new Promise((r) => cache.load('idle.svc', r));
    await new Promise((r) => cache.load('busy.svc', r));
    now = 800;
    cache.load('busy.svc', () => undefined);
    now = 1500;
    await waitFor(() => removed.length === 1);
    expect(removed).toEqual(['idle.svc']);
    expect(cache.hosts().map((h) => h.name)).toEqual(['busy.svc']);
    expect(cache.stats.hostRemoved).toBe(1);
  });

  it('maxHosts: a new name beyond the bound is refused; cached names keep answering', async () => {
    const l = fakeLookup({ 'a.svc': [v4('10.0.0.1')], 'b.svc': [v4('10.0.0.2')] });
    const cache = make({ maxHosts: 1 }, l);
    await new Promise((r) => cache.load('a.svc', r));
    expect(cache.load('b.svc', () => expect.unreachable())).toEqual({ status: 'overflow' });
    expect(cache.load('a.svc', () => undefined).status).toBe('in-cache');
    expect(cache.stats.hostOverflow).toBe(1);
    expect(l.calls).toEqual(['a.svc']);
  });

  it('a lookup that hangs counts as failed after 5s (Envoy dns_query_timeout); its late answer is still used', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const l = fakeLookup({ 'slow.svc': [v4('10.0.0.3')] });
      const cache = make({}, l);
      const updates: string[][] = [];
      cache.subscribe({ onHostUpdate: (i) => updates.push([...i.addresses]), onHostRemove: () => undefined });
      l.hold();
      const loaded: DnsHostInfo[] = [];
      cache.load('slow.svc', (i) => loaded.push({ ...i }));
      await vi.advanceTimersByTimeAsync(4999);
      expect(loaded).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(loaded).toMatchObject([{ resolved: true, addresses: [], error: 'ETIMEOUT (no answer in 5s)' }]);
      l.release();
      await new Promise((r) => setImmediate(r));
      expect(updates).toEqual([['10.0.0.3']]);
      expect(cache.load('slow.svc', () => undefined)).toMatchObject({ status: 'in-cache', info: { addresses: ['10.0.0.3'], error: '' } });
    } finally {
      vi.useRealTimers();
    }
  });

  it('DnsCacheManager shares one cache per settings and closes it with its last user', () => {
    const m = new DnsCacheManager({ lookup: fakeLookup({}).fn });
    const a = m.acquire(config);
    const b = m.acquire({ ...config });
    const other = m.acquire({ ...config, maxHosts: 2 });
    expect(b).toBe(a);
    expect(other).not.toBe(a);
    m.release(a);
    expect(a.load('x.svc', () => undefined).status).toBe('loading');
    m.release(b);
    expect(a.load('y.svc', () => undefined).status).toBe('overflow');
    m.release(other);
  });
});

describe('DYNAMIC_FORWARD_PROXY cluster', () => {
  it('makes hosts on first use from the Host: app → {appId}.<own ns>, app.namespace → that namespace; cached picks are synchronous', async () => {
    const l = fakeLookup({ 'orders.shop.svc.cluster.local': [v4('10.1.0.1')], 'orders.prod.svc.cluster.local': [v4('10.2.0.1')] });
    const c = cluster(dfpSpec(), new DnsCacheManager({ lookup: l.fn }));
    const first = await pick(c, 'orders');
    expect(first).toMatchObject({ err: null, sync: false });
    expect(first.host!.key).toBe('10.1.0.1:3500');
    const again = await pick(c, 'orders');
    expect(again.sync).toBe(true);
    expect(again.host).toBe(first.host);
    expect((await pick(c, 'orders.prod')).host!.key).toBe('10.2.0.1:3500');
    expect((await pick(c, 'orders.shop')).host).toBe(first.host);
    expect(l.calls).toEqual(['orders.shop.svc.cluster.local', 'orders.prod.svc.cluster.local']);
    expect(c.status()).toMatchObject({ type: 'DYNAMIC_FORWARD_PROXY', lbPolicy: 'CLUSTER_PROVIDED' });
    expect(c.status().hosts.map((h) => `${h.address}:${h.port}`)).toEqual(['10.1.0.1:3500', '10.2.0.1:3500']);
    // One pool per resolved host, kept across requests.
    expect(c.pool(first.host!)).toBe(c.pool(again.host!));
  });

  it('a name that does not resolve: 503 flag DF, body "DNS resolution failure: ..."; cached, so the next request fails at once', async () => {
    const l = fakeLookup({});
    const c = cluster(dfpSpec(), new DnsCacheManager({ lookup: l.fn }));
    const r = await pick(c, 'ghost');
    expect(r.host).toBeNull();
    expect(r.err!.code).toBe('CAPA_ERR_DNS_RESOLUTION');
    const reply = localReplyFor(r.err);
    expect(reply).toMatchObject({ status: 503, flag: 'DF', details: 'dns_resolution_failure' });
    expect(reply.body.startsWith(DNS_RESOLUTION_FAILURE)).toBe(true);
    expect(reply.body).toContain("'ghost.shop.svc.cluster.local' did not resolve (ENOTFOUND)");
    const again = await pick(c, 'ghost');
    expect(again.sync).toBe(true);
    expect(again.err!.code).toBe('CAPA_ERR_DNS_RESOLUTION');
    expect(l.calls).toEqual(['ghost.shop.svc.cluster.local']);
    // Not an app id at all: DF too, without a lookup.
    expect((await pick(c, 'a.b.c')).err!.code).toBe('CAPA_ERR_DNS_RESOLUTION');
    expect(l.calls).toHaveLength(1);
  });

  it('maxHosts: a new app id beyond the bound is 503 "DNS cache overflow" (no flag, as Envoy); cached ones still work', async () => {
    const l = fakeLookup({ 'a.shop.svc.cluster.local': [v4('10.0.0.1')], 'b.shop.svc.cluster.local': [v4('10.0.0.2')] });
    const c = cluster(dfpSpec({ maxHosts: 1 }), new DnsCacheManager({ lookup: l.fn }));
    expect((await pick(c, 'a')).err).toBeNull();
    const r = await pick(c, 'b');
    expect(r.err!.code).toBe('CAPA_ERR_DNS_CACHE_OVERFLOW');
    expect(localReplyFor(r.err)).toMatchObject({ status: 503, flag: '', details: 'dns_cache_overflow' });
    expect(r.err!.message).toBe("DNS cache overflow: the cache is full (maxHosts 1); 'b.shop.svc.cluster.local' is not in it");
    expect((await pick(c, 'a')).host!.key).toBe('10.0.0.1:3500');
  });

  it('round robin over a name’s addresses, preferring hosts this request has not tried; names share a host for the same address', async () => {
    const l = fakeLookup({ 'multi.shop.svc.cluster.local': [v4('10.0.0.2'), v4('10.0.0.1')], 'alias.shop.svc.cluster.local': [v4('10.0.0.1')] });
    const c = cluster(dfpSpec(), new DnsCacheManager({ lookup: l.fn }));
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) keys.push((await pick(c, 'multi')).host!.key);
    expect(keys).toEqual(['10.0.0.1:3500', '10.0.0.2:3500', '10.0.0.1:3500', '10.0.0.2:3500']);
    const tried = (await pick(c, 'multi')).host!;
    for (let i = 0; i < 3; i++) expect((await pick(c, 'multi', [tried])).host).not.toBe(tried);
    const alias = (await pick(c, 'alias')).host!;
    expect(alias.key).toBe('10.0.0.1:3500');
    expect(c.hosts.all.filter((h) => h === alias)).toHaveLength(1);
    expect(c.hosts.all).toHaveLength(2);
  });

  it('refresh moves a name to its new address; hostTtl expiry removes its hosts', async () => {
    const answers: Record<string, LookupAddress[] | Error> = { 'mv.shop.svc.cluster.local': [v4('10.0.0.1')] };
    const l = fakeLookup(answers);
    const c = cluster(dfpSpec({ hostTtlMs: 120 }, 20), new DnsCacheManager({ lookup: l.fn }));
    expect((await pick(c, 'mv')).host!.key).toBe('10.0.0.1:3500');
    answers['mv.shop.svc.cluster.local'] = [v4('10.0.0.7')];
    await waitFor(() => c.hosts.all.some((h) => h.key === '10.0.0.7:3500'));
    expect((await pick(c, 'mv')).host!.key).toBe('10.0.0.7:3500');
    expect(c.hosts.all.map((h) => h.key)).toEqual(['10.0.0.7:3500']);
    await waitFor(() => c.hosts.all.length === 0, 3000);
  });

  it("resolves through the clusters' real DNS lookup (getaddrinfo: /etc/hosts' localhost, no DNS traffic)", async () => {
    const c = cluster(dfpSpec({ nameTemplate: '{appId}', port: 9 }), new DnsCacheManager());
    const r = await pick(c, 'localhost');
    expect(r.err).toBeNull();
    expect(r.host!.key).toBe('127.0.0.1:9');
  });

  it('a reload keeps the DNS cache: an unchanged cluster is reused, a changed one with the same cache settings finds it warm', async () => {
    const l = fakeLookup({ 'orders.shop.svc.cluster.local': [v4('10.1.0.1')] });
    const cm = new ClusterManager(logger, undefined, new DnsCacheManager({ lookup: l.fn }));
    open.push(cm);
    const snap = (spec: ClusterSpec) => ({ clusters: { [spec.name]: spec }, endpoints: { [spec.name]: { clusterName: spec.name, endpoints: [] } } }) as unknown as Snapshot;
    await cm.apply(snap(dfpSpec()));
    const first = cm.get('invoke|*')!;
    expect((await pick(first, 'orders')).host!.key).toBe('10.1.0.1:3500');
    await cm.apply(snap(dfpSpec()));
    expect(cm.get('invoke|*')).toBe(first);
    await cm.apply(snap({ ...dfpSpec({ port: 4000 }), connectTimeoutMs: 1234 }));
    const second = cm.get('invoke|*')!;
    expect(second).not.toBe(first);
    const r = await pick(second, 'orders');
    expect(r.sync).toBe(true);
    expect(r.host!.key).toBe('10.1.0.1:4000');
    expect(l.calls).toEqual(['orders.shop.svc.cluster.local']);
    // The old cluster is closed: its requests are told the cluster went away.
    expect((await pick(first, 'orders')).err!.message).toContain('was removed');
  });
});
