/**
 * The filter contract on a real DataPlane (DESIGN.md "The filter contract"): a throwing filter
 * fails only its request (500), async and stop/continue filters resume the chain, a local reply
 * skips the upstream, per-route overrides (validated by the factory's parsePerRoute) turn a
 * filter off on one route, response-header filters can rewrite status and headers, and the
 * order is the config's. Then the JSON access log: one line per request with Envoy's fields.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { DataPlane } from '../../../src/proxy/data-plane.js';
import { FilterRegistry } from '../../../src/filters/registry.js';
import { BUILTIN_FILTERS } from '../../../src/filters/index.js';
import type { HttpFilter, HttpFilterFactory, HttpStream } from '../../../src/filters/types.js';
import { loadConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { createMetricsRegistry } from '../../../src/observability/metrics.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, raw, request, sleep, statusOf, waitFor } from '../../helpers/http.js';

// === Test filter factories ===

const noConfig = z.strictObject({});

/** A factory whose filter is `make(config, perRoute)`; per-route config is validated by `perRoute`. */
function testFactory<C, R>(
  name: string,
  make: (config: C, perRoute: R | undefined) => HttpFilter,
  schemas: { config?: z.ZodType<C>; perRoute?: z.ZodType<R> } = {},
): HttpFilterFactory<C, R> {
  return {
    name,
    typeUrl: `type.googleapis.com/test.${name}`,
    parseConfig: (raw) => (schemas.config ?? (noConfig as unknown as z.ZodType<C>)).parse(raw ?? {}),
    ...(schemas.perRoute ? { parsePerRoute: (raw: unknown) => schemas.perRoute!.parse(raw) } : {}),
    build: (config) => ({
      forRoute: (perRoute) => {
        if ((perRoute as { disabled?: boolean } | undefined)?.disabled) return null;
        return () => make(config, perRoute);
      },
    }),
  };
}

/** Counts of hook calls, by filter name. */
const calls: Record<string, number> = {};
function count(name: string): void {
  calls[name] = (calls[name] ?? 0) + 1;
}

const throwing = testFactory('test.throw', () => ({
  onRequestHeaders(s: HttpStream) {
    if (s.requestHeaders.has('x-throw')) throw new Error('boom from a test filter');
    if (s.requestHeaders.has('x-throw-async')) return Promise.reject(new Error('async boom'));
  },
  onRequestData(s: HttpStream, chunk: Buffer) {
    if (s.requestHeaders.has('x-throw-on-body') && chunk.length > 0) throw new Error('boom on body');
  },
  onResponseHeaders(s: HttpStream) {
    if (s.requestHeaders.has('x-throw-on-response')) throw new Error('boom on response headers');
  },
  onComplete(s: HttpStream) {
    if (s.requestHeaders.has('x-throw-on-complete')) throw new Error('boom on complete');
  },
}));

const asyncFilter = testFactory('test.async', () => ({
  onRequestHeaders(s: HttpStream) {
    if (!s.requestHeaders.has('x-async')) return 'continue';
    const t0 = performance.now();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        s.requestHeaders.set('x-async-waited', String(Math.round(performance.now() - t0)));
        count('test.async');
        resolve();
      }, 50),
    );
  },
}));

const rateLimit = testFactory('test.ratelimit', () => ({
  onRequestHeaders(s: HttpStream) {
    if (!s.requestHeaders.has('x-limit')) return 'continue';
    s.sendLocalReply(429, 'slow down', { flag: 'RL', headers: { 'retry-after': '1' } });
    return 'stop';
  },
}));

const stopFilter = testFactory('test.stop', () => ({
  onRequestHeaders(s: HttpStream) {
    if (!s.requestHeaders.has('x-stop')) return 'continue';
    setTimeout(() => {
      s.requestHeaders.set('x-resumed', 'yes');
      s.continueRequest();
    }, 80);
    return 'stop';
  },
}));

const tagPerRoute = z.strictObject({ value: z.string().min(1).optional(), disabled: z.boolean().optional() });
const tag = testFactory<{ value: string }, z.output<typeof tagPerRoute>>(
  'test.tag',
  (config, perRoute) => ({
    onRequestHeaders(s: HttpStream) {
      s.requestHeaders.set('x-tag', perRoute?.value ?? config.value);
    },
  }),
  { config: z.strictObject({ value: z.string() }), perRoute: tagPerRoute },
);

function appender(name: string): HttpFilterFactory<{ value: string }, never> {
  return testFactory<{ value: string }, never>(
    name,
    (config) => ({
      onRequestHeaders(s: HttpStream) {
        s.requestHeaders.add('x-order', config.value);
      },
      onResponseHeaders(_s, head) {
        head.headers.add('x-order-response', config.value);
      },
    }),
    { config: z.strictObject({ value: z.string() }) },
  );
}

