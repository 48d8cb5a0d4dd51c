/**
 * Streaming through a real sidecar child process (`node dist/main.js`): 1 GiB up and down with
 * both body framings, the byte count exact and the proxy's RSS bounded (it must stream, not
 * buffer); a slow reader exerts backpressure all the way to the upstream; WebSocket upgrades
 * become raw byte pipes whose upstream connection never goes back to the pool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, waitFor, freePort } from '../../helpers/http.js';
import { GiB, MiB, countBytes, cpuSeconds, rssBytes, sampleRss, settledRss, startSidecarChild, writeGenerated, type SidecarChild } from '../../helpers/stream.js';

const RSS_GROWTH_LIMIT = 50 * MiB;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function wsAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

interface BulkUpstream {
  server: http.Server;
  port: number;
  /** Bytes the upstream handed to its socket for the current download. */
  sent: number;
  /** Sockets that carried a plain (non-upgrade) request. */
  requestSockets: Set<net.Socket>;
  /** Sockets handed over by an upgrade (101). */
  upgradedSockets: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * POST /upload counts the body and answers {bytes, framing}; GET /download?n=N&framing=length|chunked
 * generates N bytes. Also serves WebSocket-style upgrades: 101 with the computed accept, then echo.
 */
async function startBulkUpstream(): Promise<BulkUpstream> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer();
  const u: BulkUpstream = {
    server,
    port: 0,
    sent: 0,
    requestSockets: new Set(),
    upgradedSockets: new Set(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    u.requestSockets.add(req.socket);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/upload') {
      const framing = req.headers['transfer-encoding'] === 'chunked' ? 'chunked' : req.headers['content-length'] !== undefined ? 'length' : 'none';
      countBytes(req).then(
        (bytes) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ bytes, framing }));
        },
        () => res.destroy(),
      );
      return;
    }
    if (url.pathname === '/download') {
      const n = Number(url.searchParams.get('n'));
      u.sent = 0;
      if (url.searchParams.get('framing') === 'length') res.setHeader('content-length', String(n));
      res.setHeader('content-type', 'application/octet-stream');
      writeGenerated(res, n, { onProgress: (sent) => (u.sent = sent) }).catch(() => res.destroy());
      return;
    }
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.end(`plain ${req.url}`);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    u.upgradedSockets.add(socket);
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${wsAccept(key)}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.on('data', (d: Buffer) => socket.write(d));
    // node:http servers allow half-open sockets: close ours when the proxy closes its side.
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}

/** Start a request through the proxy and resolve with the response (body not read yet). */
function open(port: number, opts: http.RequestOptions, body?: (req: http.ClientRequest) => Promise<unknown>): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, resolve);
    req.on('error', reject);
    if (body) body(req).catch(reject);
    else req.end();
  });
}

function mbps(bytes: number, ms: number): string {
  return `${((bytes / MiB) / (ms / 1000)).toFixed(0)} MiB/s`;
}

