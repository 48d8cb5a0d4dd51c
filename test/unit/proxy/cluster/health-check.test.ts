import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheckSpec } from '../../../../src/config/snapshot.js';
import { HealthChecker, Host, HostSet } from '../../../../src/proxy/cluster/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function waitFor(cond: () => boolean, timeoutMs = 1500): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Seen {
  path: string;
  host: string;
  ua: string;
}

async function httpServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ server: http.Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', host: req.headers.host ?? '', ua: req.headers['user-agent'] ?? '' });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(server));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function closeServer(server: net.Server): Promise<void> {
  if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

function hcSpec(extra: Partial<HealthCheckSpec> = {}): HealthCheckSpec {
  return {
    intervalMs: 50,
    timeoutMs: 200,
    unhealthyThreshold: 2,
    healthyThreshold: 2,
    http: { path: '/healthz', host: '', expectedStatuses: [] },
    ...extra,
  };
}

function checker(spec: HealthCheckSpec, set: HostSet, events: [string, boolean][]): HealthChecker {
  const logs: string[] = [];
  const hc = new HealthChecker(spec, set, {
    clusterName: 'backend',
    onChange: (h, healthy) => events.push([h.key, healthy]),
    logger: { info: (_o, msg) => logs.push(msg) },
  });
  cleanups.push(() => hc.stop());
  return hc;
}

