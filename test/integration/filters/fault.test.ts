import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request } from '../../helpers/http.js';
import { admin, parseSamples } from '../../helpers/traffic.js';

describe('fault filter through a real sidecar', () => {
  let up: Upstream;
  let sc: Running;
  beforeAll(async () => {
    up = await startUpstream('up');
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    httpFilters:
      - name: istio.stats
      - name: envoy.filters.http.fault
        config:
          abort: { headerAbort: {} }
          delay: { headerDelay: {} }
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - name: chaos
              match: { prefix: /chaos }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.fault: { abort: { httpStatus: 503, percent: 30 } }
            - name: calm
              match: { prefix: /calm }
              route: { cluster: up }
              typedPerFilterConfig:
                envoy.filters.http.fault: { disabled: true }
            - name: rest
              match: { prefix: / }
              route: { cluster: up }
clusters:
  - name: up
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });
  afterAll(async () => {
    await sc.stop();
    await up.close();
  });

  it('aborts about the configured share of a route, without reaching the upstream', async () => {
    const before = up.seen.length;
    let aborted = 0;
    const n = 600;
    for (let i = 0; i < n; i++) {
      const r = await request(sc.port('main'), { path: '/chaos' });
      if (r.status === 503) {
        aborted++;
        expect(r.body).toContain('fault filter abort');
      }
    }
    expect(aborted / n).toBeGreaterThan(0.2);
    expect(aborted / n).toBeLessThan(0.4);
    expect(up.seen.length - before).toBe(n - aborted);
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const fi = parseSamples(prom, 'istio_requests_total').filter((x) => x.labels.response_flags === 'FI');
    expect(fi.reduce((a, x) => a + x.value, 0)).toBe(aborted);
    expect(prom).toMatch(new RegExp(`capa_fault_aborts_injected_total\\{listener="main"\\} ${aborted}`));
  });

  it('honours fault headers on the listener config, and not where the route disables the filter', async () => {
    const r = await request(sc.port('main'), { path: '/x', headers: { 'x-capa-fault-abort-request': '429' } });
    expect(r.status).toBe(429);
    const t0 = Date.now();
    const d = await request(sc.port('main'), { path: '/x', headers: { 'x-capa-fault-delay-request': '150' } });
    expect(d.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    const calm = await request(sc.port('main'), { path: '/calm', headers: { 'x-capa-fault-abort-request': '429' } });
    expect(calm.status).toBe(200);
  });

  it('aborts a gRPC request with a gRPC status', async () => {
    // gRPC over HTTP/1 never happens in practice; the local reply logic is what is checked here.
    const r = await request(sc.port('main'), { path: '/pkg.Svc/Call', headers: { 'content-type': 'application/grpc', 'x-capa-fault-abort-grpc-request': '8' } });
    expect(r.status).toBe(200);
    expect(r.headers['grpc-status']).toBe('8');
  });
});
