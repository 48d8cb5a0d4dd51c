/**
 * H2ServerConnection as a proxy uses it: bytes a sniffer already read (feed), receive
 * backpressure (pause() holds DATA and withholds the stream's WINDOW_UPDATE until resume()), and
 * send backpressure (write() returns false while bytes wait for the peer's window; onDrain when
 * they went). Driven by node:http2 as the client, plus a raw-frame client where the exact frames
 * matter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { H2ServerConnection, PREFACE, encodeHeaders, malformedRequest, type H2Stream } from '../../../src/h2/server-connection.js';
import { END_STREAM, T, frame as h2frame, headersFrame, rawH2Client, rstCode, type Frame } from '../../helpers/h2-raw.js';
import { waitFor } from '../../helpers/http.js';

interface Harness {
  port: number;
  streams: H2Stream[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A TCP server whose connections are H2ServerConnections; `sniff` bytes are read first and fed. */
async function serve(onStream: (s: H2Stream) => void, opts: { sniff?: number; streamWindow?: number } = {}): Promise<Harness> {
  const streams: H2Stream[] = [];
  const conns = new Set<H2ServerConnection>();
  const server = net.createServer((socket) => {
    const start = (initial: Buffer): void => {
      const c = new H2ServerConnection(socket, {
        streamWindow: opts.streamWindow,
        onStream: (s) => {
          streams.push(s);
          onStream(s);
        },
        onClose: (x) => conns.delete(x),
      });
      conns.add(c);
      c.feed(initial);
      socket.resume();
    };
    if (!opts.sniff) return start(Buffer.alloc(0));
    // A sniffer: reads until it has `sniff` bytes, pauses, hands them over.
    let seen = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      seen = Buffer.concat([seen, d]);
      if (seen.length < opts.sniff!) return;
      socket.removeListener('data', onData);
      socket.pause();
      start(seen);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const h: Harness = {
    port: (server.address() as net.AddressInfo).port,
    streams,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
  cleanups.push(() => h.close());
  return h;
}

function client(port: number): ClientHttp2Session {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => {});
  cleanups.push(() => void c.destroy());
  return c;
}

const OK = encodeHeaders([[':status', '200']]);

function collect(s: H2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    s.onData = (c) => chunks.push(Buffer.from(c));
    s.onEnd = () => resolve(Buffer.concat(chunks));
  });
}

function post(c: ClientHttp2Session, body: Buffer): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = c.request({ ':method': 'POST', ':path': '/' });
    let status = 0;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    req.end(body);
  });
}

