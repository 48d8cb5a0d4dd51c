/**
 * HTTP/2 through the proxy where the exact frames or a misbehaving upstream matter: request
 * trailers (h2 → h2 as a trailers HEADERS frame with END_STREAM, h2 → HTTP/1.1 as chunked
 * trailers or dropped, HTTP/1.1 chunked trailers → h2), an upstream that announces
 * SETTINGS_MAX_CONCURRENT_STREAMS 0 (a prompt 503 instead of waiting for the route timeout,
 * queueing kept for merely busy sessions), DATA before the response HEADERS (the stream is reset
 * with PROTOCOL_ERROR, a 502 UPE), and END_STREAM carried on the last DATA frame both ways.
 * Upstreams are node:http2 / node:http servers, or a raw-frame server where frames matter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { raw, sleep } from '../../helpers/http.js';
import { hasFlag, waitForCount } from '../../helpers/traffic.js';
import { END_STREAM, T, field, frame, headersFrame, rawH2Client, rawH2Server, rstCode, type Frame, type RawConn, type RawServer } from '../../helpers/h2-raw.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One request on `session`; `trailers` are sent after the body as a trailers HEADERS frame. */
function call(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string, trailers?: OutgoingHttpHeaders): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = session.request({ ':authority': 'svc.local', ...headers }, { endStream: body === undefined && trailers === undefined, waitForTrailers: trailers !== undefined });
    if (trailers !== undefined) req.on('wantTrailers', () => req.sendTrailers(trailers));
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (head = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString(), ms: Date.now() - t0 }));
    req.on('error', reject);
    if (body !== undefined || trailers !== undefined) req.end(body);
  });
}

/** The request frames (HEADERS and DATA) the raw upstream got for the request to `path`. */
function requestFrames(up: RawServer, path: string): Frame[] {
  for (const c of up.conns) {
    const head = c.frames.find((f) => f.type === T.HEADERS && field(f.headers, ':path') === path);
    if (head !== undefined) return c.on(head.stream).filter((f) => f.type === T.HEADERS || f.type === T.DATA);
  }
  return [];
}

/** A node:http2 upstream: `/…/slow?delay=` answers after the delay; `/…/drop` lowers the session's MAX_CONCURRENT_STREAMS to 0 after 50 ms and answers after 300 ms. */
async function limitedUpstream(settings: http2.Settings): Promise<{ port: number; sessions: () => number; maxOpen: () => number; close: () => Promise<void> }> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  let total = 0;
  let open = 0;
  let maxOpen = 0;
  server.on('session', (s) => {
    total++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => undefined);
    open++;
    maxOpen = Math.max(maxOpen, open);
    stream.on('close', () => open--);
    const url = new URL(String(headers[':path']), 'http://x');
    const answer = (): void => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      stream.end(url.pathname);
    };
    if (url.pathname.endsWith('/drop')) {
      setTimeout(() => stream.session?.settings({ maxConcurrentStreams: 0 }), 50);
      setTimeout(answer, 300);
    } else setTimeout(answer, Number(url.searchParams.get('delay') ?? 0));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions: () => total,
    maxOpen: () => maxOpen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('HTTP/2 proxy edge cases: trailers, refusing upstreams, malformed responses, END_STREAM framing', () => {
  let rawUp: RawServer;
  let h1: http.Server;
  let h1Port = 0;
  let refusing: Awaited<ReturnType<typeof limitedUpstream>>;
  let shrink: Awaited<ReturnType<typeof limitedUpstream>>;
  let shrink2: Awaited<ReturnType<typeof limitedUpstream>>;
  let sc: Running;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    // Answers once the request ended: DATA before HEADERS for …/early, else 200 "ok" (HEADERS + DATA with END_STREAM, one write).
    rawUp = await rawH2Server((f: Frame, c: RawConn) => {
      if ((f.flags & END_STREAM) === 0 || (f.type !== T.HEADERS && f.type !== T.DATA)) return;
      const path = field(c.on(f.stream)[0]?.headers, ':path') ?? '';
      if (path.endsWith('/early')) c.send(frame(T.DATA, 0, f.stream, Buffer.from('too early')), headersFrame(f.stream, [[':status', '200']], true));
      else c.send(headersFrame(f.stream, [[':status', '200'], ['content-type', 'text/plain']], false), frame(T.DATA, END_STREAM, f.stream, Buffer.from('ok')));
    });
    h1 = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(JSON.stringify({ headers: req.headers, trailers: req.trailers, body: Buffer.concat(chunks).toString() })));
    });
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    h1Port = (h1.address() as net.AddressInfo).port;
    refusing = await limitedUpstream({ maxConcurrentStreams: 0 });
    shrink = await limitedUpstream({ maxConcurrentStreams: 1 });
    shrink2 = await limitedUpstream({ maxConcurrentStreams: 1 });
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
            - match: { prefix: /raw/ }
              route: { cluster: raw }
            - match: { prefix: /h1t/ }
              route: { cluster: h1t }
            - match: { prefix: /refusing/ }
              route: { cluster: refusing, timeout: 3s }
            - match: { prefix: /shrink/ }
              route: { cluster: shrink, timeout: 3s }
            - match: { prefix: /shrink2/ }
              route: { cluster: shrink2, timeout: 3s }
