/**
 * The runtime API's own gRPC server (src/runtime-api/grpc/h2-server.ts), driven by a raw
 * node:http2 client so every byte and header of the protocol is visible: framing across
 * chunks, trailers-only errors, deadlines, compression, limits, non-gRPC requests, bidi
 * streams and a cancelled call. The Layotto SDK and grpc-js against the real Runtime service
 * are in test/integration/runtime-api/grpc-runtime.test.ts and test/compat/layotto-sdk.test.ts.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, GrpcError } from '../../../src/runtime-api/grpc/errors.js';
import {
  MAX_MESSAGE_BYTES,
  MessageReader,
  encodeGrpcMessage,
  frameMessage,
  startGrpcH2Server,
  type BidiCall,
  type GrpcH2Server,
  type MethodCodec,
} from '../../../src/runtime-api/grpc/h2-server.js';
import { parseGrpcTimeout } from '../../../src/grpc-wire.js';
import { memoryLogger } from '../../helpers/runtime.js';

/** JSON in place of protobuf: the server only frames and routes, the codec is the method's. */
const json = (requestStream = false, responseStream = false): MethodCodec => ({
  requestStream,
  responseStream,
  requestDeserialize: (b) => JSON.parse(b.toString('utf8')),
  responseSerialize: (m) => Buffer.from(JSON.stringify(m)),
});

const SERVICE = 'test.v1.Echo';

interface Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  messages: unknown[];
}

function call(session: http2.ClientHttp2Session, method: string, body: Buffer | Buffer[], extra: http2.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': `/${SERVICE}/${method}`, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    const reply: Reply = { status: 0, headers: {}, trailers: {}, messages: [] };
    const reader = new MessageReader();
    req.on('response', (h) => {
      reply.status = Number(h[':status']);
      reply.headers = h;
    });
    req.on('trailers', (t) => (reply.trailers = t));
    req.on('data', (c: Buffer) => {
      for (const m of reader.push(c)) reply.messages.push(reply.status === 200 && reply.headers['content-type'] === 'application/grpc' ? JSON.parse(m.bytes.toString()) : m.bytes);
    });
    req.on('end', () => resolve(reply));
    req.on('error', reject);
    for (const b of Array.isArray(body) ? body : [body]) req.write(b);
    req.end();
  });
}

const msg = (o: unknown): Buffer => frameMessage(Buffer.from(JSON.stringify(o)));
/** grpc-status / grpc-message wherever the server put them (trailers, or a trailers-only head). */
const statusOf = (r: Reply): { code: number; message: string } => {
  const src = r.trailers['grpc-status'] !== undefined ? r.trailers : r.headers;
  return { code: Number(src['grpc-status']), message: decodeURIComponent(String(src['grpc-message'] ?? '')) };
};

describe('helpers', () => {
  it('parses grpc-timeout in every unit and rejects malformed values', () => {
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('5000u')).toBe(5);
    expect(parseGrpcTimeout('5000000n')).toBe(5);
    expect(parseGrpcTimeout('123456789m')).toBeUndefined();
    expect(parseGrpcTimeout('10x')).toBeUndefined();
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
  });

  it('percent-encodes grpc-message only when it must', () => {
    expect(encodeGrpcMessage('state store x not found')).toBe('state store x not found');
    expect(encodeGrpcMessage('100% sure: é\n')).toBe(encodeURIComponent('100% sure: é\n'));
  });

  it('splits messages across chunk boundaries and refuses one over the limit', () => {
    const r = new MessageReader();
    const two = Buffer.concat([msg({ a: 1 }), msg({ b: 2 })]);
    expect(r.push(two.subarray(0, 3))).toEqual([]);
    const got = r.push(two.subarray(3, 12));
    expect(got.map((m) => JSON.parse(m.bytes.toString()))).toEqual([{ a: 1 }]);
    expect(r.push(two.subarray(12)).map((m) => JSON.parse(m.bytes.toString()))).toEqual([{ b: 2 }]);
    expect(r.leftover).toBe(0);
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 1);
    expect(() => new MessageReader().push(huge)).toThrow(/larger than max/);
  });
});