const responseRewrite = testFactory('test.response', () => ({
  onResponseHeaders(s: HttpStream, head) {
    if (!s.requestHeaders.has('x-rewrite')) return;
    head.status = 203;
    head.headers.set('x-upstream', 'rewritten-by-filter');
    head.headers.remove('content-type');
    head.headers.add('content-type', 'application/x-rewritten');
  },
}));

const TEST_FILTERS = [throwing, asyncFilter, rateLimit, stopFilter, tag, appender('test.append-a'), appender('test.append-b'), responseRewrite];

function registry(): FilterRegistry {
  return new FilterRegistry().registerAll(BUILTIN_FILTERS).registerAll(TEST_FILTERS);
}

async function startDataPlane(yaml: string): Promise<{ dp: DataPlane; port(name: string): number }> {
  const filters = registry();
  const { snapshot } = loadConfigText(yaml, 'filters-test.yaml', { filters, env: {} });
  const dp = new DataPlane(filters, createMetricsRegistry(), pino({ level: 'silent' }));
  await dp.apply(snapshot);
  return {
    dp,
    port(name: string) {
      const p = dp.listeners.portOf(name);
      if (p === undefined) throw new Error(`no listener ${name}`);
      return p;
    },
  };
}

/** GET through one keep-alive socket; `reused` tells whether the socket carried an earlier request. */
function get(port: number, path: string, headers: Record<string, string>, agent: http.Agent): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

const CHAIN = `
    httpFilters:
      - name: test.throw
      - name: test.async
      - name: test.ratelimit
      - name: test.stop
      - name: test.tag
        config: { value: listener }
      - name: test.append-a
        config: { value: first }
      - name: test.append-b
        config: { value: second }
      - name: test.response
      - name: envoy.filters.http.router
`;