describe('streaming through a sidecar child process', () => {
  let up: BulkUpstream;
  let sc: SidecarChild;
  let streamPort: number;

  beforeAll(async () => {
    up = await startBulkUpstream();
    streamPort = await freePort();
    sc = await startSidecarChild(`
listeners:
  - name: stream
    address: 127.0.0.1
    port: ${streamPort}
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: bulk, timeout: 60s }
clusters:
  - name: bulk
    connectTimeout: 1s
    endpoints: ["127.0.0.1:${up.port}"]
`);
    // Warm up the data path (code, pools, V8's young generation grown to its working size) so
    // the RSS baseline is the proxy's steady state, and what the bound catches is buffering.
    expect((await request(streamPort, { path: '/warm' })).status).toBe(200);
    const warmUp = await open(streamPort, { method: 'POST', path: '/upload' }, (req) => writeGenerated(req, 256 * MiB));
    warmUp.resume();
    const warmDown = await open(streamPort, { method: 'GET', path: `/download?n=${64 * MiB}&framing=length` });
    expect(await countBytes(warmDown)).toBe(64 * MiB);
  }, 30_000);

  afterAll(async () => {
    await sc?.stop();
    await up?.close();
  });

  /** Run `transfer` while sampling the child's RSS; returns its growth over the settled baseline. */
  async function measured<T>(transfer: () => Promise<T>): Promise<{ result: T; growth: number; ms: number; baseline: number; samples: number; cpu: string }> {
    const baseline = await settledRss(sc.pid);
    const sampler = sampleRss(sc.pid, 100);
    const cpu0 = cpuSeconds(sc.pid);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    let result: T;
    try {
      result = await transfer();
    } catch (e) {
      sampler.stop();
      throw e;
    }
    const { max, samples } = sampler.stop();
    const ms = performance.now() - t0;
    const self = process.cpuUsage(self0);
    const cpu = `proxy CPU ${(((cpuSeconds(sc.pid) - cpu0) * 1000 * 100) / ms).toFixed(0)}%, client+upstream CPU ${(((self.user + self.system) / 1000 / ms) * 100).toFixed(0)}%`;
    return { result, growth: max - baseline, ms, baseline, samples, cpu };
  }

  it('uploads 1 GiB with chunked framing: exact byte count, bounded proxy RSS', async () => {
    const { result, growth, ms, baseline, samples, cpu } = await measured(async () => {
      const res = await open(streamPort, { method: 'POST', path: '/upload' }, (req) => writeGenerated(req, GiB));
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      return { status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number; framing: string } };
    });
    console.info(`1 GiB chunked upload: ${ms.toFixed(0)} ms (${mbps(GiB, ms)}), proxy RSS ${(baseline / MiB).toFixed(0)} MiB + ${(growth / MiB).toFixed(1)} MiB (${samples} samples), ${cpu}`);
    expect(result.status).toBe(200);
    expect(result.body.framing).toBe('chunked');
    expect(result.body.bytes).toBe(GiB);
    expect(samples).toBeGreaterThan(2);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);

  it('downloads 1 GiB with content-length framing: exact byte count, bounded proxy RSS', async () => {
    const { result, growth, ms, baseline, samples, cpu } = await measured(async () => {
      const res = await open(streamPort, { method: 'GET', path: `/download?n=${GiB}&framing=length` });
      const bytes = await countBytes(res);
      return { status: res.statusCode, contentLength: res.headers['content-length'], te: res.headers['transfer-encoding'], bytes };
    });
    console.info(`1 GiB content-length download: ${ms.toFixed(0)} ms (${mbps(GiB, ms)}), proxy RSS ${(baseline / MiB).toFixed(0)} MiB + ${(growth / MiB).toFixed(1)} MiB (${samples} samples), ${cpu}`);
    expect(result.status).toBe(200);
    expect(result.contentLength).toBe(String(GiB));
    expect(result.te).toBeUndefined();
    expect(result.bytes).toBe(GiB);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);

  it('uploads with content-length and downloads chunked (256 MiB each): exact byte counts', async () => {
    const n = 256 * MiB;
    const { result, growth } = await measured(async () => {
      const upRes = await open(streamPort, { method: 'POST', path: '/upload', headers: { 'content-length': String(n) } }, (req) => writeGenerated(req, n));
      const chunks: Buffer[] = [];
      for await (const c of upRes) chunks.push(c as Buffer);
      const upload = JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number; framing: string };
      const downRes = await open(streamPort, { method: 'GET', path: `/download?n=${n}&framing=chunked` });
      const te = downRes.headers['transfer-encoding'];
      const downloaded = await countBytes(downRes);
      return { upload, te, downloaded };
    });
    expect(result.upload).toEqual({ bytes: n, framing: 'length' });
    expect(result.te).toBe('chunked');
    expect(result.downloaded).toBe(n);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);

  it('a slow reader holds the upstream back instead of making the proxy buffer (backpressure)', async () => {
    const n = 512 * MiB;
    const { result, growth } = await measured(async () => {
      const res = await open(streamPort, { method: 'GET', path: `/download?n=${n}&framing=chunked` });
      let received = 0;
      let pausedAt = -1;
      let inFlightAfterPause = -1;
      const done = new Promise<number>((resolve, reject) => {
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (pausedAt < 0 && received >= 16 * MiB) {
            pausedAt = received;
            res.pause();
            setTimeout(() => {
              // After a second of not reading, what the upstream got rid of beyond what we read
              // sits in socket buffers and the proxy: it must be bounded, not the whole body.
              inFlightAfterPause = up.sent - received;
              res.resume();
            }, 1000);
          }
        });
        res.on('end', () => resolve(received));
        res.on('error', reject);
      });
      const total = await done;
      return { total, pausedAt, inFlightAfterPause, rssDuringPause: rssBytes(sc.pid) };
    });
    console.info(`slow reader: ${(result.inFlightAfterPause / MiB).toFixed(1)} MiB in flight after a 1s pause, proxy RSS +${(growth / MiB).toFixed(1)} MiB`);
    expect(result.pausedAt).toBeGreaterThan(0);
    expect(result.total).toBe(n);
    expect(result.inFlightAfterPause).toBeGreaterThanOrEqual(0);
    // Kernel socket buffers (two connections, each with a send and an autotuned receive buffer)
    // legitimately hold bytes too; beyond those, at most what the RSS bound allows.
    const maxOf = (f: string) => Number(readFileSync(f, 'utf8').trim().split(/\s+/).at(-1));
    const kernel = 2 * (maxOf('/proc/sys/net/ipv4/tcp_rmem') + maxOf('/proc/sys/net/ipv4/tcp_wmem'));
    expect(result.inFlightAfterPause).toBeLessThan(kernel + RSS_GROWTH_LIMIT);
    expect(result.inFlightAfterPause).toBeLessThan(n / 2);
    expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
  }, 60_000);

  it('a response that ends while the client reads slowly leaves a usable pooled upstream connection', async () => {
    for (let round = 0; round < 3; round++) {
      // The client reads a chunk every 2ms, slower than the upstream writes: once the kernel
      // buffers are full the proxy's downstream socket stays backed up, so the proxy pauses the
      // upstream connection on every chunk, up to and including the last one.
      const res = await open(streamPort, { method: 'GET', path: `/download?n=${24 * MiB}&framing=length` });
      const total = await new Promise<number>((resolve, reject) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          res.pause();
          setTimeout(() => res.resume(), 2);
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      expect(total).toBe(24 * MiB);
      // The next request reuses that upstream connection from the pool: it must be read again.
      const next = await request(streamPort, { path: `/next-${round}`, timeoutMs: 3000 });
      expect(next.status).toBe(200);
      expect(next.body).toBe(`plain /next-${round}`);
    }
  }, 30_000);

  it('the sidecar is still healthy after the transfers', async () => {
    const r = await request(streamPort, { path: '/after' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('plain /after');
  });
});

describe('WebSocket upgrade through a sidecar child process', () => {
  let up: BulkUpstream;
  let sc: SidecarChild;
  let port: number;

  beforeAll(async () => {
    up = await startBulkUpstream();
    port = await freePort();
    sc = await startSidecarChild(`
listeners:
  - name: ws
    address: 127.0.0.1
    port: ${port}
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: ws }
clusters:
  - name: ws
    connectTimeout: 1s
    endpoints: ["127.0.0.1:${up.port}"]
`);
  }, 30_000);

  afterAll(async () => {
    await sc?.stop();
    await up?.close();
  });

  function handshake(key: string): Promise<{ res: http.IncomingMessage; socket: net.Socket; head: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path: '/chat',
        agent: false,
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
      });
      req.on('upgrade', (res, socket, head) => resolve({ res, socket, head }));
      req.on('response', (res) => reject(new Error(`expected 101, got ${res.statusCode} ${JSON.stringify(res.headers)}`)));
      req.on('error', reject);
      req.end();
    });
  }

  function readExactly(socket: net.Socket, n: number, initial: Buffer = Buffer.alloc(0)): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let got = initial;
      const t = setTimeout(() => {
        socket.off('data', onData);
        reject(new Error(`got ${got.length} of ${n} echoed bytes`));
      }, 5000);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        if (got.length >= n) {
          clearTimeout(t);
          socket.off('data', onData);
          resolve(got);
        }
      };
      if (got.length >= n) {
        clearTimeout(t);
        resolve(got);
        return;
      }
      socket.on('data', onData);
    });
  }

  it('switches protocols with the upstream accept key, echoes raw bytes, and never pools the upgraded connection', async () => {
    const key = Buffer.from('capa-runtime-ws!').toString('base64');
    const { res, socket, head } = await handshake(key);
    expect(res.statusCode).toBe(101);
    expect(res.headers['sec-websocket-accept']).toBe(wsAccept(key));
    expect(res.headers.upgrade?.toLowerCase()).toBe('websocket');
    expect(res.headers.connection?.toLowerCase()).toBe('upgrade');

    // Binary payload including bytes that look like HTTP: they must pass untouched.
    const payload = Buffer.concat([Buffer.from([0x81, 0x85, 0, 1, 2, 3]), Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.alloc(100_000, 0xab)]);
    socket.write(payload);
    const echoed = await readExactly(socket, payload.length, head);
    expect(echoed.equals(payload)).toBe(true);

    // A plain request now must get a fresh upstream connection, not the upgraded one.
    const upgradedUpstreamSockets = [...up.upgradedSockets];
    expect(upgradedUpstreamSockets).toHaveLength(1);
    expect(upgradedUpstreamSockets[0]!.destroyed).toBe(false);
    const r = await request(port, { path: '/plain' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('plain /plain');
    const plainSockets = [...up.requestSockets];
    expect(plainSockets.length).toBeGreaterThan(0);
    for (const s of plainSockets) expect(upgradedUpstreamSockets).not.toContain(s);

    // ...and the tunnel still works, with nothing of that request leaked into it.
    const more = Buffer.from('second message');
    socket.write(more);
    const echoed2 = await readExactly(socket, more.length);
    expect(echoed2.toString()).toBe('second message');

    socket.destroy();
  });

  it('bytes the client sends right behind the upgrade request go into the tunnel, not to the HTTP parser', async () => {
    const key = Buffer.from('early-bytes-key!').toString('base64');
    const early = Buffer.from([0x82, 0x84, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]);
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(
      Buffer.concat([
        Buffer.from(`GET /chat HTTP/1.1\r\nHost: ws.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
        early,
      ]),
    );
    const got = await new Promise<Buffer>((resolve, reject) => {
      let b = Buffer.alloc(0);
      const t = setTimeout(() => reject(new Error(`incomplete: ${JSON.stringify(b.toString('latin1'))}`)), 5000);
      s.on('data', (d: Buffer) => {
        b = Buffer.concat([b, d]);
        const e = b.indexOf('\r\n\r\n');
        if (e >= 0 && b.length >= e + 4 + early.length) {
          clearTimeout(t);
          resolve(b);
        }
      });
    });
    const headEnd = got.indexOf('\r\n\r\n') + 4;
    const head = got.subarray(0, headEnd).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head.toLowerCase()).toContain('upgrade: websocket\r\n');
    expect(head).toContain(`sec-websocket-accept: ${wsAccept(key)}\r\n`);
    expect(got.subarray(headEnd).equals(early)).toBe(true);
    s.destroy();
  });

  it('several concurrent tunnels stay separate and the proxy answers plain requests meanwhile', async () => {
    const tunnels = await Promise.all([1, 2, 3].map((i) => handshake(Buffer.from(`key-number-${i}-xx`).toString('base64'))));
    const msgs = tunnels.map((_t, i) => Buffer.from(`tunnel ${i} `.repeat(1000)));
    tunnels.forEach((t, i) => t.socket.write(msgs[i]!));
    const echoed = await Promise.all(tunnels.map((t, i) => readExactly(t.socket, msgs[i]!.length, t.head)));
    echoed.forEach((e, i) => expect(e.equals(msgs[i]!)).toBe(true));
    expect((await request(port, { path: '/x' })).status).toBe(200);
    for (const t of tunnels) t.socket.destroy();
    // Closing the client side closes the upstream side of each tunnel.
    await waitFor(() => [...up.upgradedSockets].every((s) => s.destroyed), 3000);
  });
});
