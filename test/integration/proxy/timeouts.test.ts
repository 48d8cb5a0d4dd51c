/**
 * Timeouts of the data path, each observed from the outside: the route timeout (504, UT in the
 * Istio metrics), the listener's request and request-head timeouts (408), the downstream idle
 * timeout and the upstream pool's idle timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { raw, request, sleep, statusOf, waitFor } from '../../helpers/http.js';

/** Lines of istio_requests_total whose labels include every `want` pair. */
async function istioRequests(adminPort: number, want: Record<string, string>): Promise<{ line: string; value: number }[]> {
  const r = await request(adminPort, { path: '/stats/prometheus' });
  expect(r.status).toBe(200);
  return r.body
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && Object.entries(want).every(([k, v]) => l.includes(`${k}="${v}"`)))
    .map((line) => ({ line, value: Number(line.slice(line.lastIndexOf(' ') + 1)) }));
}

/** Connect, send `data`, and resolve with what arrived and when the server closed. */
function openRaw(port: number): Promise<{ socket: net.Socket; received: () => string; closedAt: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closedAt = new Promise<number>((r) => socket.on('close', () => r(performance.now())));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks).toString('latin1'), closedAt }));
    socket.once('error', reject);
  });
}

describe('timeouts', () => {
  let up: Upstream;
  let sc: Running;
  /** Upstream sockets by remote port, with their close time. */
  const upstreamSockets = new Map<number, { socket: net.Socket; closedAt: number }>();

  beforeAll(async () => {
    up = await startUpstream('slow', (req, res, body, u) => {
      const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
      setTimeout(() => {
        if (res.destroyed) return;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ upstream: u.name, url: req.url, bodyLength: body.length }));
      }, delay);
    });
    up.server.on('connection', (s: net.Socket) => {
      const entry = { socket: s, closedAt: 0 };
      upstreamSockets.set(s.remotePort ?? 0, entry);
      s.on('close', () => (entry.closedAt = performance.now()));
    });
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    requestTimeout: 600ms
    requestHeadersTimeout: 300ms
    idleTimeout: 400ms
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: /timeout }
              route: { cluster: backend, timeout: 300ms }
            - match: { prefix: /pooled-short }
              route: { cluster: short-idle }
            - match: { prefix: /pooled-long }
              route: { cluster: long-idle }
            - match: { prefix: / }
              route: { cluster: backend, timeout: 5s }