describe('H2ServerConnection for a proxy', () => {
  it('serves streams from bytes a sniffer read before handing the socket over', async () => {
    const h = await serve(
      (s) => {
        void collect(s).then((b) => {
          s.respond(OK);
          s.write(b);
          s.end(encodeHeaders([['x-t', 'done']]));
        });
      },
      { sniff: PREFACE.length + 5 },
    );
    const c = client(h.port);
    const r = await post(c, Buffer.from('ping'));
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('ping');
    expect(r.trailers['x-t']).toBe('done');
  });

  it('write() returns false while bytes wait for the client window, onDrain fires once they went', async () => {
    let falses = 0;
    let drains = 0;
    let maxBuffered = 0;
    const size = 3 * 1024 * 1024;
    const h = await serve((s) => {
      s.respond(OK);
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          const n = Math.min(64 * 1024, size - sent);
          sent += n;
          const more = s.write(Buffer.alloc(n, 7));
          maxBuffered = Math.max(maxBuffered, s.bufferedBytes);
          if (!more) {
            falses++;
            return;
          }
        }
        s.end();
      };
      s.onDrain = () => {
        drains++;
        expect(s.bufferedBytes).toBe(0);
        pump();
      };
      s.onEnd = pump;
    });
    const c = client(h.port);
    const r = await post(c, Buffer.alloc(0));
    expect(r.body.length).toBe(size);
    expect(falses).toBeGreaterThan(0);
    expect(drains).toBe(falses);
    // The writer stopped at the first false: at most one chunk waits at a time.
    expect(maxBuffered).toBeLessThanOrEqual(64 * 1024);
  });

  it('write() returns false when the socket backs up (window open), onDrain once it drains', async () => {
    // A raw client with a huge window that stops reading: the kernel buffers fill, not the window.
    const size = 8 * 1024 * 1024;
    let sent = 0;
    let socketFalse = 0;
    let drains = 0;
    const h = await serve((s) => {
      s.respond(OK);
      const pump = (): void => {
        while (sent < size) {
          sent += 16 * 1024;
          if (!s.write(Buffer.alloc(16 * 1024, 3))) {
            if (s.bufferedBytes === 0) socketFalse++;
            return;
          }
        }
        s.end();
      };
      s.onDrain = () => {
        drains++;
        pump();
      };
      pump();
    });
    const sock = net.connect(h.port, '127.0.0.1');
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(2 ** 31 - 1, 2);
    const winc = Buffer.alloc(4);
    winc.writeUInt32BE(2 ** 31 - 1 - 65_535, 0);
    const block = encodeHeaders([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'x']]);
    sock.write(Buffer.concat([PREFACE, h2frame(4, 0, 0, settings), h2frame(8, 0, 0, winc), h2frame(1, 0x5, 1, block)]));
    sock.pause();
    await new Promise((r) => setTimeout(r, 200));
    // Stalled by the socket, far from the end, with nothing waiting in the stream for window.
    expect(socketFalse).toBeGreaterThan(0);
    expect(sent).toBeLessThan(size);
    let got = 0;
    const ended = new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= size) resolve();
      });
    });
    sock.resume();
    await ended;
    expect(sent).toBe(size);
    expect(drains).toBeGreaterThan(0);
    sock.destroy();
  });

  it('pause() holds DATA and the stream window; resume() delivers it in order and reopens the window', async () => {
    const window = 64 * 1024;
    const size = 1024 * 1024;
    let received = 0;
    let pausedAt = -1;
    let stream: H2Stream | null = null;
    const done = new Promise<Buffer>((resolve) => {
      void serve(
        (s) => {
          stream = s;
          const chunks: Buffer[] = [];
          s.onData = (d) => {
            chunks.push(Buffer.from(d));
            received += d.length;
            if (pausedAt < 0 && received >= 16 * 1024) {
              pausedAt = received;
              s.pause();
            }
          };
          s.onEnd = () => {
            s.respond(OK);
            s.end();
            resolve(Buffer.concat(chunks));
          };
        },
        { streamWindow: window },
      ).then((h) => {
        const c = client(h.port);
        const body = Buffer.alloc(size);
        for (let i = 0; i < size; i++) body[i] = i & 0xff;
        void post(c, body);
      });
    });
    // While paused, the client can send at most the rest of one stream window.
    await new Promise((r) => setTimeout(r, 150));
    expect(pausedAt).toBeGreaterThan(0);
    expect(received).toBe(pausedAt);
    const held = (stream as unknown as { inbox: Buffer[] | null }).inbox ?? [];
    const heldBytes = held.reduce((n, b) => n + b.length, 0);
    expect(pausedAt + heldBytes).toBeLessThanOrEqual(window);
    stream!.resume();
    const got = await done;
    expect(got.length).toBe(size);
    for (let i = 0; i < size; i += 4099) expect(got[i]).toBe(i & 0xff);
  });

  it('a paused stream does not stall the other streams of the connection', async () => {
    const h = await serve(
      (s) => {
        if (s.header(':path') === '/slow') {
          s.pause();
          return;
        }
        void collect(s).then((b) => {
          s.respond(OK);
          s.end(encodeHeaders([['n', String(b.length)]]));
        });
      },
      { streamWindow: 64 * 1024 },
    );
    const c = client(h.port);
    const slow = c.request({ ':method': 'POST', ':path': '/slow' });
    slow.on('error', () => {});
    slow.write(Buffer.alloc(200 * 1024));
    for (let i = 0; i < 5; i++) {
      const r = await post(c, Buffer.alloc(100 * 1024));
      expect(r.trailers.n).toBe(String(100 * 1024));
    }
    slow.close();
  });

  it('delivers request trailers (onTrailers) before onEnd, also after a pause', async () => {
    const seen: string[] = [];
    const h = await serve((s) => {
      s.pause();
      s.onData = (d) => seen.push(`data:${d.length}`);
      s.onTrailers = (t) => seen.push(`trailers:${t.join('=')}`);
      s.onEnd = () => {
        seen.push('end');
        s.respond(OK, true);
      };
      setTimeout(() => s.resume(), 50);
    });
    const c = client(h.port);
    await new Promise<void>((resolve, reject) => {
      const req = c.request({ ':method': 'POST', ':path': '/' }, { waitForTrailers: true });
      req.on('wantTrailers', () => req.sendTrailers({ 'x-sum': '3' }));
      req.on('response', () => resolve());
      req.on('error', reject);
      req.end(Buffer.from('abc'));
    });
    expect(seen).toEqual(['data:3', 'trailers:x-sum=3', 'end']);
  });
});