describe('startGrpcH2Server', () => {
  let server: GrpcH2Server;
  let session: http2.ClientHttp2Session;
  const log = memoryLogger();
  let slowCalls = 0;
  let slowDone = 0;

  beforeAll(async () => {
    server = await startGrpcH2Server({
      host: '127.0.0.1',
      port: 0,
      service: SERVICE,
      logger: log.logger,
      codecs: { Echo: json(), Fail: json(), Slow: json(), Meta: json(), Chat: json(true, true), Upload: json(true, false), Crash: json() },
      methods: {
        Echo: { kind: 'unary', fn: async (req) => ({ echo: req }) },
        Fail: {
          kind: 'unary',
          fn: async (req: { code: number }) => {
            throw new GrpcError(req.code as 3, 'store "x" is not configured: 100% wrong', { 'http-status': '404' });
          },
        },
        Crash: {
          kind: 'unary',
          fn: async () => {
            throw new TypeError('boom');
          },
        },
        Slow: {
          kind: 'unary',
          fn: async (req: { ms: number }) => {
            slowCalls++;
            await new Promise((r) => setTimeout(r, req.ms));
            slowDone++;
            return { slept: req.ms };
          },
        },
        Meta: {
          kind: 'unary',
          fn: async (_req, ctx) => {
            ctx.responseMetadata = { 'x-app': 'yes' };
            return { got: ctx.metadata['x-caller'] ?? null };
          },
        },
        Chat: {
          kind: 'bidi',
          fn: (c: BidiCall) => {
            c.on('data', (m: { say?: string; fail?: boolean }) => {
              if (m.fail) c.fail(Code.FAILED_PRECONDITION, 'asked to fail');
              else c.write({ heard: m.say });
            });
            c.on('end', () => c.end());
          },
        },
        Upload: { kind: 'unimplemented', message: 'Upload is not implemented: later' },
      },
    });
    session = http2.connect(`http://127.0.0.1:${server.port}`);
  });

  afterAll(async () => {
    session?.close();
    await server?.close();
  });

  it('answers a unary call with one message and grpc-status 0 in the trailers', async () => {
    const r = await call(session, 'Echo', msg({ hi: 'there' }));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(r.messages).toEqual([{ echo: { hi: 'there' } }]);
    expect(r.trailers['grpc-status']).toBe('0');
  });

  it('reassembles a request message split over several DATA frames', async () => {
    const m = msg({ text: 'x'.repeat(100_000) });
    const r = await call(session, 'Echo', [m.subarray(0, 2), m.subarray(2, 40_000), m.subarray(40_000)]);
    expect((r.messages[0] as { echo: { text: string } }).echo.text).toHaveLength(100_000);
  });

  it('decodes a gzip-compressed message (grpc-encoding: gzip)', async () => {
    const raw = gzipSync(Buffer.from(JSON.stringify({ zipped: true })));
    const framed = Buffer.alloc(5 + raw.length);
    framed[0] = 1;
    framed.writeUInt32BE(raw.length, 1);
    raw.copy(framed, 5);
    const r = await call(session, 'Echo', framed, { 'grpc-encoding': 'gzip' });
    expect(r.messages).toEqual([{ echo: { zipped: true } }]);
  });

  it('refuses an unknown grpc-encoding with UNIMPLEMENTED and lists what it accepts', async () => {
    const r = await call(session, 'Echo', msg({}), { 'grpc-encoding': 'snappy' });
    expect(statusOf(r).code).toBe(Code.UNIMPLEMENTED);
    expect(r.headers['grpc-accept-encoding']).toContain('gzip');
  });

  it('turns a thrown GrpcError into a trailers-only status with its extra trailers, percent-decoded message intact', async () => {
    const r = await call(session, 'Fail', msg({ code: Code.INVALID_ARGUMENT }));
    expect(r.messages).toEqual([]);
    expect(statusOf(r)).toEqual({ code: Code.INVALID_ARGUMENT, message: 'store "x" is not configured: 100% wrong' });
    expect(r.headers['http-status']).toBe('404');
  });

  it('a handler crashing fails its call with INTERNAL and the server keeps serving', async () => {
    const r = await call(session, 'Crash', msg({}));
    expect(statusOf(r)).toEqual({ code: Code.INTERNAL, message: 'boom' });
    expect(log.lines.some((l) => l.msg === 'runtime gRPC call failed' && l.method === 'Crash')).toBe(true);
    expect((await call(session, 'Echo', msg(1))).messages).toEqual([{ echo: 1 }]);
  });

  it('answers INVALID_ARGUMENT for a message that does not decode, and for zero or two messages on a unary method', async () => {
    const bad = await call(session, 'Echo', frameMessage(Buffer.from('{not json')));
    expect(statusOf(bad).code).toBe(Code.INVALID_ARGUMENT);
    expect(statusOf(bad).message).toMatch(/not a valid Echo request/);
    expect(statusOf(await call(session, 'Echo', Buffer.alloc(0))).message).toMatch(/no complete message/);
    expect(statusOf(await call(session, 'Echo', Buffer.concat([msg(1), msg(2)]))).message).toMatch(/had 2 messages/);
    expect(statusOf(await call(session, 'Echo', msg(1).subarray(0, 4))).code).toBe(Code.INVALID_ARGUMENT);
  });

  it('refuses a message over 4 MiB with RESOURCE_EXHAUSTED', async () => {
    const big = msg({ text: 'y'.repeat(MAX_MESSAGE_BYTES) });
    const r = await call(session, 'Echo', big);
    expect(statusOf(r).code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it('honours grpc-timeout: DEADLINE_EXCEEDED when the handler is slower', async () => {
    const t0 = Date.now();
    const r = await call(session, 'Slow', msg({ ms: 400 }), { 'grpc-timeout': '50m' });
    expect(statusOf(r).code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(350);
    expect((await call(session, 'Slow', msg({ ms: 5 }), { 'grpc-timeout': '2S' })).messages).toEqual([{ slept: 5 }]);
  });

  it('passes request metadata to the handler and sends its response metadata in the head', async () => {
    const r = await call(session, 'Meta', msg({}), { 'x-caller': 'unit' });
    expect(r.messages).toEqual([{ got: 'unit' }]);
    expect(r.headers['x-app']).toBe('yes');
  });

  it('answers UNIMPLEMENTED for an unimplemented method and for a path outside the service', async () => {
    expect(statusOf(await call(session, 'Upload', msg({})))).toEqual({ code: Code.UNIMPLEMENTED, message: 'Upload is not implemented: later' });
    const r = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
      const req = session.request({ ':method': 'POST', ':path': '/other.Service/Echo', 'content-type': 'application/grpc' });
      req.on('response', resolve);
      req.end(msg({}));
      req.resume();
    });
    expect(r['grpc-status']).toBe(String(Code.UNIMPLEMENTED));
    expect(decodeURIComponent(String(r['grpc-message']))).toMatch(/unknown method \/other.Service\/Echo/);
  });

  it('gives a non-gRPC request 415 (wrong content-type) or 405 (not POST) with a reason', async () => {
    const [status, body] = await new Promise<[number, string]>((resolve) => {
      const req = session.request({ ':method': 'POST', ':path': `/${SERVICE}/Echo`, 'content-type': 'application/json' });
      let s = 0;
      let b = '';
      req.on('response', (h) => (s = Number(h[':status'])));
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => resolve([s, b]));
      req.end('{}');
    });
    expect(status).toBe(415);
    expect(body).toMatch(/speaks gRPC only/);
    const get = await new Promise<number>((resolve) => {
      const req = session.request({ ':method': 'GET', ':path': `/${SERVICE}/Echo` });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.resume();
      req.end();
    });
    expect(get).toBe(405);
  });

  it('streams both ways on a bidi method and ends with the handler status', async () => {
    const r = await call(session, 'Chat', [msg({ say: 'a' }), msg({ say: 'b' })]);
    expect(r.messages).toEqual([{ heard: 'a' }, { heard: 'b' }]);
    expect(r.trailers['grpc-status']).toBe('0');
    const failed = await call(session, 'Chat', [msg({ say: 'a' }), msg({ fail: true }), msg({ say: 'ignored' })]);
    expect(failed.messages).toEqual([{ heard: 'a' }]);
    expect(statusOf(failed)).toEqual({ code: Code.FAILED_PRECONDITION, message: 'asked to fail' });
  });

  it('survives a client cancelling a call in flight', async () => {
    const before = slowDone;
    await new Promise<void>((resolve) => {
      const req = session.request({ ':method': 'POST', ':path': `/${SERVICE}/Slow`, 'content-type': 'application/grpc' });
      req.on('error', () => {});
      req.end(msg({ ms: 100 }));
      setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      }, 20);
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(slowCalls).toBeGreaterThan(0);
    expect(slowDone).toBe(before + 1);
    expect((await call(session, 'Echo', msg('still here'))).messages).toEqual([{ echo: 'still here' }]);
  });

  it('answers an HTTP/1.1 client with a 400 that says the port is HTTP/2', async () => {
    const reply = await new Promise<string>((resolve) => {
      const sock = net.connect(server.port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      let got = '';
      sock.on('data', (c) => (got += c.toString()));
      sock.on('close', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1.1 400 /);
    expect(reply).toMatch(/HTTP\/2/);
  });

  it('ends a connection that breaks the protocol with GOAWAY naming the error, and keeps serving others', async () => {
    const frames = await new Promise<Buffer>((resolve) => {
      const sock = net.connect(server.port, '127.0.0.1', () => {
        // The preface, an empty SETTINGS, then PUSH_PROMISE, which a client may never send.
        const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
        const push = Buffer.from([0, 0, 4, 5, 4, 0, 0, 0, 1, 0, 0, 0, 2]);
        sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings, push]));
      });
      const parts: Buffer[] = [];
      sock.on('data', (c: Buffer) => parts.push(c));
      sock.on('close', () => resolve(Buffer.concat(parts)));
    });
    // Walk the frames the server sent; the last is GOAWAY (type 7) with PROTOCOL_ERROR (1).
    let off = 0;
    let goaway: Buffer | undefined;
    while (off + 9 <= frames.length) {
      const len = frames.readUIntBE(off, 3);
      if (frames[off + 3] === 7) goaway = frames.subarray(off + 9, off + 9 + len);
      off += 9 + len;
    }
    expect(goaway).toBeDefined();
    expect(goaway!.readUInt32BE(4)).toBe(1);
    expect(goaway!.subarray(8).toString()).toMatch(/PUSH_PROMISE/);
    expect((await call(session, 'Echo', msg('after'))).messages).toEqual([{ echo: 'after' }]);
  });
});
