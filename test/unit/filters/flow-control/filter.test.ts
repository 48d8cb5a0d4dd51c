import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { compileMatch, flowControlFactory, policySpecSchema } from '../../../../src/filters/flow-control/index.js';
import type { FilterContext, HttpFilter, HttpStream } from '../../../../src/filters/types.js';
import { stream } from '../local-ratelimit/stream.js';

function ctx(registry: Registry): FilterContext {
  return { registry, logger: pino({ level: 'silent' }), listenerName: 'main', direction: 'INBOUND', node: {} as FilterContext['node'], accessLog: { path: '', format: 'json' } };
}

const match = (m: unknown) => compileMatch(policySpecSchema.parse({ match: m, concurrency: { maxInFlight: 1 } }).match);

function req(o: { method?: string; path?: string; authority?: string } = {}): ReturnType<typeof stream> {
  const s = stream({ path: o.path ?? '/' });
  s.method = o.method ?? 'GET';
  s.authority = o.authority ?? 'svc';
  return s;
}

async function run(f: HttpFilter, s: HttpStream): Promise<string> {
  return String(await f.onRequestHeaders!(s, true));
}

async function count(reg: Registry, policy: string, decision: string): Promise<number> {
  const m = await reg.getSingleMetric('capa_flowcontrol_requests_total')!.get();
  return m.values.find((v) => v.labels.policy === policy && v.labels.decision === decision)?.value ?? 0;
}

const entry = (name: string, spec: unknown) => ({ name, source: 'test', spec, hash: name, stale: false });

describe('policy match', () => {
  it('matches paths by prefix, exact and regex, ignoring the query', () => {
    const m = match({ paths: [{ prefix: '/api/' }, { exact: '/health' }, { regex: '/v[0-9]+/items' }] });
    expect(m('h', '/api/x?y=1', 'GET')).toBe(true);
    expect(m('h', '/health?full', 'GET')).toBe(true);
    expect(m('h', '/healthz', 'GET')).toBe(false);
    expect(m('h', '/v2/items', 'GET')).toBe(true);
    expect(m('h', '/v2/items/3', 'GET')).toBe(false);
    expect(m('h', '/apix', 'GET')).toBe(false);
  });

  it('matches methods and hosts (port ignored, case-blind, wildcards)', () => {
    const m = match({ hosts: ['orders', '*.example.com', 'api-*'], methods: ['GET', 'HEAD'] });
    expect(m('Orders:8080', '/', 'GET')).toBe(true);
    expect(m('a.example.com', '/', 'HEAD')).toBe(true);
    expect(m('api-v2', '/', 'GET')).toBe(true);
    expect(m('orders', '/', 'POST')).toBe(false);
    expect(m('billing', '/', 'GET')).toBe(false);
    expect(match({})('anything', '/x', 'DELETE')).toBe(true);
  });

  it('rejects a bad regex and lower-case methods', () => {
    expect(policySpecSchema.safeParse({ match: { paths: [{ regex: '(' }] }, fault: {} }).success).toBe(false);
    expect(policySpecSchema.safeParse({ match: { methods: ['get'] }, concurrency: { maxInFlight: 1 } }).success).toBe(false);
  });
});

