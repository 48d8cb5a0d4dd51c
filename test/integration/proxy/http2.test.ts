/**
 * HTTP/2 (h2c, prior knowledge) and gRPC end to end through the proxy: h2 → h2 and h2 → HTTP/1.1
 * upstreams, gRPC-framed unary and bidirectional streaming calls with trailers, RST_STREAM on one
 * stream of a shared connection, gRPC local replies (trailers-only), route timeouts, preface
 * sniffing on `http` and `auto` listeners (including a preface split across packets), flow
 * control with large bodies, and the Istio metrics the stats filter records for h2 streams.
 * gRPC is spoken with node:http2 directly (a message is a 5-byte prefix + bytes; the status is in
 * the trailers), so no gRPC library is needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, sleep, waitFor } from '../../helpers/http.js';
import { parseSamples, admin } from '../../helpers/traffic.js';

// === gRPC framing ===

function frame(msg: string | Buffer): Buffer {
  const b = typeof msg === 'string' ? Buffer.from(msg) : msg;
  const out = Buffer.alloc(5 + b.length);
  out.writeUInt32BE(b.length, 1);
  b.copy(out, 5);
  return out;
}

/** Splits a byte stream into gRPC messages as they complete. */
class Deframer {
  private buf = Buffer.alloc(0);
  push(c: Buffer): Buffer[] {
    this.buf = Buffer.concat([this.buf, c]);
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      const n = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + n) break;
      out.push(this.buf.subarray(5, 5 + n));
      this.buf = this.buf.subarray(5 + n);
    }
    return out;
  }
}

const GRPC: OutgoingHttpHeaders = { 'content-type': 'application/grpc', te: 'trailers' };

// === h2 client ===

interface H2Reply {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  body: Buffer;
}

function h2call(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers: head, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** A gRPC status from trailers, or from the headers of a trailers-only response. */
function grpcStatus(r: H2Reply): string | undefined {
  return (r.trailers['grpc-status'] ?? r.headers['grpc-status']) as string | undefined;
}

/** A Duplex over a TCP connection that sends the client's first write in two parts, 40ms apart. */
function splitFirstWrite(port: number, at: number): Duplex {
  const sock = net.connect(port, '127.0.0.1');
  let first = true;
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (!first) {
        sock.write(chunk, cb);
        return;
      }
      first = false;
      sock.write(chunk.subarray(0, at));
      setTimeout(() => sock.write(chunk.subarray(at), cb), 40);
    },
    read() {
      sock.resume();
    },
    final(cb) {
      sock.end();
      cb();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (c: Buffer) => {
    if (!d.push(c)) sock.pause();
  });
  sock.on('end', () => d.push(null));
  sock.on('error', (e) => d.destroy(e));
  return d;
}

// === h2c upstream ===

interface H2Upstream {
  port: number;
  sessions: number;
  /** rstCode of streams the proxy cancelled, by path. */
  cancelled: Map<string, number>;
  /** Send GOAWAY on every session and close them. */
  goaway(): void;
  seen: { path: string; headers: IncomingHttpHeaders; bodyLength: number }[];
  close(): Promise<void>;
}

async function startH2Upstream(): Promise<H2Upstream> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const u: H2Upstream = {
    port: 0,
    sessions: 0,
    cancelled: new Map(),
    seen: [],
    goaway: () => sessions.forEach((s) => s.close()),
    close: () => new Promise((r) => server.close(() => r())),
  };
  server.on('session', (s) => {
    u.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  u.close = () =>
    new Promise((r) => {
      for (const s of sessions) s.destroy();
      server.close(() => r());
    });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const path = String(headers[':path']);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) u.cancelled.set(path, stream.rstCode);
    });
    if (path.startsWith('/grpc.Echo/Bidi')) {
      // Echo every message as soon as it is complete; trailers when the client half-closes.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      const de = new Deframer();
      stream.on('data', (c: Buffer) => {
        for (const m of de.push(c)) stream.write(frame(`echo:${m.toString()}`));
      });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'bidi done' }));
      stream.on('end', () => stream.end());
      return;
    }
    if (path.startsWith('/h2/hang')) return; // never answers; the client cancels
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      u.seen.push({ path, headers, bodyLength: body.length });
      const delay = Number(new URL(path, 'http://x').searchParams.get('delay') ?? 0);
      setTimeout(() => {
        if (stream.destroyed || stream.closed) return;
        if (path.startsWith('/grpc.Echo/Unary')) {
          const [msg] = new Deframer().push(body);
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-upstream': 'h2' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
          stream.end(frame(`hello ${msg?.toString() ?? ''}`));
          return;
        }
        if (path.startsWith('/grpc.Echo/Fail')) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
          return;
        }
        if (path.startsWith('/h2/big')) {
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
          stream.end(Buffer.alloc(Number(new URL(path, 'http://x').searchParams.get('size')), 1));
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': 'h2' });
        const { ':method': method, ':authority': authority } = headers;
        stream.end(JSON.stringify({ method, authority, path, headers, bodyLength: body.length, body: body.length < 1000 ? body.toString() : '' }));
      }, delay);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}

