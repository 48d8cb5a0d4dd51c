/** The app channel's lean HTTP/1.1 client against real sockets: framing, keep-alive, failures. */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AppHttpClient } from '../../../src/runtime/app-http-client.js';
import { freePort } from '../../helpers/runtime.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  remotePort: number;
}

/** A node:http app; `reply` writes the answer. */
async function httpApp(reply: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, remotePort: req.socket.remotePort! });
      reply(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.push(() => server.closeAllConnections());
  return { port: (server.address() as net.AddressInfo).port, seen };
}

/** A raw TCP app: `onRequest(socket, text)` per chunk of request bytes. */
async function rawApp(onData: (socket: net.Socket, text: string) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => onData(s, d.toString('latin1')));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

function client(port: number, maxSockets?: number) {
  const c = new AppHttpClient({ host: '127.0.0.1', port, maxSockets });
  cleanups.push(() => c.close());
  return c;
}

describe('AppHttpClient', () => {
  it('sends method, path, Host, headers and the body bytes unchanged; reads a Content-Length answer', async () => {
    const app = await httpApp((_req, res, body) => res.writeHead(201, { 'content-type': 'text/plain' }).end(`got ${body.length}`));
    const c = client(app.port);
    const body = Buffer.concat([Buffer.from('{"s":"héllo ☃"}'), Buffer.from([0, 255, 128, 13, 10])]);
    const r = await c.request('POST', '/orders?x=1', 'Content-Type: application/cloudevents+json\r\ntraceparent: 00-abc-def-01\r\n', body, 2000);
    expect(r).toEqual({ status: 201, body: `got ${body.length}` });
    const s = app.seen[0]!;
    expect(s).toMatchObject({ method: 'POST', url: '/orders?x=1' });
    expect(s.headers.host).toBe(`127.0.0.1:${app.port}`);
    expect(s.headers['content-type']).toBe('application/cloudevents+json');
    expect(s.headers.traceparent).toBe('00-abc-def-01');
    expect(s.headers['content-length']).toBe(String(body.length));
    expect(s.body.equals(body)).toBe(true);
  });

  it('sends a body larger than one inline write intact', async () => {
    const app = await httpApp((_req, res, body) => res.end(String(body.length)));
    const body = Buffer.alloc(300_000, 'z');
    body[299_999] = 0xe9;
    const r = await client(app.port).request('POST', '/big', '', body, 5000);
    expect(r.body).toBe('300000');
    expect(app.seen[0]!.body.equals(body)).toBe(true);
  });

  it('reads chunked answers and answers without a body (204), GET without a body', async () => {
    const app = await httpApp((req, res) => {
      if (req.url === '/chunked') {
        res.write('{"status":');
        setTimeout(() => res.end('"RETRY"}'), 5);
      } else res.writeHead(204).end();
    });
    const c = client(app.port);
    expect(await c.request('POST', '/chunked', '', Buffer.from('x'), 2000)).toEqual({ status: 200, body: '{"status":"RETRY"}' });
    expect(await c.request('GET', '/empty', '', undefined, 2000)).toEqual({ status: 204, body: '' });
    expect(app.seen[1]!.headers['content-length']).toBeUndefined();
  });

  it('keeps connections alive and reuses them', async () => {
    const app = await httpApp((_req, res) => res.end('ok'));
    const c = client(app.port);
    for (let i = 0; i < 5; i++) await c.request('POST', '/r', '', Buffer.from(String(i)), 2000);
    expect(new Set(app.seen.map((s) => s.remotePort)).size).toBe(1);
    expect(c.connections).toBe(1);
  });

  it('opens at most maxSockets connections; the rest wait their turn', async () => {
    const app = await httpApp((_req, res) => setTimeout(() => res.end('ok'), 10));
    const c = client(app.port, 2);
    const all = await Promise.all(Array.from({ length: 7 }, (_, i) => c.request('POST', '/r', '', Buffer.from(String(i)), 2000)));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(app.seen.map((s) => s.remotePort)).size).toBe(2);
  });

  it('an answer with Connection: close is read, and the next call gets a new connection', async () => {
    const app = await httpApp((_req, res) => res.writeHead(200, { connection: 'close' }).end('bye'));
    const c = client(app.port);
    expect((await c.request('POST', '/a', '', Buffer.from('1'), 2000)).body).toBe('bye');
    expect((await c.request('POST', '/a', '', Buffer.from('2'), 2000)).body).toBe('bye');
    expect(new Set(app.seen.map((s) => s.remotePort)).size).toBe(2);
  });

  it('a body delimited by the connection closing is read to the end', async () => {
    const app = await rawApp((s) => s.end('HTTP/1.1 200 OK\r\n\r\n{"status":"DROP"}'));
    expect(await client(app.port).request('POST', '/x', '', Buffer.from('1'), 2000)).toEqual({ status: 200, body: '{"status":"DROP"}' });
  });

  it('the app closing the connection before answering rejects with CAPA_ERR_UPSTREAM_RESET; the next call works', async () => {
    let n = 0;
    const app = await rawApp((s) => {
      if (n++ === 0) s.destroy();
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const c = client(app.port);
    await expect(c.request('POST', '/x', '', Buffer.from('1'), 2000)).rejects.toMatchObject({ code: 'CAPA_ERR_UPSTREAM_RESET' });
    expect(await c.request('POST', '/x', '', Buffer.from('2'), 2000)).toEqual({ status: 200, body: 'ok' });
  });

  it('an idle connection the app closed is not reused', async () => {
    const app = await rawApp((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      setTimeout(() => s.destroy(), 5);
    });
    const c = client(app.port);
    await c.request('POST', '/x', '', Buffer.from('1'), 2000);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.connections).toBe(0);
    expect((await c.request('POST', '/x', '', Buffer.from('2'), 2000)).status).toBe(200);
  });

  it('a malformed answer rejects with CAPA_ERR_UPSTREAM_PROTOCOL', async () => {
    const app = await rawApp((s) => s.write('HTTP/1.1 2x0 OK\r\n\r\n'));
    await expect(client(app.port).request('POST', '/x', '', Buffer.from('1'), 2000)).rejects.toMatchObject({ code: 'CAPA_ERR_UPSTREAM_PROTOCOL' });
  });

  it('no answer within the timeout rejects with CAPA_ERR_UPSTREAM_TIMEOUT and the connection is closed', async () => {
    let closed = 0;
    const app = await rawApp((s) => s.on('close', () => closed++));
    const c = client(app.port);
    const t0 = Date.now();
    await expect(c.request('POST', '/slow', '', Buffer.from('1'), 150)).rejects.toMatchObject({ code: 'CAPA_ERR_UPSTREAM_TIMEOUT', message: 'the app did not answer within 150 ms' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
    await new Promise((r) => setTimeout(r, 30));
    expect(closed).toBe(1);
    expect(c.connections).toBe(0);
  });

  it('connection refused rejects with CAPA_ERR_UPSTREAM_CONNECT naming ECONNREFUSED', async () => {
    const c = client(await freePort());
    await expect(c.request('POST', '/x', '', Buffer.from('1'), 2000)).rejects.toMatchObject({ code: 'CAPA_ERR_UPSTREAM_CONNECT', message: expect.stringMatching(/ECONNREFUSED/) });
    expect(c.connections).toBe(0);
  });

  it('refuses a path that would break the request line', async () => {
    const c = client(await freePort());
    await expect(c.request('POST', '/a b', '', undefined, 2000)).rejects.toMatchObject({ code: 'CAPA_ERR_BAD_REQUEST' });
    await expect(c.request('POST', 'x', '', undefined, 2000)).rejects.toMatchObject({ code: 'CAPA_ERR_BAD_REQUEST' });
  });

  it('close() rejects the calls in flight and later calls', async () => {
    const app = await rawApp(() => undefined);
    const c = client(app.port);
    const p = c.request('POST', '/x', '', Buffer.from('1'), 5000);
    await new Promise((r) => setTimeout(r, 30));
    c.close();
    await expect(p).rejects.toMatchObject({ code: 'CAPA_ERR_UPSTREAM_RESET' });
    await expect(c.request('POST', '/x', '', undefined, 100)).rejects.toThrow(/closed/);
  });
});
