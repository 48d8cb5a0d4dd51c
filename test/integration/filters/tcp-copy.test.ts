/**
 * tcp-copy against real sockets on loopback, read back by the real tshark. A tiny net proxy in
 * the test pipes client ↔ server and feeds a TcpCopy tap, as the sidecar's TCP and HTTP paths do.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTcpCopyConfig, TcpCopy } from '../../../src/filters/tcp-copy/index.js';

const run = promisify(execFile);
const TSHARK = '/usr/bin/tshark';

async function tshark(file: string, filter: string, fields: string[], extra: string[] = []): Promise<string[][]> {
  const args = ['-r', file, ...extra, '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
  const { stdout } = await run(TSHARK, args, { timeout: 10_000 });
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'));
}

interface TestProxy {
  port: number;
  /** Resolves when the n-th proxied connection has closed on both sides. */
  closed(n: number): Promise<void>;
  close(): Promise<void>;
}

/** Stands in for the sidecar: pipes each connection to `target` and copies it through `tc`. */
function startProxy(tc: TcpCopy, target: { address: string; port: number }, host = '127.0.0.1'): Promise<TestProxy> {
  const done: Promise<void>[] = [];
  const resolvers: (() => void)[] = [];
  const server = net.createServer((down) => {
    const up = net.connect({ host: target.address, port: target.port });
    const family = net.isIPv6(target.address) ? 6 : 4;
    const tap = tc.attach({ srcAddress: down.remoteAddress!, srcPort: down.remotePort!, dstAddress: target.address, dstPort: target.port, family });
    let open = 2;
    const finished = new Promise<void>((resolve) => resolvers.push(resolve));
    done.push(finished);
    const resolve = resolvers.at(-1)!;
    const onClosed = (): void => {
      if (--open > 0) return;
      tap?.onClose();
      resolve();
    };
    if (tap) {
      down.on('data', tap.onDownstreamData);
      up.on('data', tap.onUpstreamData);
    }
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', onClosed);
    up.on('close', onClosed);
  });
  return new Promise((resolve) =>
    server.listen(0, host, () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        closed: async (n) => {
          while (done.length < n) await new Promise((r) => setTimeout(r, 5));
          await done[n - 1];
        },
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

/** One raw HTTP/1.1 exchange; returns the response text and the client's own address and port. */
function exchange(port: number, head: string, body?: Buffer, host = '127.0.0.1'): Promise<{ response: string; localAddress: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress: host === '127.0.0.1' ? '127.0.0.7' : undefined });
    const chunks: Buffer[] = [];
    let localAddress = '';
    let localPort = 0;
    s.on('connect', () => {
      localAddress = s.localAddress!;
      localPort = s.localPort!;
      s.write(head);
      if (body) s.write(body);
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve({ response: Buffer.concat(chunks).toString(), localAddress, localPort }));
  });
}

