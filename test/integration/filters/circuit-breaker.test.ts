import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request, sleep, waitFor } from '../../helpers/http.js';
import { admin, parseSamples } from '../../helpers/traffic.js';

describe('circuit breaker filter through a real sidecar', () => {
  let up: Upstream;
  let sc: Running;
  const mode = { fail: true };
  beforeAll(async () => {
    up = await startUpstream('flaky', (_req, res) => {
      res.statusCode = mode.fail ? 500 : 200;
      res.end(mode.fail ? 'broken' : 'ok');
    });
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    httpFilters:
      - name: istio.stats
      - name: circuit_breaker
        config: { errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeout: 300ms, timeout: 2s, rollingCountTimeout: 10s }
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - name: off
              match: { prefix: /off }
              route: { cluster: flaky }
              typedPerFilterConfig:
                capa.filters.http.circuit_breaker: { disabled: true }
            - name: rest
              match: { prefix: / }
              route: { cluster: flaky }
clusters:
  - name: flaky
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });
  afterAll(async () => {
    await sc.stop();
    await up.close();
  });

  const state = async (): Promise<number> => {
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const s = parseSamples(prom, 'capa_circuit_state').find((x) => x.labels.cluster === 'flaky');
    return s ? s.value : -1;
  };
  const rejected = async (): Promise<number> => {
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    return parseSamples(prom, 'capa_circuit_rejected_total').find((x) => x.labels.cluster === 'flaky')?.value ?? 0;
  };

  it('opens after volumeThreshold failures, rejects without the upstream, half-opens, closes', async () => {
    // Closed: failures pass through until volumeThreshold (10) requests with > 50 % errors.
    for (let i = 0; i < 10; i++) expect((await request(sc.port('main'), { path: '/a' })).status).toBe(500);
    expect(up.seen.length).toBe(10);
    expect(await state()).toBe(1);

    // Open: 503 circuit open, the upstream is not contacted.
    for (let i = 0; i < 5; i++) {
      const r = await request(sc.port('main'), { path: '/a' });
      expect(r.status).toBe(503);
      expect(r.body).toContain('circuit open');
      expect(r.headers['x-capa-circuit']).toBe('open');
    }
    expect(up.seen.length).toBe(10);
    expect(await rejected()).toBe(5);
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const uo = parseSamples(prom, 'istio_requests_total').filter((x) => x.labels.response_flags === 'UO' && x.labels.response_code === '503');
    expect(uo.reduce((a, x) => a + x.value, 0)).toBe(5);

    // A route with the filter disabled still reaches the upstream.
    expect((await request(sc.port('main'), { path: '/off' })).status).toBe(500);
    expect(up.seen.length).toBe(11);

    // Half-open after resetTimeout: one probe goes through; it fails, so the breaker re-opens.
    await waitFor(async () => (await state()) === 2, 2000, 20);
    expect((await request(sc.port('main'), { path: '/a' })).status).toBe(500);
    expect(up.seen.length).toBe(12);
    expect(await state()).toBe(1);
    expect((await request(sc.port('main'), { path: '/a' })).status).toBe(503);
    expect(up.seen.length).toBe(12);

    // Fixed upstream: the next probe succeeds and closes the breaker.
    mode.fail = false;
    await waitFor(async () => (await state()) === 2, 2000, 20);
    expect((await request(sc.port('main'), { path: '/a' })).status).toBe(200);
    expect(await state()).toBe(0);
    for (let i = 0; i < 5; i++) expect((await request(sc.port('main'), { path: '/a' })).status).toBe(200);
    expect(up.seen.length).toBe(18);
  });

  it('half-open lets exactly one probe through while it is in flight', async () => {
    // Re-open it with failures (the window still holds the earlier ones).
    mode.fail = true;
    for (let i = 0; i < 12 && (await state()) !== 1; i++) await request(sc.port('main'), { path: '/a' });
    expect(await state()).toBe(1);
    await sleep(350);
    await waitFor(async () => (await state()) === 2, 2000, 20);
    const before = up.seen.length;
    const rs = await Promise.all(Array.from({ length: 5 }, () => request(sc.port('main'), { path: '/a' })));
    expect(up.seen.length - before).toBe(1);
    expect(rs.filter((r) => r.status === 503 && r.headers['x-capa-circuit'] === 'open').length).toBe(4);
    mode.fail = false;
  });
});