// === the suite ===

describe('HTTP/2 and gRPC through the proxy', () => {
  let h2up: H2Upstream;
  let h1up: Upstream;
  let sc: Running;
  let session: ClientHttp2Session;
  const routes = `
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: /h1/ }
              route: { cluster: h1backend }
            - match: { prefix: /timeout/ }
              route: { cluster: h2backend, prefixRewrite: /h2/, timeout: 200ms }
            - match: { prefix: /grpc.Slow/ }
              route: { cluster: h2backend, regexRewrite: { pattern: "^/grpc.Slow/", substitution: "/grpc.Echo/" }, timeout: 200ms }
            - match: { prefix: /grpc.Deadline/ }
              route:
                cluster: h2backend
                regexRewrite: { pattern: "^/grpc.Deadline/", substitution: "/grpc.Echo/" }
                timeout: 5s
                maxStreamDuration: { grpcTimeoutHeaderMax: 2s }
            - match: { prefix: /dead/ }
              route: { cluster: dead }
            - match: { prefix: /grpc.Dead/ }
              route: { cluster: dead }
            - match: { prefix: /grpc.Echo/ }
              route: { cluster: h2backend }
            - match: { prefix: /limited/ }
              route: { cluster: limited, prefixRewrite: /h2/ }
            - match: { prefix: /h2/ }
              route: { cluster: h2backend }
`;

  beforeAll(async () => {
    h2up = await startH2Upstream();
    h1up = await startUpstream('h1');
    const closed = await freePort();
    sc = await startSidecar(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routes:${routes}
  - name: auto
    address: 127.0.0.1
    port: 0
    protocol: auto
    routes:${routes}
clusters:
  - name: h2backend
    protocol: http2
    endpoints: ["127.0.0.1:${h2up.port}"]
  - name: h1backend
    endpoints: ["127.0.0.1:${h1up.port}"]
  - name: limited
    protocol: http2
    circuitBreakers: { maxRequests: 1 }
    endpoints: ["127.0.0.1:${h2up.port}"]
  - name: dead
    protocol: http2
    connectTimeout: 1s
    endpoints: ["127.0.0.1:${closed}"]
`);
    session = http2.connect(`http://127.0.0.1:${sc.port('main')}`);
    session.on('error', () => undefined);
  });

  afterAll(async () => {
    session.close();
    await sc.stop();
    await h2up.close();
    await h1up.close();
  });

  it('forwards a unary h2 request with headers and body to an h2c upstream', async () => {
    const r = await h2call(session, { ':method': 'POST', ':path': '/h2/echo?x=1', ':authority': 'svc.local', 'x-custom': 'v', 'content-type': 'text/plain' }, 'hello h2');
    expect(r.headers[':status']).toBe(200);
    expect(r.headers.server).toBe('capa-runtime');
    expect(r.headers['x-upstream']).toBe('h2');
    expect(r.headers['x-envoy-upstream-service-time']).toMatch(/^\d+$/);
    const body = JSON.parse(r.body.toString());
    expect(body.method).toBe('POST');
    expect(body.authority).toBe('svc.local');
    expect(body.path).toBe('/h2/echo?x=1');
    expect(body.body).toBe('hello h2');
    expect(body.headers['x-custom']).toBe('v');
    expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('translates h2 downstream to an HTTP/1.1 upstream (cluster protocol http1)', async () => {
    const get = await h2call(session, { ':method': 'GET', ':path': '/h1/get', ':authority': 'svc.local', cookie: ['a=1', 'b=2'] });
    expect(get.headers[':status']).toBe(200);
    expect(get.headers['x-upstream']).toBe('h1');
    const g = JSON.parse(get.body.toString());
    expect(g.url).toBe('/h1/get');
    expect(g.headers.host).toBe('svc.local');
    expect(g.headers.cookie).toBe('a=1; b=2');
    // No content-length on the h2 side: the HTTP/1.1 upstream receives a chunked body.
    const post = await h2call(session, { ':method': 'POST', ':path': '/h1/post', ':authority': 'svc.local' }, 'x'.repeat(70_000));
    const p = JSON.parse(post.body.toString());
    expect(p.headers['transfer-encoding']).toBe('chunked');
    expect(p.body.length).toBe(70_000);
  });

  it('forwards HTTP/1.1 downstream requests to an h2c cluster (h1 → h2)', async () => {
    const r = await request(sc.port('main'), { method: 'POST', path: '/h2/from-h1', headers: { host: 'svc.local' }, body: 'abc' });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.authority).toBe('svc.local');
    expect(body.body).toBe('abc');
  });

  it('round-trips a gRPC unary call with its trailers intact', async () => {
    const r = await h2call(session, { ':method': 'POST', ':path': '/grpc.Echo/Unary', ':authority': 'svc.local', ...GRPC }, frame('world'));
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(new Deframer().push(r.body).map((m) => m.toString())).toEqual(['hello world']);
    expect(r.trailers['grpc-status']).toBe('0');
    expect(r.trailers['grpc-message']).toBe('fine');
    // A trailers-only error from the upstream stays trailers-only.
    const f = await h2call(session, { ':method': 'POST', ':path': '/grpc.Echo/Fail', ':authority': 'svc.local', ...GRPC }, frame('x'));
    expect(grpcStatus(f)).toBe('5');
    expect(f.body.length).toBe(0);
  });

  it('streams both directions: each message is echoed before the client ends its side', async () => {
    const req = session.request({ ':method': 'POST', ':path': '/grpc.Echo/Bidi', ':authority': 'svc.local', ...GRPC });
    const de = new Deframer();
    const got: string[] = [];
    let trailers: IncomingHttpHeaders = {};
    req.on('data', (c: Buffer) => got.push(...de.push(c).map((m) => m.toString())));
    req.on('trailers', (t) => (trailers = t));
    const ended = new Promise<void>((r) => req.on('end', () => r()));
    for (let i = 0; i < 10; i++) {
      req.write(frame(`m${i}`));
      await waitFor(() => got.length === i + 1, 2000, 5);
      await sleep(10);
    }
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `echo:m${i}`));
    req.end();
    await ended;
    expect(trailers['grpc-status']).toBe('0');
    expect(trailers['grpc-message']).toBe('bidi done');
  });

  it('RST_STREAM on one stream cancels it upstream while another stream on the connection completes', async () => {
    const own = http2.connect(`http://127.0.0.1:${sc.port('main')}`);
    const sessionsBefore = h2up.sessions;
    const hang = own.request({ ':method': 'GET', ':path': '/h2/hang', ':authority': 'svc.local' });
    hang.on('error', () => undefined);
    const other = h2call(own, { ':method': 'GET', ':path': '/h2/slow?delay=150', ':authority': 'svc.local' });
    await sleep(50);
    hang.close(http2.constants.NGHTTP2_CANCEL);
    const r = await other;
    expect(r.headers[':status']).toBe(200);
    await waitFor(() => h2up.cancelled.has('/h2/hang'), 2000);
    expect(h2up.cancelled.get('/h2/hang')).toBe(http2.constants.NGHTTP2_CANCEL);
    // Both connections survived: the same downstream session and the pooled upstream one.
    const again = await h2call(own, { ':method': 'GET', ':path': '/h2/after', ':authority': 'svc.local' });
    expect(again.headers[':status']).toBe(200);
    expect(h2up.sessions).toBe(sessionsBefore);
    own.close();
  });

  it('opens a new upstream session after the upstream sent GOAWAY', async () => {
    expect((await h2call(session, { ':method': 'GET', ':path': '/h2/before-goaway', ':authority': 'svc.local' })).headers[':status']).toBe(200);
    const before = h2up.sessions;
    h2up.goaway();
    await sleep(50);
    const r = await h2call(session, { ':method': 'GET', ':path': '/h2/after-goaway', ':authority': 'svc.local' });
    expect(r.headers[':status']).toBe(200);
    expect(h2up.sessions).toBe(before + 1);
  });

  it("respects the cluster's maxRequests across multiplexed streams (UO → grpc-status 14)", async () => {
    const first = h2call(session, { ':method': 'POST', ':path': '/limited/slow?delay=200', ':authority': 'svc.local' }, 'a');
    await sleep(30);
    const second = await h2call(session, { ':method': 'POST', ':path': '/limited/x', ':authority': 'svc.local', ...GRPC }, frame('b'));
    expect(second.headers['grpc-status']).toBe('14');
    expect((await first).headers[':status']).toBe(200);
    const third = await h2call(session, { ':method': 'GET', ':path': '/limited/y', ':authority': 'svc.local' });
    expect(third.headers[':status']).toBe(200);
  });

  it('passes a trailers-only gRPC reply from an h2 upstream to an HTTP/1.1 client as a complete response', async () => {
    const r = await request(sc.port('main'), { method: 'POST', path: '/grpc.Echo/Fail', headers: { 'content-type': 'application/grpc' }, body: frame('x') });
    expect(r.status).toBe(200);
    expect(r.headers['grpc-status']).toBe('5');
    expect(r.headers['content-length']).toBe('0');
  });

  it('answers an unmatched route with trailers-only grpc-status 12 for gRPC and 404 otherwise', async () => {
    const g = await h2call(session, { ':method': 'POST', ':path': '/nope.Service/Call', ':authority': 'svc.local', ...GRPC }, frame('x'));
    expect(g.headers[':status']).toBe(200);
    expect(g.headers['grpc-status']).toBe('12');
    expect(g.headers['grpc-message']).toBeTruthy();
    expect(g.body.length).toBe(0);
    const p = await h2call(session, { ':method': 'GET', ':path': '/nope', ':authority': 'svc.local' });
    expect(p.headers[':status']).toBe(404);
    expect(p.body.toString()).toContain('route');
  });

  it('answers grpc-status 14 when the upstream is unreachable, 503 for plain h2', async () => {
    const g = await h2call(session, { ':method': 'POST', ':path': '/grpc.Dead/Call', ':authority': 'svc.local', ...GRPC }, frame('x'));
    expect(g.headers[':status']).toBe(200);
    expect(g.headers['grpc-status']).toBe('14');
    const p = await h2call(session, { ':method': 'GET', ':path': '/dead/x', ':authority': 'svc.local' });
    expect(p.headers[':status']).toBe(503);
  });

  it('turns the route timeout into grpc-status 4 (DEADLINE_EXCEEDED) for gRPC and 504 otherwise', async () => {
    const g = await h2call(session, { ':method': 'POST', ':path': '/grpc.Slow/Unary?delay=1000', ':authority': 'svc.local', ...GRPC }, frame('x'));
    expect(g.headers[':status']).toBe(200);
    expect(g.headers['grpc-status']).toBe('4');
    const p = await h2call(session, { ':method': 'GET', ':path': '/timeout/slow?delay=1000', ':authority': 'svc.local' });
    expect(p.headers[':status']).toBe(504);
  });

  it('honours grpc-timeout as the deadline on routes with maxStreamDuration.grpcTimeoutHeaderMax (capped), and ignores it elsewhere', async () => {
    const t0 = Date.now();
    const late = await h2call(session, { ':method': 'POST', ':path': '/grpc.Deadline/Unary?delay=1500&case=late', ':authority': 'svc.local', 'grpc-timeout': '150m', ...GRPC }, frame('x'));
    expect(grpcStatus(late)).toBe('4');
    expect(Date.now() - t0).toBeLessThan(1200);
    // The upstream is told the deadline it has (capped at the route's max), as Envoy does.
    const capped = await h2call(session, { ':method': 'POST', ':path': '/grpc.Deadline/Unary?case=capped', ':authority': 'svc.local', 'grpc-timeout': '10S', ...GRPC }, frame('y'));
    expect(grpcStatus(capped)).toBe('0');
    expect(h2up.seen.find((x) => x.path.includes('case=capped'))?.headers['grpc-timeout']).toBe('2000m');
    // Without maxStreamDuration the header is passed on untouched and the route timeout applies.
    const ignored = await h2call(session, { ':method': 'POST', ':path': '/grpc.Echo/Unary?delay=300&case=ignored', ':authority': 'svc.local', 'grpc-timeout': '100m', ...GRPC }, frame('z'));
    expect(grpcStatus(ignored)).toBe('0');
    expect(h2up.seen.find((x) => x.path.includes('case=ignored'))?.headers['grpc-timeout']).toBe('100m');
  });

  it('moves large bodies both ways under HTTP/2 flow control', async () => {
    const up = Buffer.alloc(3 * 1024 * 1024, 2);
    const r = await h2call(session, { ':method': 'POST', ':path': '/h2/upload', ':authority': 'svc.local' }, up);
    expect(JSON.parse(r.body.toString()).bodyLength).toBe(up.length);
    const down = await h2call(session, { ':method': 'GET', ':path': `/h2/big?size=${4 * 1024 * 1024}`, ':authority': 'svc.local' });
    expect(down.body.length).toBe(4 * 1024 * 1024);
  });

  it('answers 431 to a request whose header list exceeds maxRequestHeaders, and the connection goes on', async () => {
    const big = await h2call(session, { ':method': 'GET', ':path': '/h2/echo', ':authority': 'svc.local', 'x-big': 'v'.repeat(62 * 1024) });
    expect(big.headers[':status']).toBe(431);
    const ok = await h2call(session, { ':method': 'GET', ':path': '/h2/echo', ':authority': 'svc.local' });
    expect(ok.headers[':status']).toBe(200);
  });

  it('sniffs the preface on auto listeners, also when it arrives split across packets', async () => {
    const auto = http2.connect(`http://127.0.0.1:${sc.port('auto')}`);
    const r = await h2call(auto, { ':method': 'GET', ':path': '/h2/auto', ':authority': 'svc.local' });
    expect(r.headers[':status']).toBe(200);
    auto.close();
    for (const name of ['auto', 'main']) {
      const split = http2.connect('http://svc.local', { createConnection: () => splitFirstWrite(sc.port(name), 7) });
      const s = await h2call(split, { ':method': 'GET', ':path': '/h2/split', ':authority': 'svc.local' });
      expect(s.headers[':status'], name).toBe(200);
      split.close();
    }
    // HTTP/1.1 still works on both.
    expect((await request(sc.port('auto'), { path: '/h1/x' })).status).toBe(200);
    expect((await request(sc.port('main'), { path: '/h1/x' })).status).toBe(200);
  });

  it('records h2 streams in istio_requests_total: request_protocol grpc/http and grpc_response_status', async () => {
    const base = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const count = (text: string, pred: (l: Record<string, string>) => boolean): number =>
      parseSamples(text, 'istio_requests_total')
        .filter((s) => pred(s.labels))
        .reduce((n, s) => n + s.value, 0);
    const grpcOk = (l: Record<string, string>): boolean => l.request_protocol === 'grpc' && l.grpc_response_status === '0' && l.response_code === '200';
    const grpcUnavailable = (l: Record<string, string>): boolean => l.request_protocol === 'grpc' && l.grpc_response_status === '14';
    const httpOk = (l: Record<string, string>): boolean => l.request_protocol === 'http' && l.response_code === '200' && l.destination_service_name === 'h2backend';
    const before = { ok: count(base, grpcOk), unavailable: count(base, grpcUnavailable), http: count(base, httpOk) };
    expect(before.ok).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) await h2call(session, { ':method': 'POST', ':path': '/grpc.Echo/Unary', ':authority': 'svc.local', ...GRPC }, frame('m'));
    await h2call(session, { ':method': 'POST', ':path': '/grpc.Dead/Call', ':authority': 'svc.local', ...GRPC }, frame('x'));
    await h2call(session, { ':method': 'GET', ':path': '/h2/m', ':authority': 'svc.local' });
    let after = '';
    await waitFor(async () => {
      after = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
      return count(after, grpcOk) >= before.ok + 3;
    }, 3000);
    expect(count(after, grpcOk)).toBe(before.ok + 3);
    expect(count(after, grpcUnavailable)).toBe(before.unavailable + 1);
    expect(count(after, httpOk)).toBe(before.http + 1);
  });
});