describe('the filter contract on a DataPlane', () => {
  let up: Upstream;
  let plane: Awaited<ReturnType<typeof startDataPlane>>;
  let port: number;

  beforeAll(async () => {
    up = await startUpstream('f');
    plane = await startDataPlane(`
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
${CHAIN}
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: /untagged }
              route: { cluster: backend }
              typedPerFilterConfig:
                test.tag: { disabled: true }
            - match: { prefix: /retagged }
              route: { cluster: backend }
              typedPerFilterConfig:
                test.tag: { value: route }
            - match: { prefix: / }
              route: { cluster: backend }
clusters:
  - name: backend
    endpoints: ["127.0.0.1:${up.port}"]
`);
    port = plane.port('main');
  });

  afterAll(async () => {
    plane.dp.close();
    await up.close();
  });

  const seenHeaders = (r: { body: string }) => JSON.parse(r.body).headers as Record<string, string>;

  it('(a) a filter that throws fails only its request with a 500; the same and other connections go on', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = up.seen.length;
    const bad = await get(port, '/a', { 'x-throw': '1' }, agent);
    expect(bad.status).toBe(500);
    expect(bad.body).toMatch(/filter failed/);
    expect(up.seen.length).toBe(before);
    const next = await get(port, '/a2', {}, agent);
    expect(next.status).toBe(200);
    expect(next.reused).toBe(true);
    expect(JSON.parse(next.body).url).toBe('/a2');
    agent.destroy();
    const other = await request(port, { path: '/a3' });
    expect(other.status).toBe(200);
    // Pipelined on one raw connection: throw, ok.
    const reply = await raw(port, 'GET /p1 HTTP/1.1\r\nHost: a\r\nX-Throw: 1\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusOf(reply)).toBe(500);
    expect(reply).toContain('"url":"/p2"');
  });

  it('(a) a rejected promise, a throw on the request body, on response headers or on completion never take the process down', async () => {
    const rejected = await request(port, { path: '/rej', headers: { 'x-throw-async': '1' } });
    expect(rejected.status).toBe(500);
    const onBody = await request(port, { method: 'POST', path: '/body', headers: { 'x-throw-on-body': '1' }, body: 'payload' });
    expect(onBody.status).toBe(500);
    // Response-header and completion hooks run after the upstream answered: the response stands.
    const onResponse = await request(port, { path: '/resp', headers: { 'x-throw-on-response': '1' } });
    expect(onResponse.status).toBe(200);
    const onComplete = await request(port, { path: '/done', headers: { 'x-throw-on-complete': '1' } });
    expect(onComplete.status).toBe(200);
    expect((await request(port, { path: '/alive' })).status).toBe(200);
  });

  it('(b) an async filter: the request waits for its promise, then proceeds', async () => {
    const before = calls['test.async'] ?? 0;
    const t0 = performance.now();
    const r = await request(port, { path: '/async', headers: { 'x-async': '1' } });
    expect(r.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    expect(calls['test.async']).toBe(before + 1);
    expect(Number(seenHeaders(r)['x-async-waited'])).toBeGreaterThanOrEqual(45);
    // The rest of the chain ran after it (the tag filter is later in the chain).
    expect(seenHeaders(r)['x-tag']).toBe('listener');
  });

  it('(b) an async filter with a request body: the body waits and arrives whole', async () => {
    const body = 'b'.repeat(300_000);
    const r = await request(port, { method: 'POST', path: '/async-body', headers: { 'x-async': '1' }, body });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).body).toBe(body);
  });

  it('(c) sendLocalReply(429, RL, retry-after): that reply, and the upstream is not contacted', async () => {
    const before = up.seen.length;
    const connsBefore = up.connections;
    const r = await request(port, { path: '/limited', headers: { 'x-limit': '1' } });
    expect(r.status).toBe(429);
    expect(r.body).toBe('slow down');
    expect(r.headers['retry-after']).toBe('1');
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.headers.server).toBe('capa-runtime');
    await sleep(50);
    expect(up.seen.length).toBe(before);
    expect(up.connections).toBe(connsBefore);
  });

  it("(d) 'stop' then continueRequest() later: the chain resumes where it stopped", async () => {
    const t0 = performance.now();
    const r = await request(port, { path: '/stopped', headers: { 'x-stop': '1' } });
    expect(r.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    const h = seenHeaders(r);
    expect(h['x-resumed']).toBe('yes');
    expect(h['x-tag']).toBe('listener');
    expect(h['x-order']).toBe('first, second');
  });

  it("(d) 'stop' with a request body: nothing is lost while the chain is stopped", async () => {
    const body = 'z'.repeat(200_000);
    const r = await request(port, { method: 'POST', path: '/stopped-body', headers: { 'x-stop': '1' }, body });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).body.length).toBe(body.length);
  });

  it('(e) typedPerFilterConfig {disabled: true} turns a filter off on that route only; a per-route value overrides', async () => {
    const off = await request(port, { path: '/untagged' });
    expect(off.status).toBe(200);
    expect(seenHeaders(off)['x-tag']).toBeUndefined();
    const on = await request(port, { path: '/tagged' });
    expect(seenHeaders(on)['x-tag']).toBe('listener');
    const over = await request(port, { path: '/retagged' });
    expect(seenHeaders(over)['x-tag']).toBe('route');
    // Other filters still run on the route where test.tag is off.
    expect(seenHeaders(off)['x-order']).toBe('first, second');
  });

  it('(e) per-route config goes through the factory parsePerRoute: a bad one rejects the whole config', () => {
    const yaml = (perRoute: string) => `
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
${CHAIN}
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: backend }
              typedPerFilterConfig:
                ${perRoute}
clusters:
  - name: backend
    endpoints: ["127.0.0.1:1"]
`;
    expect(() => loadConfigText(yaml('test.tag: { value: ok }'), 'x.yaml', { filters: registry(), env: {} })).not.toThrow();
    let err: unknown;
    try {
      loadConfigText(yaml('test.tag: { colour: red }'), 'x.yaml', { filters: registry(), env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/typedPerFilterConfig/);
    expect((err as ConfigError).message).toMatch(/colour/);
    // A filter without parsePerRoute accepts only {disabled: true}.
    expect(() => loadConfigText(yaml('test.async: { disabled: true }'), 'x.yaml', { filters: registry(), env: {} })).not.toThrow();
    expect(() => loadConfigText(yaml('test.async: { fast: true }'), 'x.yaml', { filters: registry(), env: {} })).toThrow(/takes no per-route config/);
  });

  it('(f) onResponseHeaders changes the status and a header of the upstream response', async () => {
    const r = await request(port, { path: '/rewrite', headers: { 'x-rewrite': '1' } });
    expect(r.status).toBe(203);
    expect(r.headers['x-upstream']).toBe('rewritten-by-filter');
    expect(r.headers['content-type']).toBe('application/x-rewritten');
    expect(JSON.parse(r.body).url).toBe('/rewrite');
    const plain = await request(port, { path: '/plain' });
    expect(plain.status).toBe(200);
    expect(plain.headers['x-upstream']).toBe('f');
  });

  it('(g) request filters run in config order; response-header filters in reverse (Envoy encoder order)', async () => {
    const r = await request(port, { path: '/order', headers: { 'x-order': 'client' } });
    expect(seenHeaders(r)['x-order']).toBe('client, first, second');
    expect(r.headers['x-order-response']).toBe('second, first');
  });

  it('a stopped request whose client goes away is cleaned up without harm', async () => {
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('GET /gone HTTP/1.1\r\nHost: a\r\nX-Stop: 1\r\n\r\n');
    await sleep(10);
    s.destroy();
    await sleep(150);
    expect((await request(port, { path: '/after-gone' })).status).toBe(200);
  });
});