clusters:
  - name: backend
    endpoints: ["127.0.0.1:${up.port}"]
  - name: short-idle
    idleTimeout: 200ms
    endpoints: ["127.0.0.1:${up.port}"]
  - name: long-idle
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });

  afterAll(async () => {
    await sc.stop();
    await up.close();
  });

  it('route timeout: 504 saying so, flag UT in /stats/prometheus, the upstream request is abandoned', async () => {
    const before = await istioRequests(sc.sidecar.adminPort, { response_code: '504', response_flags: 'UT' });
    expect(before.reduce((a, l) => a + l.value, 0)).toBe(0);
    const t0 = performance.now();
    const r = await request(sc.port('main'), { path: '/timeout?delay=3000' });
    const took = performance.now() - t0;
    expect(r.status).toBe(504);
    expect(r.body).toMatch(/upstream request timeout/i);
    expect(r.body).toContain('300ms');
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(2000);
    await waitFor(async () => (await istioRequests(sc.sidecar.adminPort, { response_code: '504', response_flags: 'UT' })).length > 0, 3000);
    const after = await istioRequests(sc.sidecar.adminPort, { response_code: '504', response_flags: 'UT' });
    expect(after.reduce((a, l) => a + l.value, 0)).toBe(1);
    expect(after[0]!.line).toContain('reporter="');
    // The proxy closed the upstream connection of the timed-out request (never reused).
    const seen = up.seen.find((x) => x.url === '/timeout?delay=3000');
    expect(seen).toBeDefined();
    const sock = upstreamSockets.get(seen!.remotePort);
    expect(sock).toBeDefined();
    await waitFor(() => sock!.closedAt > 0, 2000);
  });

  it('route timeout: a response within the timeout is unaffected', async () => {
    const r = await request(sc.port('main'), { path: '/timeout?delay=50' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).url).toBe('/timeout?delay=50');
  });

  it('route timeout runs from the end of the request (Envoy semantics): a slow upload to a fast upstream is not a 504', async () => {
    // The body takes ~450ms to arrive (route timeout 300ms, listener requestTimeout 600ms); the
    // upstream answers as soon as it has it.
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: sc.port('main'), method: 'POST', path: '/timeout', agent: false, headers: { 'content-length': '6' } }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.write('abc');
      setTimeout(() => req.end('def'), 450);
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).bodyLength).toBe(6);
  });

  it('listener requestTimeout: headers and half a body, then a stall → 408', async () => {
    const c = await openRaw(sc.port('main'));
    const t0 = performance.now();
    c.socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(50));
    const closedAt = await c.closedAt;
    const reply = c.received();
    expect(statusOf(reply)).toBe(408);
    expect(reply).toMatch(/not received within 600ms/);
    expect(reply.toLowerCase()).toContain('connection: close');
    expect(closedAt - t0).toBeGreaterThanOrEqual(550);
    expect(closedAt - t0).toBeLessThan(3000);
  });

  it('listener requestHeadersTimeout: half a request head → 408', async () => {
    const c = await openRaw(sc.port('main'));
    const t0 = performance.now();
    c.socket.write('GET /half HTTP/1.1\r\nHost: a\r\nX-Partial: ');
    const closedAt = await c.closedAt;
    const reply = c.received();
    expect(statusOf(reply)).toBe(408);
    expect(reply).toMatch(/head was not received within 300ms/);
    expect(closedAt - t0).toBeGreaterThanOrEqual(250);
    expect(closedAt - t0).toBeLessThan(2000);
  });

  it('a complete head is not cut by the head timeout while its body arrives', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(sc.port('main'), '127.0.0.1');
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      s.on('error', reject);
      s.write('POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab');
      setTimeout(() => s.write('cd'), 400);
    });
    expect(statusOf(reply)).toBe(200);
    expect(reply).toContain('"bodyLength":4');
  });

  it('idleTimeout closes an idle keep-alive connection, but not one with a request in flight', async () => {
    const c = await openRaw(sc.port('main'));
    // A request slower than the idle timeout completes.
    c.socket.write('GET /slow?delay=700 HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => c.received().includes('"url":"/slow?delay=700"'), 3000);
    const answeredAt = performance.now();
    expect(statusOf(c.received())).toBe(200);
    expect(c.received().toLowerCase()).not.toContain('connection: close');
    // Then, idle, the proxy closes it after ~400ms.
    const closedAt = await Promise.race([c.closedAt, sleep(3000).then(() => -1)]);
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - answeredAt).toBeGreaterThanOrEqual(350);
    expect(closedAt - answeredAt).toBeLessThan(2000);
  });

  it('a keep-alive connection in use is kept open past the idle timeout', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<net.Socket>();
    for (let i = 0; i < 6; i++) {
      const r = await new Promise<{ status: number; socket: net.Socket }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: sc.port('main'), path: '/k', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket! }));
        });
        req.on('error', reject);
      });
      expect(r.status).toBe(200);
      sockets.add(r.socket);
      await sleep(150);
    }
    // Six requests 150ms apart (900ms in all, idle timeout 400ms) shared one connection.
    expect(sockets.size).toBe(1);
    agent.destroy();
  });

  it('cluster idleTimeout: the upstream sees an idle pooled connection closed; the default keeps it', async () => {
    const shortReply = await request(sc.port('main'), { path: '/pooled-short' });
    expect(shortReply.status).toBe(200);
    const shortSeen = up.seen.at(-1)!;
    expect(shortSeen.url).toBe('/pooled-short');
    const longReply = await request(sc.port('main'), { path: '/pooled-long' });
    expect(longReply.status).toBe(200);
    const longSeen = up.seen.at(-1)!;
    expect(longSeen.url).toBe('/pooled-long');
    expect(longSeen.remotePort).not.toBe(shortSeen.remotePort);

    const shortSock = upstreamSockets.get(shortSeen.remotePort)!;
    const longSock = upstreamSockets.get(longSeen.remotePort)!;
    const t0 = performance.now();
    await waitFor(() => shortSock.closedAt > 0, 2000, 10);
    // Idle 200ms, checked every 200ms: closed within ~400ms of going idle.
    expect(shortSock.closedAt - t0).toBeLessThan(1000);
    await sleep(500);
    expect(longSock.closedAt).toBe(0);
    expect(longSock.socket.destroyed).toBe(false);
    // The pool notices the closed connection: the next request opens a new one and succeeds.
    const again = await request(sc.port('main'), { path: '/pooled-short' });
    expect(again.status).toBe(200);
    expect(up.seen.at(-1)!.remotePort).not.toBe(shortSeen.remotePort);
  });

  it('still serves after all of the above', async () => {
    const r = await request(sc.port('main'), { path: '/fine' });
    expect(r.status).toBe(200);
    expect(await raw(sc.port('main'), 'GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n').then(statusOf)).toBe(200);
  });
});