describe('flow_control filter', () => {
  it('applies the first matching policy only: rate limit with 429, others pass; counts decisions', async () => {
    const reg = new Registry();
    const cfg = flowControlFactory.parseConfig({
      policies: [
        entry('api-get', { match: { paths: [{ prefix: '/api/' }], methods: ['GET'] }, rateLimit: { requestsPerUnit: 3 } }),
        entry('api-all', { match: { paths: [{ prefix: '/api/' }] }, rateLimit: { requestsPerUnit: 1 } }),
      ],
    });
    const create = flowControlFactory.build(cfg, ctx(reg)).forRoute(undefined)!;
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(await run(create(), req({ path: '/api/x' })));
    expect(got).toEqual(['continue', 'continue', 'continue', 'stop', 'stop']);
    const s = req({ path: '/api/x' });
    await run(create(), s);
    expect(s.replies[0]).toMatchObject({ status: 429, opts: { flag: 'RL' } });
    // POST falls to the second policy (its own limit of 1), other paths to none
    expect(await run(create(), req({ path: '/api/x', method: 'POST' }))).toBe('continue');
    expect(await run(create(), req({ path: '/api/x', method: 'POST' }))).toBe('stop');
    for (let i = 0; i < 5; i++) expect(await run(create(), req({ path: '/other' }))).toBe('continue');
    expect(await count(reg, 'api-get', 'passed')).toBe(3);
    expect(await count(reg, 'api-get', 'limited')).toBe(3);
    expect(await count(reg, 'api-all', 'passed')).toBe(1);
    expect(await count(reg, 'api-all', 'limited')).toBe(1);
  });

  it('concurrency: 503 + x-capa-overloaded when full, slot released on completion', async () => {
    const reg = new Registry();
    const create = flowControlFactory.build(flowControlFactory.parseConfig({ policies: [entry('c', { concurrency: { maxInFlight: 1 } })] }), ctx(reg)).forRoute(undefined)!;
    const a = create();
    expect(await run(a, req())).toBe('continue');
    const s = req();
    expect(await run(create(), s)).toBe('stop');
    expect(s.replies[0]).toMatchObject({ status: 503, opts: { headers: { 'x-capa-overloaded': 'true' } } });
    a.onComplete!(req());
    expect(await run(create(), req())).toBe('continue');
    expect(await count(reg, 'c', 'rejected')).toBe(1);
  });

  it('fault: abort after the rate check, counted as rejected', async () => {
    const reg = new Registry();
    const cfg = flowControlFactory.parseConfig({ policies: [entry('f', { rateLimit: { requestsPerUnit: 1 }, fault: { abort: { httpStatus: 418, percent: 100 } } })] });
    const create = flowControlFactory.build(cfg, ctx(reg)).forRoute(undefined)!;
    const s1 = req();
    expect(await run(create(), s1)).toBe('stop');
    expect(s1.replies[0]!.status).toBe(418);
    const s2 = req();
    expect(await run(create(), s2)).toBe('stop');
    expect(s2.replies[0]!.status).toBe(429);
    expect(await count(reg, 'f', 'rejected')).toBe(1);
    expect(await count(reg, 'f', 'limited')).toBe(1);
  });

  it('circuit breaker: opens on upstream failures and then answers 503 x-capa-circuit: open, counted as rejected', async () => {
    const reg = new Registry();
    const spec = { circuitBreaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeout: '10s', timeout: 0 } };
    const built = flowControlFactory.build(flowControlFactory.parseConfig({ policies: [entry('cb', spec)] }), ctx(reg));
    const create = built.forRoute(undefined)!;
    for (let i = 0; i < 3; i++) {
      const f = create();
      const s = req();
      expect(await run(f, s)).toBe('continue');
      s.info.responseCode = 503;
      f.onComplete!(s);
    }
    const s = req();
    expect(await run(create(), s)).toBe('stop');
    expect(s.replies[0]).toMatchObject({ status: 503, opts: { headers: { 'x-capa-circuit': 'open' } } });
    expect(await count(reg, 'cb', 'rejected')).toBe(1);
    built.close?.();
  });

  it('keeps limiter counters across a rebuild when the rate is unchanged', async () => {
    const reg = new Registry();
    const policies = { policies: [entry('r', { rateLimit: { requestsPerUnit: 2, unit: 'minute' } })] };
    const first = flowControlFactory.build(flowControlFactory.parseConfig(policies), ctx(reg));
    const c1 = first.forRoute(undefined)!;
    expect(await run(c1(), req())).toBe('continue');
    expect(await run(c1(), req())).toBe('continue');
    const second = flowControlFactory.build(flowControlFactory.parseConfig(policies), ctx(reg));
    first.close?.();
    expect(await run(second.forRoute(undefined)!(), req())).toBe('stop');
    const changed = flowControlFactory.build(flowControlFactory.parseConfig({ policies: [entry('r', { rateLimit: { requestsPerUnit: 3, unit: 'minute' } })] }), ctx(reg));
    second.close?.();
    expect(await run(changed.forRoute(undefined)!(), req())).toBe('continue');
    changed.close?.();
  });
});
