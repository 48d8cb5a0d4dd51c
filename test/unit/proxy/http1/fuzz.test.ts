/**
 * Differential fuzzing: our request-head parser must be at least as strict as llhttp (what
 * node:http runs with insecureHTTPParser off). Every mutated head we accept as complete is sent to
 * a real node:http server on loopback and must reach its 'request' (or 'connect' / 'upgrade')
 * event rather than 'clientError'. The seed is fixed and printed; set CAPA_FUZZ_SEED to replay.
 */
import { once } from 'node:events';
import http, { METHODS } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkedDecoder, parseRequestHead } from '../../../../src/proxy/http1/index.js';

const SEED = Number(process.env.CAPA_FUZZ_SEED ?? 0xc0dec) >>> 0;
const HEAD_CASES = 3000;
const CHUNK_CASES = 3000;
const MAX_HEAD = 8192;
const LLHTTP_METHODS = new Set(METHODS);

/** mulberry32: small, fast, good enough to drive mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CORPUS = [
  'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n',
  'GET /a/b?c=d#e HTTP/1.1\r\nHost: h\r\nUser-Agent: fuzz\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n',
  'POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n',
  'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n',
  'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
  'GET http://example.com:8080/p?q HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
  'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
  '\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
  // smuggling-ish seeds
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 , 5\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nX-Junk: a\x00b\r\n\r\n',
];

const INSERTS = ['\r', '\n', ' ', '\t', '\0', ':', ',', '\x0b', '\x7f', '\xe9', '\r\n', ';', '"', '0', '-', '+'];
const LINES = ['Content-Length: 7', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Host: other', 'Connection: close', 'Content-Length: 0'];

function mutate(input: string, rnd: () => number): string {
  let s = input;
  const n = 1 + Math.floor(rnd() * 3);
  const at = () => Math.floor(rnd() * (s.length + 1));
  for (let k = 0; k < n; k++) {
    const op = Math.floor(rnd() * 9);
    if (op === 0) {
      const i = at();
      s = s.slice(0, i) + INSERTS[Math.floor(rnd() * INSERTS.length)] + s.slice(i);
    } else if (op === 1 && s.length > 0) {
      const i = Math.floor(rnd() * s.length);
      s = s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << Math.floor(rnd() * 8))) + s.slice(i + 1);
    } else if (op === 2 && s.length > 0) {
      const i = Math.floor(rnd() * s.length);
      s = s.slice(0, i) + s.slice(i + 1 + Math.floor(rnd() * 3));
    } else if (op === 3) {
      const lines = s.split('\r\n');
      const i = 1 + Math.floor(rnd() * Math.max(1, lines.length - 3));
      lines.splice(i, 0, lines[i] ?? '');
      s = lines.join('\r\n');
    } else if (op === 4) {
      const i = at();
      const j = Math.min(s.length, i + 1 + Math.floor(rnd() * 12));
      const part = s.slice(i, j);
      s = s.slice(0, i) + (rnd() < 0.5 ? part.toUpperCase() : part.toLowerCase()) + s.slice(j);
    } else if (op === 5) {
      const lines = s.split('\r\n');
      const i = 1 + Math.floor(rnd() * Math.max(1, lines.length - 3));
      lines.splice(i, 0, LINES[Math.floor(rnd() * LINES.length)]!);
      s = lines.join('\r\n');
    } else if (op === 6) {
      s = s.replace(rnd() < 0.5 ? '\r\n' : ' ', rnd() < 0.5 ? '\n' : '  ');
    } else if (op === 7) {
      s = s.replace(/HTTP\/1\.[01]/, ['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.10', 'HTTP/1.0'][Math.floor(rnd() * 6)]!);
    } else {
      const i = at();
      s = s.slice(0, i) + String.fromCharCode(Math.floor(rnd() * 256)) + s.slice(i);
    }
  }
  return s;
}

type Outcome = 'accepted' | `rejected:${string}` | 'timeout';

describe('differential fuzz against llhttp (node:http)', () => {
  let server: http.Server;
  let port = 0;
  const outcomes = new Map<number, Outcome>();

  beforeAll(async () => {
    server = http.createServer({ insecureHTTPParser: false }, (req, res) => {
      outcomes.set(req.socket.remotePort!, 'accepted');
      req.resume();
      res.writeHead(200, { connection: 'close' }).end();
      req.socket.destroy();
    });
    const tunnel = (req: http.IncomingMessage, socket: net.Socket | import('node:stream').Duplex) => {
      outcomes.set(req.socket.remotePort!, 'accepted');
      socket.destroy();
    };
    server.on('connect', tunnel);
    // node:http (not llhttp) answers an unknown Expect with 417 without a 'request' event.
    server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
      outcomes.set(req.socket.remotePort!, 'accepted');
      res.writeHead(417, { connection: 'close' }).end();
      req.socket.destroy();
    });
    server.on('upgrade', tunnel);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      const p = socket.remotePort;
      if (p !== undefined && !outcomes.has(p)) outcomes.set(p, `rejected:${err.code ?? err.message}`);
      socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function llhttp(bytes: Buffer): Promise<Outcome> {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    await once(sock, 'connect');
    const local = sock.localPort!;
    sock.resume();
    sock.end(bytes);
    const timer = setTimeout(() => sock.destroy(), 2000);
    await once(sock, 'close');
    clearTimeout(timer);
    // The server records before it destroys the socket; give a stray event one more turn.
    if (!outcomes.has(local)) await new Promise((r) => setImmediate(r));
    const o = outcomes.get(local) ?? 'timeout';
    outcomes.delete(local);
    return o;
  }

  it(`is at least as strict as llhttp on ${HEAD_CASES} mutated heads (seed ${SEED})`, async () => {
    console.log(`[fuzz] request-head seed=${SEED} (CAPA_FUZZ_SEED to replay)`);
    const rnd = prng(SEED);
    const toCheck: Array<{ input: string; consumed: number }> = [];
    const stats = { ok: 0, error: 0, incomplete: 0, extensionMethod: 0 };
    for (const seed of CORPUS) {
      const r = parseRequestHead(Buffer.from(seed, 'latin1'), 0, MAX_HEAD);
      if (r.kind === 'ok') toCheck.push({ input: seed, consumed: r.consumed });
    }
    for (let n = 0; n < HEAD_CASES; n++) {
      const input = mutate(CORPUS[Math.floor(rnd() * CORPUS.length)]!, rnd);
      const buf = Buffer.from(input, 'latin1');
      let r;
      try {
        r = parseRequestHead(buf, 0, MAX_HEAD);
      } catch (err) {
        throw new Error(`parser threw on seed=${SEED} case=${n} input=${JSON.stringify(input)}: ${String(err)}`, { cause: err });
      }
      stats[r.kind]++;
      if (r.kind !== 'ok') continue;
      expect(r.consumed, `consumed > available, seed=${SEED} input=${JSON.stringify(input)}`).toBeLessThanOrEqual(buf.length);
      expect(r.consumed).toBeGreaterThan(0);
      // llhttp only knows a fixed method list; extension methods are a policy difference, not framing.
      if (!LLHTTP_METHODS.has(r.head.method)) {
        stats.extensionMethod++;
        continue;
      }
      toCheck.push({ input, consumed: r.consumed });
    }
    const failures: string[] = [];
    const CONCURRENCY = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < toCheck.length) {
          const c = toCheck[next++]!;
          const o = await llhttp(Buffer.from(c.input, 'latin1').subarray(0, c.consumed));
          if (o !== 'accepted') failures.push(`${o}: ${JSON.stringify(c.input)}`);
        }
      }),
    );
    console.log(`[fuzz] parsed ${HEAD_CASES}: ${JSON.stringify(stats)}; sent ${toCheck.length} accepted heads to llhttp`);
    if (failures.length) console.log(`[fuzz] seed=${SEED} we accepted but llhttp rejected:\n  ${failures.slice(0, 20).join('\n  ')}`);
    expect(failures).toEqual([]);
    expect(toCheck.length).toBeGreaterThan(100);
  }, 20_000);
});

describe('ChunkedDecoder in-process fuzz', () => {
  function validStream(rnd: () => number): { wire: string; data: string } {
    let wire = '';
    let data = '';
    const chunks = Math.floor(rnd() * 5);
    for (let c = 0; c < chunks; c++) {
      const len = 1 + Math.floor(rnd() * 40);
      const payload = Array.from({ length: len }, () => String.fromCharCode(Math.floor(rnd() * 256))).join('');
      const hex = len.toString(16);
      wire += (rnd() < 0.3 ? hex.toUpperCase() : hex) + (rnd() < 0.2 ? ';x=1;y="a b"' : '') + '\r\n' + payload + '\r\n';
      data += payload;
    }
    wire += '0\r\n' + (rnd() < 0.3 ? 'X-T: v\r\n' : '') + '\r\n';
    return { wire, data };
  }

  it(`never throws or stalls on ${CHUNK_CASES} split and mutated streams (seed ${SEED})`, () => {
    const rnd = prng(SEED ^ 0x5eed);
    let decodedOk = 0;
    for (let n = 0; n < CHUNK_CASES; n++) {
      const { wire, data } = validStream(rnd);
      const mutated = rnd() < 0.5;
      const input = mutated ? mutate(wire, rnd) : wire;
      const buf = Buffer.from(input + 'PIPELINED', 'latin1');
      const out: Buffer[] = [];
      const d = new ChunkedDecoder((b) => out.push(b));
      let off = 0;
      try {
        while (off < buf.length && !d.done && !d.error) {
          const piece = 1 + Math.floor(rnd() * 16);
          const end = Math.min(buf.length, off + piece);
          const slice = buf.subarray(0, end);
          const used = d.push(slice, off);
          expect(used).toBeGreaterThanOrEqual(0);
          expect(off + used).toBeLessThanOrEqual(end);
          if (!d.done && !d.error) expect(used, 'a push that neither finishes nor fails must take everything').toBe(end - off);
          off += used;
        }
      } catch (err) {
        throw new Error(`seed=${SEED} case=${n} input=${JSON.stringify(input)}: ${String(err)}`, { cause: err });
      }
      // A mutated stream may legitimately still wait for input (e.g. an unterminated trailer line).
      if (!mutated) {
        expect(d.done, `stalled on ${JSON.stringify(input)}`).toBe(true);
        expect(d.error).toBe('');
        expect(Buffer.concat(out).toString('latin1')).toBe(data);
        expect(buf.subarray(off).toString('latin1')).toBe('PIPELINED');
        decodedOk++;
      }
    }
    expect(decodedOk).toBeGreaterThan(CHUNK_CASES / 4);
  });
});