describe('tcp-copy: a real exchange read back by tshark', () => {
  let app: http.Server;
  let appPort: number;
  const dirs: string[] = [];

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.url === '/hello?x=1' ? 'hello, world\n' : `got ${n} bytes\n`);
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    appPort = (app.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => app.close(r));
    // KEEP_PCAP=1 keeps the files for a look in Wireshark.
    if (!process.env.KEEP_PCAP) for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function copier(extra: Record<string, unknown>): { tc: TcpCopy; dir: string } {
    const dir = mkdtempSync(path.join(tmpdir(), 'tcpcopy-it-'));
    dirs.push(dir);
    const cfg = parseTcpCopyConfig({ enabled: true, sampleRate: 1, directory: dir, ...extra });
    return { tc: new TcpCopy(cfg, { logger: pino({ level: 'silent' }), registry: new Registry() }), dir };
  }

  it('writes a pcap whose HTTP request and response tshark decodes, with the real 4-tuple', async () => {
    const { tc, dir } = copier({});
    const proxy = await startProxy(tc, { address: '127.0.0.1', port: appPort });
    const r = await exchange(proxy.port, 'GET /hello?x=1 HTTP/1.1\r\nHost: orders.test\r\nConnection: close\r\n\r\n');
    expect(r.response).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(r.response).toContain('hello, world');
    await proxy.closed(1);
    await proxy.close();
    await tc.close();
    const [file, ...more] = readdirSync(dir);
    expect(more).toEqual([]);
    expect(file).toMatch(/^tcpcopy-\d{8}T\d{6}\.\d{3}Z-1\.pcap$/);
    const pcap = path.join(dir, file!);

    // tshark takes a second or more to start on a busy machine: two runs, side by side.
    const checks = ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE'];
    const frameFields = ['tcp.flags.str', 'ip.checksum.status', 'tcp.checksum.status', '_ws.expert.severity', 'http.response.code', 'ip.src', 'tcp.srcport', 'ip.dst', 'tcp.dstport'];
    const [requests, frames] = await Promise.all([
      tshark(pcap, 'http.request', ['http.request.method', 'http.request.uri', 'ip.src', 'tcp.srcport', 'ip.dst', 'tcp.dstport', 'http.host']),
      tshark(pcap, 'tcp', frameFields, checks),
    ]);
    expect(r.localAddress).toBe('127.0.0.7');
    expect(requests).toEqual([['GET', '/hello?x=1', r.localAddress, String(r.localPort), '127.0.0.1', String(appPort), 'orders.test']]);
    // The response is decoded as HTTP too, in the other direction.
    const responses = frames.filter((f) => f[4] !== '').map((f) => f.slice(4));
    expect(responses).toEqual([['200', '127.0.0.1', String(appPort), r.localAddress, String(r.localPort)]]);
    // Handshake, request, response, FIN exchange; checksums verify when tshark checks them, and
    // nothing is flagged above "note" (chat 0x200000, note 0x400000; warning is 0x600000).
    expect(frames.map((f) => f[0]!.replace(/\W/g, ''))).toEqual(['S', 'AS', 'A', 'AP', 'AP', 'AF', 'AF', 'A']);
    expect(frames.map((f) => `${f[1]}/${f[2]}`)).toEqual(Array(8).fill('1/1'));
    const severities = frames.flatMap((f) => f[3]!.split(',').filter((x) => x !== '').map(Number));
    expect(severities.length).toBeGreaterThan(0);
    expect(Math.max(...severities)).toBeLessThan(0x600000);
    expect(tc.status()).toMatchObject({ connections: { sampled: 1, skipped: 0, budgetExhausted: 0 }, activeConnections: 0, files: 1, droppedPackets: 0 });
  });

  it('copies at most maxBytesPerConnection of a 2 MB upload', async () => {
    const { tc, dir } = copier({ maxBytesPerConnection: '64KiB' });
    const proxy = await startProxy(tc, { address: '127.0.0.1', port: appPort });
    const body = Buffer.alloc(2 * 1024 * 1024, 'z');
    const r = await exchange(proxy.port, `POST /upload HTTP/1.1\r\nHost: orders.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
    expect(r.response).toContain(`got ${body.length} bytes`);
    await proxy.closed(1);
    await proxy.close();
    await tc.close();
    const [file] = readdirSync(dir);
    const pcap = path.join(dir, file!);
    const size = statSync(pcap).size;
    expect(size).toBeGreaterThan(64 * 1024);
    expect(size).toBeLessThanOrEqual(64 * 1024 + 6 * 1024); // frames and record headers of ~47 segments
    const segments = await tshark(pcap, 'tcp.len > 0', ['tcp.srcport', 'tcp.len']);
    expect(segments.reduce((n, [, l]) => n + Number(l), 0)).toBe(64 * 1024);
    expect(segments.filter(([p]) => p === String(r.localPort)).length).toBeGreaterThan(40);
    expect(tc.status()).toMatchObject({ truncatedConnections: 1, bytesCopied: 64 * 1024 });
  });

  it('writes IPv6 connections that tshark decodes', async () => {
    const app6 = http.createServer((_req, res) => res.end('v6\n'));
    await new Promise<void>((r) => app6.listen(0, '::1', () => r()));
    const port6 = (app6.address() as net.AddressInfo).port;
    const { tc, dir } = copier({});
    const proxy = await startProxy(tc, { address: '::1', port: port6 }, '::1');
    const r = await exchange(proxy.port, 'GET /six HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n', undefined, '::1');
    expect(r.response).toMatch(/^HTTP\/1\.1 200 OK/);
    await proxy.closed(1);
    await proxy.close();
    await tc.close();
    await new Promise((res) => app6.close(res));
    const pcap = path.join(dir, readdirSync(dir)[0]!);
    const rows = await tshark(pcap, 'http', ['http.request.uri', 'http.response.code', 'ipv6.src', 'tcp.srcport', 'ipv6.dst', 'tcp.dstport']);
    expect(rows).toEqual([
      ['/six', '', '::1', String(r.localPort), '::1', String(port6)],
      ['', '200', '::1', String(port6), '::1', String(r.localPort)],
    ]);
  });
});
