import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, echo, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, sleep, type Reply } from '../../helpers/http.js';
import { admin, countRequests, hasFlag, parseSamples } from '../../helpers/traffic.js';

/**
 * Offer `rate` req/s for `ms` milliseconds, paced on absolute times (no drift), over keep-alive
 * connections; `port(i)` picks the sidecar of request i. Returns every reply.
 */
async function offer(port: (i: number) => number, rate: number, ms: number, opts: { path: string; headers?: Record<string, string> }): Promise<Reply[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const n = Math.floor((rate * ms) / 1000);
  const t0 = performance.now();
  const all: Promise<Reply>[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      all.push(request(port(i), { ...opts, agent }));
    }
    return await Promise.all(all);
  } finally {
    agent.destroy();
  }
}

const passed = (rs: Reply[]): number => rs.filter((r) => r.status === 200).length;

describe('local rate limit through a real sidecar', () => {
  let up: Upstream;
  let slow: Upstream;
  let sc: Running;
  beforeAll(async () => {
    up = await startUpstream('up');
    slow = await startUpstream('slow', (req, res, body, u) => setTimeout(() => echo(req, res, body, u), 300));
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    httpFilters:
      - name: istio.stats
      - name: envoy.filters.http.local_ratelimit
        config: { requestsPerUnit: 10, unit: second }
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - name: users
              match: { prefix: /users }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: { requestsPerUnit: 3, unit: minute, by: "header:x-user-id" }
            - name: tight
              match: { prefix: /tight }
              route: { cluster: up }
              typedPerFilterConfig:
                ratelimit: { tokenBucket: { maxTokens: 2, tokensPerFill: 2, fillInterval: 60s } }
            - name: roomy
              match: { prefix: /roomy }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: { requestsPerUnit: 1000 }
            - name: free
              match: { prefix: /free }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: { disabled: true }
            - name: slow
              match: { prefix: /slow }
              route: { cluster: slow }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: { concurrency: { maxInFlight: 2 } }
            - name: rest
              match: { prefix: / }
              route: { cluster: up }
clusters:
  - name: up
    endpoints: ["127.0.0.1:${up.port}"]
  - name: slow
    endpoints: ["127.0.0.1:${slow.port}"]
`);
  });
  afterAll(async () => {
    await sc.stop();
    await up.close();
    await slow.close();
  });

  it('holds 10 req/s within ±10% at 50 req/s offered, and answers the rest 429 with retry-after, ratelimit-* and flag RL', async () => {
    const before = up.seen.length;
    const replies = await offer(() => sc.port('main'), 50, 2000, { path: '/api' });
    const ok = passed(replies);
    const limited = replies.filter((r) => r.status === 429);
    // Fixed 1 s windows opened by the first request: 2 windows in 2 s → 20.
    expect(ok).toBeGreaterThanOrEqual(18);
    expect(ok).toBeLessThanOrEqual(22);
    expect(ok + limited.length).toBe(replies.length);
    expect(up.seen.length - before).toBe(ok);
    const r = limited[0]!;
    expect(r.body).toBe('local_rate_limited');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(r.headers['ratelimit-limit']).toBe('10');
    expect(r.headers['ratelimit-remaining']).toBe('0');
    expect(Number(r.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    const good = replies.find((x) => x.status === 200)!;
    expect(good.headers['ratelimit-limit']).toBe('10');
    expect(Number(good.headers['ratelimit-remaining'])).toBeLessThan(10);
    expect(good.headers['ratelimit-reset']).toBeDefined();
    const rl = await countRequests(sc.sidecar.adminPort, (l) => hasFlag(l, 'RL') && l.response_code === '429');
    expect(rl).toBe(limited.length);
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const m = parseSamples(prom, 'capa_ratelimit_requests_total').filter((s) => s.labels.listener === 'main' && s.labels.route === 'rest');
    expect(m.find((s) => s.labels.decision === 'passed')?.value).toBe(ok);
    expect(m.find((s) => s.labels.decision === 'limited')?.value).toBe(limited.length);
  });

  it('by header: each user has a budget of their own', async () => {
    const go = (user: string) => request(sc.port('main'), { path: '/users/me', headers: { 'x-user-id': user } });
    const alice = [await go('alice'), await go('alice'), await go('alice'), await go('alice')].map((r) => r.status);
    const bob = [await go('bob'), await go('bob'), await go('bob'), await go('bob')].map((r) => r.status);
    expect(alice).toEqual([200, 200, 200, 429]);
    expect(bob).toEqual([200, 200, 200, 429]);
  });

  it('per route: an override replaces the listener limit, a disabled route is not limited', async () => {
    const tight = [];
    for (let i = 0; i < 3; i++) tight.push((await request(sc.port('main'), { path: '/tight' })).status);
    expect(tight).toEqual([200, 200, 429]);
    // The listener allows 10/s; this route's own limit is 1000/s.
    const roomy = await Promise.all(Array.from({ length: 30 }, () => request(sc.port('main'), { path: '/roomy' })));
    expect(passed(roomy)).toBe(30);
    const free = await Promise.all(Array.from({ length: 30 }, () => request(sc.port('main'), { path: '/free' })));
    expect(passed(free)).toBe(30);
    expect(free[0]!.headers['ratelimit-limit']).toBeUndefined();
  });

  it('concurrency: maxInFlight 2 with a slow upstream turns 3 of 5 parallel requests away with 503 x-capa-overloaded', async () => {
    const replies = await Promise.all(Array.from({ length: 5 }, () => request(sc.port('main'), { path: '/slow' })));
    const overloaded = replies.filter((r) => r.status === 503);
    expect(passed(replies)).toBe(2);
    expect(overloaded).toHaveLength(3);
    for (const r of overloaded) expect(r.headers['x-capa-overloaded']).toBe('true');
    // The slots come back when the slow requests complete.
    expect((await request(sc.port('main'), { path: '/slow' })).status).toBe(200);
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    expect(prom).toMatch(/capa_ratelimit_requests_total\{listener="main",route="slow",decision="rejected_concurrency"\} 3/);
  });
});

describe('global rate limit over Redis', () => {
  let up: Upstream;
  const sidecars: Running[] = [];
  const keyPrefix = `capa:rl:test:${randomUUID()}`;
  let closedPort = 0;

  const yaml = (filter: string, routes = '') => `
listeners:
  - name: edge
    address: 127.0.0.1
    port: 0
    httpFilters:
      - name: istio.stats
      - name: envoy.filters.http.local_ratelimit
        config: ${filter}
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:${routes}
            - name: rest
              match: { prefix: / }
              route: { cluster: up }
clusters:
  - name: up
    endpoints: ["127.0.0.1:${up.port}"]
`;

  beforeAll(async () => {
    up = await startUpstream('up');
    closedPort = await freePort();
    const shared = yaml(`{ requestsPerUnit: 10, scope: global, redis: { url: "redis://127.0.0.1:6379", keyPrefix: "${keyPrefix}" } }`);
    sidecars.push(await startSidecar(shared), await startSidecar(shared));
    const down = (failOpen: boolean) => `{ requestsPerUnit: 1, scope: global, failOpen: ${failOpen}, redis: { url: "redis://127.0.0.1:${closedPort}", keyPrefix: "${keyPrefix}" } }`;
    sidecars.push(
      await startSidecar(
        yaml(
          `{ requestsPerUnit: 1000 }`,
          `
            - name: open
              match: { prefix: /open }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: ${down(true)}
            - name: closed
              match: { prefix: /closed }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.local_ratelimit: ${down(false)}`,
        ),
      ),
    );
  });
  afterAll(async () => {
    for (const s of sidecars) await s.stop();
    await up.close();
  });

  it('two sidecars share one limit: together they pass ≈ the limit (±10%)', async () => {
    const [a, b] = sidecars as [Running, Running];
    const replies = await offer((i) => (i % 2 === 0 ? a : b).port('edge'), 50, 2000, { path: '/x' });
    const ok = passed(replies);
    expect(ok).toBeGreaterThanOrEqual(18);
    expect(ok).toBeLessThanOrEqual(22);
    // Both took part in passing and in limiting.
    const okA = replies.filter((r, i) => i % 2 === 0 && r.status === 200).length;
    expect(okA).toBeGreaterThan(0);
    expect(okA).toBeLessThan(ok);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(replies.length - ok);
  });

  it('Redis unreachable: failOpen lets traffic through, failOpen false answers 503', async () => {
    const c = sidecars[2]!;
    const open = [];
    const closed = [];
    for (let i = 0; i < 5; i++) {
      open.push((await request(c.port('edge'), { path: '/open' })).status);
      closed.push((await request(c.port('edge'), { path: '/closed' })).status);
    }
    expect(open).toEqual([200, 200, 200, 200, 200]);
    expect(closed).toEqual([503, 503, 503, 503, 503]);
    const prom = (await admin(c.sidecar.adminPort, '/stats/prometheus')).body;
    expect(prom).toMatch(/capa_ratelimit_backend_errors_total\{listener="edge",scope="global",action="passed"\} 5/);
    expect(prom).toMatch(/capa_ratelimit_backend_errors_total\{listener="edge",scope="global",action="rejected"\} 5/);
  });
});
