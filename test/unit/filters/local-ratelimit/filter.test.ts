import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { localRateLimitFactory, LocalRateLimitFilter, keyExtractor, type RateLimitShared } from '../../../../src/filters/local-ratelimit/index.js';
import type { FilterContext, HttpFilter, HttpStream, ResponseHead } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { stream } from './stream.js';

function ctx(registry = new Registry()): FilterContext {
  return {
    registry,
    logger: pino({ level: 'silent' }),
    listenerName: 'main',
    direction: 'INBOUND',
    node: {} as FilterContext['node'],
    accessLog: { path: '', format: 'json' },
  };
}

async function run(f: HttpFilter, s: HttpStream): Promise<string> {
  return String(await f.onRequestHeaders!(s, true));
}

async function metric(reg: Registry, decision: string, route = 'r'): Promise<number> {
  const m = await reg.getSingleMetric('capa_ratelimit_requests_total')!.get();
  return m.values.find((v) => v.labels.decision === decision && v.labels.route === route)?.value ?? 0;
}

describe('local rate limit filter', () => {
  it('passes requestsPerUnit + burst, then replies 429 with RL, gRPC 8 and the headers', async () => {
    const reg = new Registry();
    const built = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ requestsPerUnit: 5, burst: 3 }), ctx(reg));
    const create = built.forRoute(undefined)!;
    const results: string[] = [];
    for (let i = 0; i < 8; i++) results.push(await run(create(), stream()));
    expect(results).toEqual(Array(8).fill('continue'));
    const s = stream();
    expect(await run(create(), s)).toBe('stop');
    expect(s.replies[0]).toMatchObject({ status: 429, body: 'local_rate_limited', opts: { flag: 'RL', grpcStatus: 8, details: 'local_rate_limited' } });
    const h = s.replies[0]!.opts!.headers!;
    expect(h['ratelimit-limit']).toBe('5');
    expect(h['ratelimit-remaining']).toBe('0');
    expect(Number(h['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(h['ratelimit-reset']).toBe(h['retry-after']);
    expect(await metric(reg, 'passed')).toBe(8);
    expect(await metric(reg, 'limited')).toBe(1);
    built.close?.();
  });

  it('adds ratelimit-* headers to responses that passed', async () => {
    const built = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ requestsPerUnit: 3, unit: 'minute' }), ctx());
    const f = built.forRoute(undefined)!();
    const s = stream();
    await run(f, s);
    const head: ResponseHead = { status: 200, headers: new HeaderMap() };
    f.onResponseHeaders!(s, head);
    expect(head.headers.get('ratelimit-limit')).toBe('3');
    expect(head.headers.get('ratelimit-remaining')).toBe('2');
    const reset = Number(head.headers.get('ratelimit-reset'));
    expect(reset).toBeGreaterThan(55);
    expect(reset).toBeLessThanOrEqual(60);
    built.close?.();
  });

  it('keeps one bucket per key', async () => {
    const built = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ requestsPerUnit: 2, by: 'header:x-user' }), ctx());
    const create = built.forRoute(undefined)!;
    const go = (user: string) => run(create(), stream({ headers: { 'x-user': user } }));
    expect([await go('a'), await go('a'), await go('a')]).toEqual(['continue', 'continue', 'stop']);
    expect([await go('b'), await go('b'), await go('b')]).toEqual(['continue', 'continue', 'stop']);
    built.close?.();
  });

  it('per-route: an override has its own buckets per route, disabled and concurrency-less empty configs cost nothing', async () => {
    const built = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ requestsPerUnit: 1 }), ctx());
    const listener = built.forRoute(undefined)!;
    const over = localRateLimitFactory.parsePerRoute!({ requestsPerUnit: 2 });
    const a = built.forRoute(over)!;
    const b = built.forRoute(localRateLimitFactory.parsePerRoute!({ requestsPerUnit: 2 }))!;
    expect(built.forRoute(localRateLimitFactory.parsePerRoute!({ disabled: true }))).toBeNull();
    expect(await run(listener(), stream({ route: 'x' }))).toBe('continue');
    expect(await run(listener(), stream({ route: 'y' }))).toBe('stop');
    const ra = [await run(a(), stream({ route: 'a' })), await run(a(), stream({ route: 'a' })), await run(a(), stream({ route: 'a' }))];
    expect(ra).toEqual(['continue', 'continue', 'stop']);
    expect(await run(b(), stream({ route: 'b' }))).toBe('continue');
    built.close?.();
  });

  it('concurrency: replies 503 x-capa-overloaded when full and frees the slot on completion', async () => {
    const reg = new Registry();
    const built = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ concurrency: { maxInFlight: 2 } }), ctx(reg));
    const create = built.forRoute(undefined)!;
    const f1 = create();
    const f2 = create();
    const s1 = stream();
    expect(f1.onRequestHeaders!(s1, true)).toBe('continue');
    expect(f2.onRequestHeaders!(stream(), true)).toBe('continue');
    const s3 = stream();
    expect(create().onRequestHeaders!(s3, true)).toBe('stop');
    expect(s3.replies[0]).toMatchObject({ status: 503, opts: { headers: { 'x-capa-overloaded': 'true' } } });
    f1.onComplete!(s1);
    f1.onComplete!(s1); // completing twice releases once
    expect(create().onRequestHeaders!(stream(), true)).toBe('continue');
    expect(create().onRequestHeaders!(stream(), true)).toBe('stop');
    expect(await metric(reg, 'rejected_concurrency')).toBe(2);
    // A request that never took a slot (an earlier filter replied) releases nothing.
    create().onComplete!(stream());
    expect(create().onRequestHeaders!(stream(), true)).toBe('stop');
    built.close?.();
  });

  it('a reload with the same limit keeps counting; close() lets the counters go', async () => {
    const reg = new Registry();
    const cfg = localRateLimitFactory.parseConfig({ requestsPerUnit: 2, unit: 'hour' });
    const v1 = localRateLimitFactory.build(cfg, ctx(reg));
    expect(await run(v1.forRoute(undefined)!(), stream())).toBe('continue');
    const v2 = localRateLimitFactory.build(localRateLimitFactory.parseConfig({ requestsPerUnit: 2, unit: 'hour' }), ctx(reg));
    v1.close?.();
    expect(await run(v2.forRoute(undefined)!(), stream())).toBe('continue');
    expect(await run(v2.forRoute(undefined)!(), stream())).toBe('stop');
    v2.close?.();
    const v3 = localRateLimitFactory.build(cfg, ctx(reg));
    expect(await run(v3.forRoute(undefined)!(), stream())).toBe('continue');
    v3.close?.();
    // Another data plane (registry) in the same process has its own counters.
    const other = localRateLimitFactory.build(cfg, ctx());
    expect(await run(other.forRoute(undefined)!(), stream())).toBe('continue');
    other.close?.();
  });

  it('backend failure: failOpen passes, otherwise 503; a limited answer is never a failure', async () => {
    const errors: boolean[] = [];
    const shared = (failOpen: boolean, answer: () => Promise<RateLimiterRes>): RateLimitShared => ({
      limiter: { consume: answer },
      keyOf: keyExtractor({ kind: 'global' }),
      limit: '10',
      statusCode: 429,
      failOpen,
      responseHeaders: true,
      inFlight: null,
      counters: () => ({ passed: { inc() {} }, limited: { inc() {} }, rejectedConcurrency: { inc() {} } }),
      onBackendError: (_e, passed) => errors.push(passed),
    });
    const down = () => Promise.reject(new Error('Redis connection is not ready'));
    expect(await run(new LocalRateLimitFilter(shared(true, down)), stream())).toBe('continue');
    const s = stream();
    expect(await run(new LocalRateLimitFilter(shared(false, down)), s)).toBe('stop');
    expect(s.replies[0]?.status).toBe(503);
    expect(errors).toEqual([true, false]);
    const limited = stream();
    expect(await run(new LocalRateLimitFilter(shared(true, () => Promise.reject(new RateLimiterRes(0, 1500, 11)))), limited)).toBe('stop');
    expect(limited.replies[0]?.status).toBe(429);
    expect(limited.replies[0]?.opts?.headers?.['retry-after']).toBe('2');
  });
});