clusters:
  - name: raw
    protocol: http2
    endpoints: ["127.0.0.1:${rawUp.port}"]
  - name: h1t
    endpoints: ["127.0.0.1:${h1Port}"]
  - name: refusing
    protocol: http2
    circuitBreakers: { maxConnections: 1 }
    endpoints: ["127.0.0.1:${refusing.port}"]
  - name: shrink
    protocol: http2
    circuitBreakers: { maxConnections: 1 }
    endpoints: ["127.0.0.1:${shrink.port}"]
  - name: shrink2
    protocol: http2
    circuitBreakers: { maxConnections: 2 }
    endpoints: ["127.0.0.1:${shrink2.port}"]
`);
    session = http2.connect(`http://127.0.0.1:${sc.port('main')}`);
    session.on('error', () => undefined);
  });

  afterAll(async () => {
    session.close();
    await sc.stop();
    await rawUp.close();
    await new Promise<void>((r) => h1.close(() => r()));
    await refusing.close();
    await shrink.close();
    await shrink2.close();
  });

  // === request trailers ===

  it('forwards h2 request trailers to an h2 upstream as a trailers HEADERS frame with END_STREAM (hop-by-hop fields dropped)', async () => {
    const r = await call(session, { ':method': 'POST', ':path': '/raw/trailers', 'content-type': 'application/grpc', te: 'trailers' }, 'body', { 'x-checksum': 'abc', 'x-count': '2', trailer: 'x-checksum' });
    expect(r.status).toBe(200);
    const frames = requestFrames(rawUp, '/raw/trailers');
    expect(frames[0]!.type).toBe(T.HEADERS);
    expect(frames[0]!.flags & END_STREAM).toBe(0);
    const data = frames.filter((f) => f.type === T.DATA);
    expect(Buffer.concat(data.map((f) => f.payload)).toString()).toBe('body');
    expect(data.every((f) => (f.flags & END_STREAM) === 0)).toBe(true);
    const last = frames[frames.length - 1]!;
    expect(last.type).toBe(T.HEADERS);
    expect(last.flags & END_STREAM).toBe(END_STREAM);
    expect(last.headers).toEqual(['x-checksum', 'abc', 'x-count', '2']);
  });

  it('forwards request trailers without a body (HEADERS, then trailers) and keeps the stream open until them', async () => {
    const r = await call(session, { ':method': 'POST', ':path': '/raw/only-trailers' }, undefined, { 'x-only': '1' });
    expect(r.status).toBe(200);
    const frames = requestFrames(rawUp, '/raw/only-trailers');
    expect(frames.map((f) => [f.type, f.flags & END_STREAM])).toEqual([
      [T.HEADERS, 0],
      [T.HEADERS, END_STREAM],
    ]);
    expect(frames[1]!.headers).toEqual(['x-only', '1']);
  });

  it('sends h2 request trailers to an HTTP/1.1 upstream as chunked trailers, and drops them when the body has a content-length', async () => {
    const chunked = await call(session, { ':method': 'POST', ':path': '/h1t/chunked' }, 'body', { 'x-checksum': 'abc' });
    const c = JSON.parse(chunked.body);
    expect(c.headers['transfer-encoding']).toBe('chunked');
    expect(c.body).toBe('body');
    expect(c.trailers).toEqual({ 'x-checksum': 'abc' });
    const sized = await call(session, { ':method': 'POST', ':path': '/h1t/sized', 'content-length': '4' }, 'body', { 'x-checksum': 'abc' });
    const s = JSON.parse(sized.body);
    expect(s.headers['content-length']).toBe('4');
    expect(s.body).toBe('body');
    expect(s.trailers).toEqual({});
  });

  it('forwards HTTP/1.1 chunked request trailers: to an h2 upstream as a trailers HEADERS frame, to an HTTP/1.1 upstream as chunked trailers', async () => {
    const req = (path: string): string => `POST ${path} HTTP/1.1\r\nhost: svc.local\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc\r\ncontent-length: 9\r\n\r\n`;
    expect(await raw(sc.port('main'), req('/raw/h1-trailers'))).toMatch(/^HTTP\/1\.1 200/);
    const frames = requestFrames(rawUp, '/raw/h1-trailers');
    const last = frames[frames.length - 1]!;
    expect(last.type).toBe(T.HEADERS);
    expect(last.flags & END_STREAM).toBe(END_STREAM);
    expect(last.headers).toEqual(['x-checksum', 'abc']);
    const h1reply = await raw(sc.port('main'), req('/h1t/h1-trailers'));
    const body = JSON.parse(h1reply.slice(h1reply.indexOf('{')));
    expect(body.body).toBe('body');
    expect(body.trailers).toEqual({ 'x-checksum': 'abc' });
  });

  // === an upstream that takes no streams ===

  it('answers 503 (UO, "refuses new HTTP/2 streams") at once when the upstream announces MAX_CONCURRENT_STREAMS 0 and no other connection may open', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(session, { ':method': 'GET', ':path': `/refusing/x${i}` });
      expect(r.status, `request ${i}`).toBe(503);
      expect(r.body).toContain('refuses new HTTP/2 streams');
      expect(r.ms).toBeLessThan(1000);
    }
    const g = await call(session, { ':method': 'POST', ':path': '/refusing/grpc.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' }, 'x');
    expect(g.headers['grpc-status']).toBe('14');
    expect(decodeURIComponent(String(g.headers['grpc-message']))).toContain('refuses new HTTP/2 streams');
    const uo = await waitForCount(sc.sidecar.adminPort, (l) => l.destination_service_name === 'refusing' && l.response_code === '503' && hasFlag(l, 'UO'), 3);
    expect(uo).toBeGreaterThanOrEqual(3);
  });

  it('queues streams on a busy session (limit 1, maxConnections 1); one queued when the limit drops to 0 fails at once, the open one finishes', async () => {
    // Merely busy: the second waits for the first and is served.
    const both = await Promise.all([call(session, { ':method': 'GET', ':path': '/shrink/slow?delay=100&n=1' }), call(session, { ':method': 'GET', ':path': '/shrink/slow?delay=100&n=2' })]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(shrink.maxOpen()).toBe(1);
    expect(shrink.sessions()).toBe(1);
    // The upstream lowers its limit to 0 while /drop is open and the next request waits behind it.
    const done: string[] = [];
    const a = call(session, { ':method': 'GET', ':path': '/shrink/drop' }).then((r) => (done.push('a'), r));
    await sleep(20);
    const b = call(session, { ':method': 'GET', ':path': '/shrink/slow?n=3' }).then((r) => (done.push('b'), r));
    const rb = await b;
    expect(rb.status).toBe(503);
    expect(rb.body).toContain('refuses new HTTP/2 streams');
    expect(rb.ms).toBeLessThan(1000);
    const ra = await a;
    expect(ra.status).toBe(200);
    expect(done).toEqual(['b', 'a']);
    // The refusing session closes once idle; the next request gets a new one.
    await sleep(50);
    const c = await call(session, { ':method': 'GET', ':path': '/shrink/slow?n=4' });
    expect(c.status).toBe(200);
    expect(shrink.sessions()).toBe(2);
  });

  it('opens another connection when the session refuses streams and the cluster allows one (maxConnections 2)', async () => {
    const a = call(session, { ':method': 'GET', ':path': '/shrink2/drop' });
    await sleep(120);
    const b = await call(session, { ':method': 'GET', ':path': '/shrink2/slow?n=1' });
    expect(b.status).toBe(200);
    expect(b.ms).toBeLessThan(250);
    expect((await a).status).toBe(200);
    expect(shrink2.sessions()).toBe(2);
  });

  // === malformed upstream responses ===

  it('resets an upstream stream whose DATA comes before the response HEADERS (RST_STREAM PROTOCOL_ERROR) and answers 502 UPE; the upstream connection goes on', async () => {
    const conns = rawUp.conns.length;
    const r = await call(session, { ':method': 'GET', ':path': '/raw/early' });
    expect(r.status).toBe(502);
    expect(r.body).toContain('malformed HTTP/2 response');
    const up = rawUp.conns.find((c) => c.frames.some((f) => f.type === T.HEADERS && field(f.headers, ':path') === '/raw/early'))!;
    const id = up.frames.find((f) => f.type === T.HEADERS && field(f.headers, ':path') === '/raw/early')!.stream;
    const rst = up.on(id).find((f) => f.type === T.RST_STREAM);
    expect(rst && rstCode(rst)).toBe(1);
    const g = await call(session, { ':method': 'POST', ':path': '/raw/grpc/early', 'content-type': 'application/grpc', te: 'trailers' }, 'x');
    expect(g.headers['grpc-status']).toBe('13');
    const after = await call(session, { ':method': 'GET', ':path': '/raw/after-early' });
    expect(after.status).toBe(200);
    expect(after.body).toBe('ok');
    expect(rawUp.conns.length).toBe(conns);
    const upe = await waitForCount(sc.sidecar.adminPort, (l) => l.destination_service_name === 'raw' && l.response_code === '502' && hasFlag(l, 'UPE'), 1);
    expect(upe).toBeGreaterThanOrEqual(1);
  });

  // === END_STREAM on the last DATA frame ===

  it('carries END_STREAM on the last DATA frame both ways (a unary call is HEADERS + one DATA each way)', async () => {
    const msg = Buffer.from([0, 0, 0, 0, 3, 0x61, 0x62, 0x63]);
    const grpc = (path: string): [string, string][] => [[':method', 'POST'], [':scheme', 'http'], [':authority', 'svc.local'], [':path', path], ['content-type', 'application/grpc'], ['te', 'trailers']];
    // The client's last DATA frame carries END_STREAM; then a client that ends with an empty DATA frame in the same write.
    const down = await rawH2Client(sc.port('main'), [
      headersFrame(1, grpc('/raw/unary-1'), false),
      frame(T.DATA, END_STREAM, 1, msg),
      headersFrame(3, grpc('/raw/unary-2'), false),
      frame(T.DATA, 0, 3, msg),
      frame(T.DATA, END_STREAM, 3),
    ]);
    const ended = (id: number): boolean => down.on(id).some((f) => (f.flags & END_STREAM) !== 0);
    for (let i = 0; i < 200 && !(ended(1) && ended(3)); i++) await sleep(10);
    const shape = (frames: Frame[]): [number, number, number][] => frames.filter((f) => f.type === T.HEADERS || f.type === T.DATA).map((f) => [f.type, f.type === T.DATA ? f.payload.length : -1, f.flags & END_STREAM]);
    for (const path of ['/raw/unary-1', '/raw/unary-2']) {
      expect(shape(requestFrames(rawUp, path)), path).toEqual([
        [T.HEADERS, -1, 0],
        [T.DATA, msg.length, END_STREAM],
      ]);
    }
    for (const id of [1, 3]) {
      expect(shape(down.on(id)), `downstream stream ${id}`).toEqual([
        [T.HEADERS, -1, 0],
        [T.DATA, 2, END_STREAM],
      ]);
    }
    down.socket.destroy();
  });
});