describe('JSON access log', () => {
  let up: Upstream;
  let plane: Awaited<ReturnType<typeof startDataPlane>>;
  let port: number;
  let logFile: string;
  let deadPort: number;

  beforeAll(async () => {
    up = await startUpstream('log', (req, res, body, u) => {
      const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
      setTimeout(() => {
        res.setHeader('x-upstream', u.name);
        res.end(`echo:${body}`);
      }, delay);
    });
    deadPort = await freePort();
    logFile = join(mkdtempSync(join(tmpdir(), 'capa-accesslog-')), 'access.log');
    plane = await startDataPlane(`
accessLog:
  path: ${logFile}
  format: json
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    httpFilters:
      - name: istio.stats
      - name: test.ratelimit
      - name: capa.filters.http.access_log
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - name: to-dead
              match: { prefix: /dead }
              route: { cluster: dead }
            - name: to-backend
              match: { prefix: / }
              route: { cluster: backend }
clusters:
  - name: backend
    endpoints: ["127.0.0.1:${up.port}"]
  - name: dead
    connectTimeout: 1s
    endpoints: ["127.0.0.1:${deadPort}"]
`);
    port = plane.port('main');
  });

  afterAll(async () => {
    plane.dp.close();
    await up.close();
  });

  function lines(): Record<string, unknown>[] {
    if (!existsSync(logFile)) return [];
    return readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  it('writes one JSON line per request with Envoy/Istio fields; a connect failure is UF', async () => {
    const ok = await request(port, { method: 'POST', path: '/ok?delay=60', headers: { 'x-request-id': 'rid-ok', 'user-agent': 'capa-test' }, body: 'hello' });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('echo:hello');
    const dead = await request(port, { path: '/dead/x', headers: { 'x-request-id': 'rid-dead' } });
    expect(dead.status).toBe(503);
    const limited = await request(port, { path: '/limited', headers: { 'x-request-id': 'rid-rl', 'x-limit': '1' } });
    expect(limited.status).toBe(429);
    const generated = await request(port, { path: '/gen' });
    expect(generated.status).toBe(200);

    await waitFor(() => lines().length >= 4, 5000, 50);
    const all = lines();
    expect(all).toHaveLength(4);
    const byId = (id: string) => all.find((l) => l.request_id === id)!;

    const a = byId('rid-ok');
    expect(a).toBeDefined();
    expect(a.method).toBe('POST');
    expect(a.path).toBe('/ok?delay=60');
    expect(a.protocol).toBe('HTTP/1.1');
    expect(a.response_code).toBe(200);
    expect(a.response_flags).toBe('-');
    expect(a.response_code_details).toBe('via_upstream');
    expect(a.upstream_cluster).toBe('backend');
    expect(a.upstream_host).toBe(`127.0.0.1:${up.port}`);
    expect(a.bytes_received).toBe(5);
    expect(a.bytes_sent).toBe('echo:hello'.length);
    expect(a.duration).toBeGreaterThanOrEqual(55);
    expect(a.duration).toBeLessThan(5000);
    expect(Number(a.upstream_service_time)).toBeGreaterThanOrEqual(55);
    expect(a.user_agent).toBe('capa-test');
    expect(a.route_name).toBe('to-backend');
    expect(a.x_forwarded_for).toBe('127.0.0.1');
    // Envoy's %DOWNSTREAM_REMOTE_ADDRESS%: the client's ip:port.
    expect(String(a.downstream_remote_address)).toMatch(/^127\.0\.0\.1:[1-9][0-9]*$/);
    expect(Date.parse(String(a.start_time))).toBeGreaterThan(Date.now() - 60_000);

    const d = byId('rid-dead');
    expect(d.response_code).toBe(503);
    expect(d.response_flags).toBe('UF');
    expect(d.upstream_cluster).toBe('dead');
    expect(d.upstream_host).toBe(`127.0.0.1:${deadPort}`);
    expect(String(d.upstream_transport_failure_reason)).toMatch(/ECONNREFUSED/);
    expect(d.bytes_received).toBe(0);
    expect(d.bytes_sent).toBeGreaterThan(0);
    expect(d.route_name).toBe('to-dead');

    const rl = byId('rid-rl');
    expect(rl.response_code).toBe(429);
    expect(rl.response_flags).toBe('RL');
    expect(rl.upstream_cluster).toBeNull();
    expect(rl.upstream_host).toBeNull();
    expect(rl.bytes_sent).toBe('slow down'.length);

    // Without an incoming x-request-id the generated one is logged.
    const g = all.find((l) => l.path === '/gen')!;
    expect(String(g.request_id)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