describe('HealthChecker (HTTP)', () => {
  it('sends GET <path> with Host and user-agent, and keeps a passing host healthy', async () => {
    const { port, seen } = await httpServer((_q, s) => s.end('ok'));
    const host = new Host('127.0.0.1', port);
    const set = new HostSet([host]);
    const events: [string, boolean][] = [];
    const hc = checker(hcSpec(), set, events);
    hc.start();
    await waitFor(() => seen.length >= 3);
    expect(seen[0]).toEqual({ path: '/healthz', host: 'backend', ua: 'capa-runtime-health-checker' });
    expect(host.healthy).toBe(true);
    expect(events).toEqual([]);
    expect(hc.stats.success).toBeGreaterThanOrEqual(2);
  });

  it('uses spec.http.host as the Host header', async () => {
    const { port, seen } = await httpServer((_q, s) => s.end());
    const set = new HostSet([new Host('127.0.0.1', port)]);
    checker(hcSpec({ http: { path: '/x', host: 'svc.local', expectedStatuses: [] } }), set, []).start();
    await waitFor(() => seen.length >= 1);
    expect(seen[0]!.host).toBe('svc.local');
    expect(seen[0]!.path).toBe('/x');
  });

  it('takes a host out after unhealthyThreshold 500s and back after healthyThreshold passes', async () => {
    let status = 200;
    const { port, seen } = await httpServer((_q, s) => {
      s.statusCode = status;
      s.end();
    });
    const host = new Host('127.0.0.1', port);
    const set = new HostSet([host]);
    const events: [string, boolean][] = [];
    checker(hcSpec(), set, events).start();
    await waitFor(() => seen.length >= 1);
    status = 500;
    const failStart = seen.length;
    await waitFor(() => events.length === 1);
    expect(events[0]).toEqual([host.key, false]);
    expect(seen.length - failStart).toBeGreaterThanOrEqual(2);
    expect(host.healthy).toBe(false);
    expect(host.healthFlags()).toBe('/failed_active_hc');
    expect(set.healthy).toEqual([]);
    status = 200;
    const okStart = seen.length;
    await waitFor(() => events.length === 2);
    expect(events[1]).toEqual([host.key, true]);
    expect(seen.length - okStart).toBeGreaterThanOrEqual(2);
    expect(set.healthy).toEqual([host]);
  });

  it('counts a closed port as a failure and recovers when the server is back', async () => {
    const { server, port } = await httpServer((_q, s) => s.end());
    const host = new Host('127.0.0.1', port);
    const set = new HostSet([host]);
    const events: [string, boolean][] = [];
    const hc = checker(hcSpec(), set, events);
    hc.start();
    await waitFor(() => hc.stats.success >= 1);
    await closeServer(server);
    await waitFor(() => events.length === 1);
    expect(host.healthy).toBe(false);
    expect(hc.stats.networkFailure).toBeGreaterThanOrEqual(2);
    const again = http.createServer((_q, s) => s.end());
    await new Promise<void>((r) => again.listen(port, '127.0.0.1', r));
    cleanups.push(() => closeServer(again));
    await waitFor(() => events.length === 2);
    expect(host.healthy).toBe(true);
  });

  it('a timeout counts as a failure and is flagged', async () => {
    const { port } = await httpServer(() => {
      /* never answer */
    });
    const host = new Host('127.0.0.1', port);
    const set = new HostSet([host]);
    const events: [string, boolean][] = [];
    const hc = checker(hcSpec({ timeoutMs: 60 }), set, events);
    hc.start();
    await waitFor(() => events.length === 1);
    expect(host.healthFlags()).toBe('/failed_active_hc/active_hc_timeout');
    expect(hc.stats.timeout).toBeGreaterThanOrEqual(2);
  });

  it('honours expected status ranges [start, end)', async () => {
    const { port } = await httpServer((_q, s) => {
      s.statusCode = 204;
      s.end();
    });
    const ok = new Host('127.0.0.1', port);
    const setOk = new HostSet([ok]);
    const hcOk = checker(hcSpec({ http: { path: '/', host: '', expectedStatuses: [[200, 300]] } }), setOk, []);
    hcOk.start();
    const bad = new Host('127.0.0.1', port);
    const setBad = new HostSet([bad]);
    const badEvents: [string, boolean][] = [];
    checker(hcSpec({ http: { path: '/', host: '', expectedStatuses: [[200, 204]] } }), setBad, badEvents).start();
    await waitFor(() => badEvents.length === 1);
    expect(bad.healthy).toBe(false);
    expect(ok.healthy).toBe(true);
    expect(hcOk.stats.failure).toBe(0);
  });

  it('stop() cancels timers and checks in flight', async () => {
    const { port, seen } = await httpServer((_q, s) => s.end());
    const set = new HostSet([new Host('127.0.0.1', port)]);
    const hc = checker(hcSpec(), set, []);
    hc.start();
    await waitFor(() => seen.length >= 1);
    hc.stop();
    const n = seen.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.length).toBeLessThanOrEqual(n + 1);
    expect(hc.isRunning).toBe(false);
  });

  it('follows host set membership', async () => {
    const a = await httpServer((_q, s) => s.end());
    const b = await httpServer((_q, s) => s.end());
    const ha = new Host('127.0.0.1', a.port);
    const set = new HostSet([ha]);
    checker(hcSpec(), set, []).start();
    await waitFor(() => a.seen.length >= 1);
    set.update([new Host('127.0.0.1', b.port)]);
    await waitFor(() => b.seen.length >= 2);
    const n = a.seen.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(a.seen.length).toBeLessThanOrEqual(n + 1);
  });

  it('starts checking hosts added to a set that was empty at start()', async () => {
    const { port, seen } = await httpServer((_q, s) => s.end());
    const set = new HostSet([]);
    checker(hcSpec(), set, []).start();
    await new Promise((r) => setTimeout(r, 60));
    set.update([new Host('127.0.0.1', port)]);
    await waitFor(() => seen.length >= 1);
  });
});

describe('HealthChecker (TCP)', () => {
  it('connect succeeds → healthy; port closed → unhealthy; reopened → healthy', async () => {
    let accepted = 0;
    const server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const host = new Host('127.0.0.1', port);
    const set = new HostSet([host]);
    const events: [string, boolean][] = [];
    const hc = checker(hcSpec({ http: null }), set, events);
    hc.start();
    await waitFor(() => hc.stats.success >= 2);
    expect(accepted).toBeGreaterThanOrEqual(1);
    await new Promise<void>((r) => server.close(() => r()));
    await waitFor(() => events.length === 1);
    expect(events[0]).toEqual([host.key, false]);
    const again = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => again.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => again.close(() => r())));
    await waitFor(() => events.length === 2);
    expect(host.healthy).toBe(true);
  });
});
