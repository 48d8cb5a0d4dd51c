import type { LookupAddress } from 'node:dns';
import dns from 'node:dns';
import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointSpec } from '../../../../src/config/snapshot.js';
import { DnsResolver, type DnsResolverOptions } from '../../../../src/proxy/cluster/index.js';

const loc = { region: '', zone: 'z1', subZone: '' };
function ep(address: string, port = 8080, weight = 1): EndpointSpec {
  return { address, port, weight, healthStatus: 'UNKNOWN', locality: loc, priority: 0 };
}

const resolvers: DnsResolver[] = [];
afterEach(() => {
  while (resolvers.length) resolvers.pop()!.stop();
});

function make(endpoints: EndpointSpec[], opts: Partial<DnsResolverOptions> & Pick<DnsResolverOptions, 'onUpdate'>): DnsResolver {
  const r = new DnsResolver(endpoints, { refreshMs: 30, family: 'V4_ONLY', ...opts });
  resolvers.push(r);
  return r;
}

async function waitFor(cond: () => boolean, timeoutMs = 1500): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An injectable lookup whose answers the test changes; records the options it was called with. */
function fakeLookup(answers: Record<string, LookupAddress[] | Error>) {
  const calls: { host: string; options: unknown }[] = [];
  const fn = (async (host: string, options: unknown) => {
    calls.push({ host, options });
    const a = answers[host];
    if (a === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    if (a instanceof Error) throw a;
    return a;
  }) as unknown as typeof dns.promises.lookup;
  return { fn, calls };
}

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

describe('DnsResolver', () => {
  it("resolves 'localhost' with the real resolver, respecting the family", async () => {
    const updates: EndpointSpec[][] = [];
    await make([ep('localhost', 9000, 3)], { family: 'V4_ONLY', onUpdate: (r) => updates.push(r) }).start();
    expect(updates).toHaveLength(1);
    expect(updates[0]!.map((e) => e.address)).toEqual(['127.0.0.1']);
    expect(updates[0]![0]).toMatchObject({ port: 9000, weight: 3, locality: loc });

    const all: EndpointSpec[][] = [];
    await make([ep('localhost')], { family: 'ALL', onUpdate: (r) => all.push(r) }).start();
    const addrs = all[0]!.map((e) => e.address);
    expect(addrs.length).toBeGreaterThanOrEqual(1);
    for (const a of addrs) expect(['127.0.0.1', '::1']).toContain(a);
  });

  it('passes IP literals through and asks for the configured family', async () => {
    const { fn, calls } = fakeLookup({ 'svc.local': [v4('10.0.0.2'), v4('10.0.0.1')] });
    const updates: EndpointSpec[][] = [];
    await make([ep('192.168.1.1', 80), ep('svc.local', 81, 2), ep('::1', 82)], { lookup: fn, family: 'V6_ONLY', onUpdate: (r) => updates.push(r) }).start();
    expect(calls).toEqual([{ host: 'svc.local', options: { all: true, family: 6 } }]);
    expect(updates[0]!.map((e) => `${e.address}:${e.port}:${e.weight}`)).toEqual(['192.168.1.1:80:1', '::1:82:1']);
  });

  it('AUTO prefers IPv6, V4_PREFERRED prefers IPv4, both fall back', async () => {
    const answers = { both: [v4('10.0.0.1'), v6('fd00::1')], only4: [v4('10.0.0.9')] };
    const auto: EndpointSpec[][] = [];
    await make([ep('both'), ep('only4')], { lookup: fakeLookup(answers).fn, family: 'AUTO', onUpdate: (r) => auto.push(r) }).start();
    expect(auto[0]!.map((e) => e.address)).toEqual(['fd00::1', '10.0.0.9']);
    const pref4: EndpointSpec[][] = [];
    await make([ep('both')], { lookup: fakeLookup(answers).fn, family: 'V4_PREFERRED', onUpdate: (r) => pref4.push(r) }).start();
    expect(pref4[0]!.map((e) => e.address)).toEqual(['10.0.0.1']);
  });

  it('re-resolves, calls onUpdate only when the set changed, and ignores answer order', async () => {
    const answers: Record<string, LookupAddress[] | Error> = { svc: [v4('10.0.0.1'), v4('10.0.0.2')] };
    const { fn, calls } = fakeLookup(answers);
    const updates: EndpointSpec[][] = [];
    await make([ep('svc')], { lookup: fn, onUpdate: (r) => updates.push(r) }).start();
    expect(updates).toHaveLength(1);
    answers.svc = [v4('10.0.0.2'), v4('10.0.0.1')];
    await waitFor(() => calls.length >= 3);
    expect(updates).toHaveLength(1);
    answers.svc = [v4('10.0.0.3')];
    await waitFor(() => updates.length === 2);
    expect(updates[1]!.map((e) => e.address)).toEqual(['10.0.0.3']);
  });

  it('a failing lookup keeps the previous addresses and reports onError', async () => {
    const answers: Record<string, LookupAddress[] | Error> = { a: [v4('10.0.0.1')], b: [v4('10.0.1.1')] };
    const { fn, calls } = fakeLookup(answers);
    const updates: EndpointSpec[][] = [];
    const errors: string[] = [];
    const r = make([ep('a'), ep('b')], { lookup: fn, onUpdate: (x) => updates.push(x), onError: (h, e) => errors.push(`${h}: ${e.message}`) });
    await r.start();
    answers.a = new Error('SERVFAIL');
    answers.b = [v4('10.0.1.2')];
    await waitFor(() => updates.length === 2);
    expect(updates[1]!.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.1.2']);
    expect(errors[0]).toBe('a: SERVFAIL');
    const n = calls.length;
    await waitFor(() => calls.length >= n + 4);
    expect(updates).toHaveLength(2);
    expect(r.current.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.1.2']);
  });

  it('a name that never resolved contributes nothing; start() still completes', async () => {
    const updates: EndpointSpec[][] = [];
    const errors: string[] = [];
    await make([ep('nope.invalid'), ep('10.0.0.1')], { lookup: fakeLookup({}).fn, onUpdate: (r) => updates.push(r), onError: (h) => errors.push(h) }).start();
    expect(updates[0]!.map((e) => e.address)).toEqual(['10.0.0.1']);
    expect(errors).toEqual(['nope.invalid']);
  });

  it('stop() ends re-resolution', async () => {
    const { fn, calls } = fakeLookup({ svc: [v4('10.0.0.1')] });
    const r = make([ep('svc')], { lookup: fn, onUpdate: () => {} });
    await r.start();
    r.stop();
    const n = calls.length;
    await new Promise((res) => setTimeout(res, 100));
    expect(calls.length).toBe(n);
  });
});
