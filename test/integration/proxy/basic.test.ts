import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request, raw, statusOf } from '../../helpers/http.js';

describe('HTTP/1.1 proxying basics', () => {
  let up: Upstream;
  let sc: Running;
  beforeAll(async () => {
    up = await startUpstream('a');
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: backend }
clusters:
  - name: backend
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });
  afterAll(async () => {
    await sc.stop();
    await up.close();
  });

  it('forwards a GET and returns the upstream response with server: capa-runtime', async () => {
    const r = await request(sc.port('main'), { path: '/hello?x=1', headers: { host: 'svc.local' } });
    expect(r.status).toBe(200);
    expect(r.headers.server).toBe('capa-runtime');
    const body = JSON.parse(r.body);
    expect(body.url).toBe('/hello?x=1');
    expect(body.headers.host).toBe('svc.local');
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).toBe('http');
    expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps an incoming x-request-id and strips hop-by-hop headers', async () => {
    const r = await request(sc.port('main'), { headers: { 'x-request-id': 'abc', connection: 'keep-alive, x-secret', 'x-secret': 's', 'keep-alive': 'timeout=5', te: 'gzip' } });
    const body = JSON.parse(r.body);
    expect(body.headers['x-request-id']).toBe('abc');
    expect(body.headers['x-secret']).toBeUndefined();
    expect(body.headers['keep-alive']).toBeUndefined();
    expect(body.headers.te).toBeUndefined();
  });

  it('reuses upstream connections across keep-alive requests', async () => {
    const before = up.connections;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) expect((await request(sc.port('main'), { agent })).status).toBe(200);
    agent.destroy();
    expect(up.connections - before).toBeLessThanOrEqual(1);
  });

  it('forwards POST bodies with content-length and chunked framing', async () => {
    const r1 = await request(sc.port('main'), { method: 'POST', body: 'x'.repeat(100_000) });
    expect(JSON.parse(r1.body).body.length).toBe(100_000);
    const reply = await raw(sc.port('main'), 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    expect(statusOf(reply)).toBe(200);
    expect(reply).toContain('"body":"hello world"');
  });

  it('answers pipelined requests in order on one connection', async () => {
    const reply = await raw(sc.port('main'), 'GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const i1 = reply.indexOf('"url":"/one"');
    const i2 = reply.indexOf('"url":"/two"');
    expect(i1).toBeGreaterThan(0);
    expect(i2).toBeGreaterThan(i1);
  });

  it('rejects request smuggling and malformed heads with 400 and a reason', async () => {
    const cases = [
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd',
      'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost : a\r\n\r\n',
    ];
    for (const c of cases) {
      const reply = await raw(sc.port('main'), c);
      expect(statusOf(reply), c).toBe(400);
      expect(reply).toContain('server: capa-runtime');
    }
  });

  it('counts rejected malformed requests in istio_requests_total with flag DPE', async () => {
    await raw(sc.port('main'), 'GET / HTTP/1.1\r\nHost : a\r\n\r\n');
    const prom = (await request(sc.sidecar.adminPort, { path: '/stats/prometheus' })).body;
    const line = prom.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="400"') && l.includes('response_flags="DPE"'));
    expect(line).toBeDefined();
  });

  it('answers 431 to an oversized request head', async () => {
    const reply = await raw(sc.port('main'), `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    expect(statusOf(reply)).toBe(431);
  });

  it('answers Expect: 100-continue itself', async () => {
    const reply = await raw(sc.port('main'), 'POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    expect(reply.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200')).toBe(true);
    expect(reply).toContain('"body":"abc"');
  });

  it('serves an `Upgrade: h2c` request as plain HTTP/1.1 (no 101), without the upgrade headers upstream, as Envoy', async () => {
    const reply = await raw(
      sc.port('main'),
      'GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
    );
    expect(reply.startsWith('HTTP/1.1 200')).toBe(true);
    const seen = up.seen.find((x) => x.url === '/h2c')!;
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
  });
});
