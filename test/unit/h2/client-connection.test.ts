/**
 * H2ClientConnection against node:http2 servers: request/response with trailers, streaming both
 * ways, flow control and backpressure with a big body, the peer's MAX_CONCURRENT_STREAMS (extra
 * streams wait and open in order), RST_STREAM from the server, and GOAWAY (no new streams; the
 * one in flight finishes). Against a raw-frame server: malformed responses (DATA before the head,
 * bad heads and trailers) reset only their stream, a peer at MAX_CONCURRENT_STREAMS 0 refuses
 * the waiting streams, and END_STREAM rides on the last DATA frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http2, { type Http2Server, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { H2ClientConnection, type H2ClientStream } from '../../../src/h2/client-connection.js';
import { encodeHeaders } from '../../../src/h2/hpack.js';
import { END_STREAM, T, frame, headersFrame, rawH2Server, rstCode, type RawConn, type RawServer } from '../../helpers/h2-raw.js';
import { waitFor } from '../../helpers/http.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function server(onStream: (s: ServerHttp2Stream, h: IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<{ port: number; srv: Http2Server; sessions: Set<http2.ServerHttp2Session> }> {
  const srv = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  srv.on('stream', (s, h) => {
    s.on('error', () => undefined);
    onStream(s, h);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        srv.close(() => r());
      }),
  );
  return { port: (srv.address() as net.AddressInfo).port, srv, sessions };
}

function connect(port: number, opts: ConstructorParameters<typeof H2ClientConnection>[1] = {}): H2ClientConnection {
  const c = new H2ClientConnection(net.connect(port, '127.0.0.1'), opts);
  cleanups.push(() => c.destroy());
  return c;
}

function head(path: string, method = 'POST'): Buffer {
  return encodeHeaders([
    [':method', method],
    [':scheme', 'http'],
    [':authority', 'test.local'],
    [':path', path],
    ['content-type', 'application/grpc'],
  ]);
}

interface Result {
  headers: string[];
  body: Buffer;
  trailers: string[] | null;
  aborted: { why: string; code: number } | null;
}

function collect(s: H2ClientStream): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { headers: [], body: Buffer.alloc(0), trailers: null, aborted: null };
    const chunks: Buffer[] = [];
    s.onResponse = (h) => (r.headers = h);
    s.onData = (c) => chunks.push(Buffer.from(c));
    s.onTrailers = (t) => (r.trailers = t);
    s.onEnd = () => resolve({ ...r, body: Buffer.concat(chunks) });
    s.onAbort = (why, code) => resolve({ ...r, body: Buffer.concat(chunks), aborted: { why, code } });
  });
}

const get = (h: readonly string[], name: string): string | undefined => h[h.indexOf(name) + 1];

describe('H2ClientConnection', () => {
  it('sends a request with a body and gets the response head, body and trailers', async () => {
    const { port } = await server((s, h) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        s.respond({ ':status': 200, 'x-path': String(h[':path']) }, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
        s.end(Buffer.concat([Buffer.from('echo:'), ...chunks]));
      });
    });
    const c = connect(port);
    const s = c.request(head('/a'), false);
    const done = collect(s);
    s.write(Buffer.from('hello'));
    s.end();
    const r = await done;
    expect(get(r.headers, ':status')).toBe('200');
    expect(get(r.headers, 'x-path')).toBe('/a');
    expect(r.body.toString()).toBe('echo:hello');
    expect(r.trailers && get(r.trailers, 'grpc-status')).toBe('0');
    expect(r.aborted).toBeNull();
    expect(s.id).toBe(1);
    expect(c.request(head('/b'), true).id).toBe(3);
  });

  it('moves 4 MiB both ways under flow control, with write() backpressure and onDrain', async () => {
    const size = 4 * 1024 * 1024;
    const { port } = await server((s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => {
        s.respond({ ':status': 200 });
        s.end(Buffer.alloc(n, 7));
      });
    });
    const c = connect(port);
    const s = c.request(head('/big'), false);
    const done = collect(s);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    let waited = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!s.write(chunk)) {
            waited++;
            s.onDrain = pump;
            return;
          }
        }
        s.end();
        resolve();
      };
      pump();
    });
    const r = await done;
    expect(waited).toBeGreaterThan(0);
    expect(r.body.length).toBe(size);
  });

  it('respects the peer MAX_CONCURRENT_STREAMS: extra streams wait and open as others end', async () => {
    let open = 0;
    let maxOpen = 0;
    const { port } = await server(
      (s) => {
        open++;
        maxOpen = Math.max(maxOpen, open);
        s.on('close', () => open--);
        setTimeout(() => {
          s.respond({ ':status': 200 });
          s.end('ok');
        }, 20);
      },
      { maxConcurrentStreams: 2 },
    );
    let settled = false;
    const c = connect(port, { onSettings: () => (settled = true) });
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(true);
    expect(c.peerMaxStreams).toBe(2);
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => collect(c.request(head(`/s${i}`, 'GET'), true))));
    expect(results.map((r) => get(r.headers, ':status'))).toEqual(['200', '200', '200', '200', '200']);
    expect(maxOpen).toBe(2);
  });

  it('reports RST_STREAM from the server as an abort with its code; the connection goes on', async () => {
    const { port } = await server((s, h) => {
      if (h[':path'] === '/rst') s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else {
        s.respond({ ':status': 204 }, { endStream: true });
      }
    });
    const c = connect(port);
    const r = await collect(c.request(head('/rst', 'GET'), true));
    expect(r.aborted).toEqual({ why: 'reset', code: http2.constants.NGHTTP2_INTERNAL_ERROR });
    const ok = await collect(c.request(head('/ok', 'GET'), true));
    expect(get(ok.headers, ':status')).toBe('204');
  });

  it('GOAWAY: the stream in flight finishes, the connection takes no new streams, then closes', async () => {
    let release: (() => void) | null = null;
    const { port, sessions } = await server((s) => {
      release = () => {
        s.respond({ ':status': 200 });
        s.end('late');
      };
    });
    let goaway = -1;
    let closed = false;
    const c = connect(port, { onGoAway: (code) => (goaway = code), onClose: () => (closed = true) });
    const done = collect(c.request(head('/slow', 'GET'), true));
    await new Promise((r) => setTimeout(r, 50));
    for (const s of sessions) s.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(goaway).toBe(0);
    expect(c.usable).toBe(false);
    expect(() => c.request(head('/new', 'GET'), true)).toThrow();
    release!();
    const r = await done;
    expect(r.body.toString()).toBe('late');
    await new Promise((r2) => setTimeout(r2, 50));
    expect(closed).toBe(true);
  });

  it('answers PING and pause() holds response DATA until resume()', async () => {
    const { port, sessions } = await server((s) => {
      s.respond({ ':status': 200 });
      s.write('one');
      setTimeout(() => s.end('two'), 30);
    });
    const c = connect(port);
    const s = c.request(head('/p', 'GET'), true);
    const done = collect(s);
    s.pause();
    await new Promise((r) => setTimeout(r, 80));
    const pinged = await new Promise<boolean>((resolve) => [...sessions][0]!.ping((err) => resolve(err === null)));
    expect(pinged).toBe(true);
    let ended = false;
    void done.then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(ended).toBe(false);
    s.resume();
    const r = await done;
    expect(r.body.toString()).toBe('onetwo');
  });
});

describe('H2ClientConnection: malformed responses, a peer that takes no streams, END_STREAM framing', () => {
  /** A raw upstream that answers each request with `answer(stream, conn)` once the request ended. */
  async function rawServer(answer: (stream: number, c: RawConn) => void, settings: [number, number][] = []): Promise<RawServer> {
    const srv = await rawH2Server((f, c) => {
      if ((f.type === T.HEADERS || f.type === T.DATA) && (f.flags & END_STREAM) !== 0) answer(f.stream, c);
    }, settings);
    cleanups.push(() => srv.close());
    return srv;
  }

  it('resets a stream whose DATA comes before the response HEADERS (PROTOCOL_ERROR, RFC 9113 §8.1); the connection goes on', async () => {
    const srv = await rawServer((id, c) => {
      if (id === 1) c.send(frame(T.DATA, 0, id, Buffer.from('early')), headersFrame(id, [[':status', '200']], true));
      else c.send(headersFrame(id, [[':status', '204']], true));
    });
    const c = connect(srv.port);
    const r = await collect(c.request(head('/early', 'GET'), true));
    expect(r.aborted).toEqual({ why: 'protocol', code: 1 });
    expect(r.body.length).toBe(0);
    expect(r.headers).toEqual([]);
    await waitFor(() => srv.conns[0]!.on(1).some((f) => f.type === T.RST_STREAM), 2000, 5);
    expect(rstCode(srv.conns[0]!.on(1).find((f) => f.type === T.RST_STREAM)!)).toBe(1);
    const ok = await collect(c.request(head('/next', 'GET'), true));
    expect(get(ok.headers, ':status')).toBe('204');
    expect(srv.conns.length).toBe(1);
  });

  it('DATA after an informational (1xx) head but before the final one is malformed too', async () => {
    const srv = await rawServer((id, c) => c.send(headersFrame(id, [[':status', '103']], false), frame(T.DATA, 0, id, Buffer.from('x'))));
    const r = await collect(connect(srv.port).request(head('/hints', 'GET'), true));
    expect(r.aborted).toEqual({ why: 'protocol', code: 1 });
  });

  it('resets the stream on malformed response heads and trailers (CR/LF or uppercase in a name, pseudo-headers in trailers, HEADERS without END_STREAM)', async () => {
    const answers: Record<number, (id: number) => Buffer[]> = {
      1: (id) => [headersFrame(id, [[':status', '200'], ['x-a\r\nx-injected', '1']], true)],
      3: (id) => [headersFrame(id, [[':status', '200'], ['X-Upper', '1']], true)],
      5: (id) => [headersFrame(id, [[':status', '200']], false), frame(T.DATA, 0, id, Buffer.from('b')), headersFrame(id, [[':status', '200'], ['grpc-status', '0']], true)],
      7: (id) => [headersFrame(id, [[':status', '200']], false), headersFrame(id, [['grpc-status', '0']], false)],
      9: (id) => [headersFrame(id, [[':status', '200']], false), headersFrame(id, [['grpc-status', '0'], ['x-t', 'a\nb']], true)],
      11: (id) => [headersFrame(id, [[':status', '200']], false), frame(T.DATA, 0, id, Buffer.from('ok')), headersFrame(id, [['grpc-status', '0']], true)],
    };
    const srv = await rawServer((id, c) => c.send(...answers[id]!(id)));
    const c = connect(srv.port);
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await collect(c.request(head(`/r${i}`, 'GET'), true)));
    expect(results.slice(0, 5).map((r) => r.aborted)).toEqual(Array(5).fill({ why: 'protocol', code: 1 }));
    // A well-formed one on the same connection still works, trailers and all.
    expect(results[5]!.aborted).toBeNull();
    expect(results[5]!.body.toString()).toBe('ok');
    expect(get(results[5]!.trailers!, 'grpc-status')).toBe('0');
    expect(srv.conns.length).toBe(1);
  });

  it('a peer that lowers MAX_CONCURRENT_STREAMS to 0 refuses the waiting streams at once (never sent); the open one finishes', async () => {
    const opened: string[] = [];
    const streams: ServerHttp2Stream[] = [];
    const { port, sessions } = await server(
      (s, h) => {
        opened.push(String(h[':path']));
        streams.push(s);
      },
      { maxConcurrentStreams: 1 },
    );
    const c = connect(port);
    await waitFor(() => c.peerMaxStreams === 1, 2000, 5);
    const a = collect(c.request(head('/a', 'GET'), true));
    const b = collect(c.request(head('/b', 'GET'), true));
    await waitFor(() => opened.length === 1, 2000, 5);
    expect(c.activeStreams).toBe(2);
    const t0 = Date.now();
    [...sessions][0]!.settings({ maxConcurrentStreams: 0 });
    const rb = await b;
    expect(rb.aborted).toEqual({ why: 'reset', code: http2.constants.NGHTTP2_REFUSED_STREAM });
    expect(Date.now() - t0).toBeLessThan(500);
    expect(c.peerMaxStreams).toBe(0);
    streams[0]!.respond({ ':status': 200 });
    streams[0]!.end('a done');
    const ra = await a;
    expect(ra.body.toString()).toBe('a done');
    expect(opened).toEqual(['/a']);
  });

  it('end() right after write() sends one DATA frame with END_STREAM; an end() in a later tick sends an empty END_STREAM DATA frame', async () => {
    const srv = await rawServer((id, c) => c.send(headersFrame(id, [[':status', '200']], true)));
    const c = connect(srv.port);
    const s1 = c.request(head('/one'), false);
    const d1 = collect(s1);
    s1.write(Buffer.from('hello'));
    s1.end();
    await d1;
    const s3 = c.request(head('/two'), false);
    const d3 = collect(s3);
    s3.write(Buffer.from('world'));
    await new Promise((r) => setTimeout(r, 10));
    s3.end();
    await d3;
    const data = (id: number): { len: number; end: boolean }[] =>
      srv.conns[0]!.on(id)
        .filter((f) => f.type === T.DATA)
        .map((f) => ({ len: f.payload.length, end: (f.flags & END_STREAM) !== 0 }));
    expect(data(1)).toEqual([{ len: 5, end: true }]);
    expect(data(3)).toEqual([
      { len: 5, end: false },
      { len: 0, end: true },
    ]);
  });
});