describe('malformedRequest (RFC 9113 §8.2, §8.3.1)', () => {
  const ok = [':method', 'POST', ':scheme', 'http', ':path', '/svc/M', ':authority', 'a', 'content-type', 'application/grpc', 'te', 'trailers'];

  it('accepts a well-formed request and CONNECT without :path', () => {
    expect(malformedRequest(ok)).toBeNull();
    expect(malformedRequest([':method', 'CONNECT', ':authority', 'a:443'])).toBeNull();
  });

  it('refuses what node:http2 refused: connection-specific fields, uppercase names, bad te, misplaced or missing pseudo-headers', () => {
    expect(malformedRequest([...ok, 'transfer-encoding', 'chunked'])).toMatch(/connection-specific header transfer-encoding/);
    expect(malformedRequest([...ok, 'connection', 'close'])).toMatch(/connection-specific/);
    expect(malformedRequest([...ok, 'X-Upper', '1'])).toMatch(/not lowercase/);
    expect(malformedRequest([...ok, 'te', 'gzip'])).toMatch(/te other than/);
    expect(malformedRequest([...ok, ':path', '/again'])).toMatch(/after regular headers/);
    expect(malformedRequest([':method', 'GET', ':method', 'POST', ':scheme', 'http', ':path', '/'])).toMatch(/repeated :method/);
    expect(malformedRequest([':method', 'GET', ':scheme', 'http'])).toMatch(/no :path/);
    expect(malformedRequest([':scheme', 'http', ':path', '/'])).toMatch(/no :method/);
    expect(malformedRequest([...ok.slice(0, 6), ':status', '200'])).toMatch(/unknown pseudo-header :status/);
    expect(malformedRequest([...ok, 'x-a', 'b\r\nx-smuggled: 1'])).toMatch(/CR, LF or NUL/);
  });

  it('refuses names and pseudo-headers that would split an HTTP/1.1 head on the next hop (CR, LF, space, colon; a non-token method)', () => {
    expect(malformedRequest([...ok, 'x-a\r\nx-smuggled', '1'])).toMatch(/invalid character/);
    expect(malformedRequest([...ok, 'x a', '1'])).toMatch(/invalid character/);
    expect(malformedRequest([...ok, 'x:a', '1'])).toMatch(/invalid character/);
    expect(malformedRequest([...ok, 'x-\u00e9', '1'])).toMatch(/invalid character/);
    expect(malformedRequest([...ok, '', '1'])).toMatch(/empty header name/);
    expect(malformedRequest([':method', 'GET', ':scheme', 'http', ':path', '/a HTTP/1.1\r\nx-smuggled: 1'])).toMatch(/:path holds/);
    expect(malformedRequest([':method', 'GET', ':scheme', 'http', ':path', '/a b'])).toMatch(/:path holds/);
    expect(malformedRequest([':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'a\r\nx: 1'])).toMatch(/:authority holds/);
    expect(malformedRequest([':method', 'GE T', ':scheme', 'http', ':path', '/'])).toMatch(/:method holds/);
    expect(malformedRequest([':method', '', ':scheme', 'http', ':path', '/'])).toMatch(/:method holds/);
    expect(malformedRequest([':method', 'GET', ':scheme', 'http', ':path', '/%20?q=\u00e9', ':authority', 'a.b:80'])).toBeNull();
  });

  it('a connection answers a malformed request with RST_STREAM PROTOCOL_ERROR and serves the next one', async () => {
    const seen: string[] = [];
    const server = net.createServer((sock) => {
      new H2ServerConnection(sock, {
        onStream: (s: H2Stream) => {
          seen.push(s.header(':path') ?? '');
          s.respond(encodeHeaders([[':status', '200']]), true);
        },
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const headers = (id: number, h: [string, string][]): Buffer => {
      const block = encodeHeaders(h);
      const f = Buffer.alloc(9);
      f.writeUIntBE(block.length, 0, 3);
      f[3] = 1; // HEADERS
      f[4] = 0x5; // END_STREAM | END_HEADERS
      f.writeUInt32BE(id, 5);
      return Buffer.concat([f, block]);
    };
    const req: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/a']];
    const frames = await new Promise<Buffer>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(Buffer.concat([PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), headers(1, [...req, ['transfer-encoding', 'chunked']]), headers(3, [[':method', 'GET'], [':scheme', 'http'], [':path', '/b']])]));
        setTimeout(() => sock.end(), 100);
      });
      const parts: Buffer[] = [];
      sock.on('data', (c: Buffer) => parts.push(c));
      sock.on('close', () => resolve(Buffer.concat(parts)));
    });
    server.close();
    const got: { type: number; stream: number; code?: number }[] = [];
    for (let off = 0; off + 9 <= frames.length; ) {
      const len = frames.readUIntBE(off, 3);
      const type = frames[off + 3]!;
      const stream = frames.readUInt32BE(off + 5);
      got.push({ type, stream, ...(type === 3 ? { code: frames.readUInt32BE(off + 9) } : {}) });
      off += 9 + len;
    }
    expect(got).toContainEqual({ type: 3, stream: 1, code: 1 }); // RST_STREAM PROTOCOL_ERROR
    expect(got.some((f) => f.type === 1 && f.stream === 3)).toBe(true); // the next request is answered
    expect(seen).toEqual(['/b']);
  });

  it('write() and end() in the same tick send one DATA frame with END_STREAM', async () => {
    const h = await serve((s) => {
      s.respond(OK);
      s.write(Buffer.from('abc'));
      s.end();
    });
    const c = await rawH2Client(h.port, [headersFrame(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/']], true)]);
    await waitFor(() => c.on(1).some((f) => (f.flags & END_STREAM) !== 0), 2000, 5);
    expect(c.on(1).map((f) => [f.type, f.payload.length, f.flags & END_STREAM])).toEqual([
      [T.HEADERS, expect.any(Number), 0],
      [T.DATA, 3, END_STREAM],
    ]);
    c.socket.destroy();
  });

  it('resets only the stream on malformed trailers (PROTOCOL_ERROR) and on DATA after END_STREAM (STREAM_CLOSED); well-formed trailers reach onTrailers', async () => {
    const aborts = new Map<number, [string, number]>();
    let trailers: string[] | null = null;
    const h = await serve((s) => {
      s.onAbort = (why, code) => aborts.set(s.id, [why, code]);
      s.onTrailers = (t) => (trailers = t);
      if (s.header(':path') === '/ok') s.onEnd = () => s.respond(OK, true);
    });
    const post = (id: number, path: string): Buffer => headersFrame(id, [[':method', 'POST'], [':scheme', 'http'], [':path', path]], false);
    const c = await rawH2Client(h.port, [
      post(1, '/pseudo'),
      h2frame(T.DATA, 0, 1, Buffer.from('x')),
      headersFrame(1, [[':path', '/x']], true),
      post(3, '/crlf'),
      headersFrame(3, [['x-t', 'a\r\nb']], true),
      post(5, '/no-end'),
      headersFrame(5, [['x-t', '1']], false),
      headersFrame(7, [[':method', 'GET'], [':scheme', 'http'], [':path', '/half-closed']], true),
      h2frame(T.DATA, 0, 7, Buffer.from('late')),
      post(9, '/ok'),
      h2frame(T.DATA, 0, 9, Buffer.from('body')),
      headersFrame(9, [['x-sum', '1']], true),
    ]);
    await waitFor(() => c.on(9).some((f) => f.type === T.HEADERS), 2000, 5);
    const rst = (id: number): number | undefined => {
      const f = c.on(id).find((x: Frame) => x.type === T.RST_STREAM);
      return f === undefined ? undefined : rstCode(f);
    };
    expect([rst(1), rst(3), rst(5), rst(7), rst(9)]).toEqual([1, 1, 1, 5, undefined]);
    expect([...aborts.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [1, ['protocol', 1]],
      [3, ['protocol', 1]],
      [5, ['protocol', 1]],
      [7, ['protocol', 5]],
    ]);
    expect(trailers).toEqual(['x-sum', '1']);
    expect(c.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    c.socket.destroy();
  });

  it('DATA on a stream that was never opened (no HEADERS yet) is a connection error: GOAWAY PROTOCOL_ERROR', async () => {
    const h = await serve(() => undefined);
    const c = await rawH2Client(h.port, [h2frame(T.DATA, 0, 1, Buffer.from('no head'))]);
    await waitFor(() => c.frames.some((f) => f.type === T.GOAWAY), 2000, 5);
    expect(c.frames.find((f) => f.type === T.GOAWAY)!.payload.readUInt32BE(4)).toBe(1);
    expect(h.streams.length).toBe(0);
  });
});
