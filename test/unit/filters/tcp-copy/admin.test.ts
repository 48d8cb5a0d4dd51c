import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTcpCopyConfig, TcpCopy, tcpCopyAdminHandler } from '../../../../src/filters/tcp-copy/index.js';
import type { AdminHandler } from '../../../../src/admin/types.js';

describe('POST /tcpcopy', () => {
  let server: http.Server;
  let port: number;
  let tc: TcpCopy;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tcpcopy-admin-'));
    tc = new TcpCopy(parseTcpCopyConfig({ directory: dir }), { logger: pino({ level: 'silent' }), registry: new Registry() });
    const handler: AdminHandler = tcpCopyAdminHandler(tc);
    server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await tc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(method: string, q: string): Promise<{ status: number; body: string }> {
    const r = await fetch(`http://127.0.0.1:${port}/tcpcopy${q}`, { method });
    return { status: r.status, body: await r.text() };
  }

  it('GET prints the status', async () => {
    const r = await call('GET', '');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ enabled: false, sampleRate: 0.01, directory: dir, stopped: null });
  });

  it('switches copying on and off with a rate', async () => {
    let r = await call('POST', '?enabled=true&rate=0.1');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ enabled: true, sampleRate: 0.1 });
    r = await call('POST', '?rate=1');
    expect(JSON.parse(r.body)).toMatchObject({ enabled: true, sampleRate: 1 });
    r = await call('POST', '?enabled=false');
    expect(JSON.parse(r.body)).toMatchObject({ enabled: false, sampleRate: 1 });
    expect(tc.status().enabled).toBe(false);
  });

  it('answers 400 naming the bad parameter, and changes nothing', async () => {
    const cases: [string, RegExp][] = [
      ['?enabled=yes', /enabled: expected true or false, got "yes"/],
      ['?enabled=true&rate=2', /rate: expected a probability from 0 to 1, got "2"/],
      ['?enabled=true&rate=', /rate: expected a probability/],
      ['?enabled=true&rate=abc', /rate: .*"abc"/],
      ['?enabled=true&sample=0.1', /unknown parameter "sample"/],
      ['', /enabled: expected enabled=true\|false/],
    ];
    for (const [q, re] of cases) {
      const r = await call('POST', q);
      expect(r.status, q).toBe(400);
      expect(r.body).toMatch(re);
    }
    expect(tc.status()).toMatchObject({ enabled: false, sampleRate: 1 });
  });

  it('answers 405 to other methods', async () => {
    const r = await call('DELETE', '');
    expect(r.status).toBe(405);
  });
});
