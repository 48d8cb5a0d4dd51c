/**
 * Service invocation through the proxy's own outbound path: a real sidecar compiles
 * nameResolution / invocation into the `capa-invocation` listener, the Invoker sends to it, real
 * upstream apps answer. Load balancing over static endpoints, an explicit cluster, a DNS-resolved
 * app id, what arrives at the app and what comes back, unknown app ids (a DNS name that cannot
 * resolve with `type: dns`, no route with `type: static`), Dapr's app.namespace form, an app that
 * is down, a route retry policy, and the istio_requests_total samples that prove the outbound path.
 * DNS names are `localhost` or cannot exist, so no query leaves the machine.
 */
import http from 'node:http';
import type net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort } from '../../helpers/http.js';
import { waitForCount } from '../../helpers/traffic.js';
import { createInvoker } from '../../../src/runtime/invoker.js';
import { ComponentError } from '../../../src/components/errors.js';
import type { InvokeRequest } from '../../../src/runtime/invocation.js';

/** An app listening on both stacks when it can, so `localhost` reaches it whichever family DNS gives. */
async function dualStackApp(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end('dns app');
  });
  const listen = (host: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
  await listen('::').catch(() => listen('127.0.0.1'));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => new Promise((r) => server.close(() => r())) };
}

function req(appId: string, over: Partial<InvokeRequest> = {}): InvokeRequest {
  return { appId, method: 'ping', verb: 'GET', query: '', headers: {}, body: Buffer.alloc(0), ...over };
}

async function rejection(p: Promise<unknown>): Promise<ComponentError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ComponentError) return e;
    throw e;
  }
  throw new Error('expected the invocation to fail');
}

describe('service invocation through the capa-invocation listener', () => {
  let a1: Upstream;
  let a2: Upstream;
  let billing: Upstream;
  let dnsApp: Awaited<ReturnType<typeof dualStackApp>>;
  let dead: number;
  let sc: Running;
  let invoker: ReturnType<typeof createInvoker>;

  beforeAll(async () => {
    a1 = await startUpstream('a1');
    a2 = await startUpstream('a2');
    billing = await startUpstream('billing', (rq, res, body) => {
      if (rq.url === '/missing') {
        res.statusCode = 404;
        res.end('no such invoice');
        return;
      }
      res.statusCode = 201;
      res.setHeader('content-type', 'text/plain');
      res.setHeader('x-billing', 'yes');
      res.end(`billed ${body}`);
    });
    dnsApp = await dualStackApp();
    dead = await freePort();
    sc = await startSidecar(`
app: { id: checkout }
node: { namespace: shop }
clusters:
  - name: billing-cluster
    endpoints: ["127.0.0.1:${billing.port}"]
  - name: half-dead
    endpoints: ["127.0.0.1:${a1.port}", "127.0.0.1:${dead}"]
nameResolution:
  type: dns
  dns: { template: "{appId}", port: ${dnsApp.port}, apps: [localhost] }
  static:
    apps:
      - { appId: orders, endpoints: ["127.0.0.1:${a1.port}", "127.0.0.1:${a2.port}"] }
      - { appId: down, endpoints: ["127.0.0.1:${dead}"] }
invocation:
  port: 0
  timeout: 5s
  apps:
    - { appId: billing, cluster: billing-cluster }
    - { appId: flaky, cluster: half-dead, retryPolicy: { retryOn: connect-failure, numRetries: 2 } }
    - { appId: flaky-no-retry, cluster: half-dead }
`);
    invoker = createInvoker({ port: () => sc.sidecar.listenerPort('capa-invocation'), appId: () => sc.sidecar.snapshot.app.id, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    invoker?.close();
    await sc?.stop();
    await Promise.all([a1?.close(), a2?.close(), billing?.close(), dnsApp?.close()]);
  });

  it('balances an app id over its static endpoints; method, query, verb, headers and body arrive as sent', async () => {
    const before = [a1.seen.length, a2.seen.length];
    const replies = [];
    for (let i = 0; i < 6; i++) {
      replies.push(
        await invoker.invoke(req('orders', { method: 'orders/new', verb: 'post', query: 'id=7&x=a%20b', headers: { 'x-trace-me': `n${i}`, connection: 'close' }, body: Buffer.from(`{"n":${i}}`), contentType: 'application/json' })),
      );
    }
    expect(a1.seen.length - before[0]!).toBe(3);
    expect(a2.seen.length - before[1]!).toBe(3);
    const got = a1.seen.at(-1)!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/orders/new?id=7&x=a%20b');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-trace-me']).toMatch(/^n\d$/);
    expect(got.headers['dapr-caller-app-id']).toBe('checkout');
    expect(got.headers['dapr-callee-app-id']).toBe('orders');
    expect(got.headers.host).toBe('orders');
    expect(got.body).toMatch(/^\{"n":\d\}$/);
    const r = replies[5]!;
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('application/json');
    expect(r.headers['x-upstream']).toMatch(/^a[12]$/);
    expect(JSON.parse(r.body.toString()).body).toBe('{"n":5}');
  });

  it('maps an app id to an explicit cluster; the app’s status, headers and body come back, its own 404 too', async () => {
    const r = await invoker.invoke(req('billing', { method: 'invoices', verb: 'PUT', body: Buffer.from('42') }));
    expect(r.status).toBe(201);
    expect(r.headers['x-billing']).toBe('yes');
    expect(r.contentType).toBe('text/plain');
    expect(r.body.toString()).toBe('billed 42');
    const missing = await invoker.invoke(req('billing', { method: 'missing' }));
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toBe('no such invoice');
  });

  it('resolves a DNS app id through the template', async () => {
    const r = await invoker.invoke(req('localhost', { method: 'hello' }));
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('dns app');
    expect(dnsApp.seen).toContain('/hello');
    await invoker.invoke(req('localhost', { method: 'a b/é', query: 'q=1' }));
    expect(dnsApp.seen).toContain('/a%20b/%C3%A9?q=1');
  });

  it('an app id whose DNS name does not resolve (the proxy’s DF 503) is a not-found error; a malformed one a bad-request', async () => {
    // Listed nowhere, so the dynamic forward proxy resolves it; a 64-byte label cannot exist in DNS.
    const ghost = 'n'.repeat(64);
    const e = await rejection(invoker.invoke(req(ghost)));
    expect(e.kind).toBe('not-found');
    expect(e.message).toContain(`app id '${ghost}' is unknown: its DNS name does not resolve`);
    expect(e.message).toContain('DNS resolution failure');
    expect((await rejection(invoker.invoke(req('a.b/c')))).kind).toBe('bad-request');
    expect((await rejection(invoker.invoke(req('a.b.c')))).kind).toBe('bad-request');
  });

  it('app.<own namespace> is the listed app; dapr-callee-app-id is the app part', async () => {
    const before = a1.seen.length + a2.seen.length;
    const r = await invoker.invoke(req('orders.shop'));
    expect(r.status).toBe(200);
    expect(a1.seen.length + a2.seen.length).toBe(before + 1);
    const got = [...a1.seen, ...a2.seen].find((x) => x.headers.host === 'orders.shop')!;
    expect(got.headers['dapr-callee-app-id']).toBe('orders');
  });

  it('an app that is down: the proxy’s 503 (flag UF) is relayed as the response', async () => {
    const r = await invoker.invoke(req('down'));
    expect(r.status).toBe(503);
    expect(r.body.toString()).toMatch(/connect/i);
  });

  it('the route retry policy applies: connect failures are retried on the other endpoint', async () => {
    const retried = await Promise.all(Array.from({ length: 6 }, () => invoker.invoke(req('flaky'))));
    expect(retried.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const plain = [];
    for (let i = 0; i < 6; i++) plain.push((await invoker.invoke(req('flaky-no-retry'))).status);
    expect(plain.filter((s) => s === 503)).toHaveLength(3);
  });

  it('invocations are counted in istio_requests_total as outbound requests to the app id', async () => {
    const orders = (l: Record<string, string>) => l.reporter === 'source' && l.destination_service === 'orders' && l.response_code === '200';
    expect(await waitForCount(sc.sidecar.adminPort, orders, 6)).toBeGreaterThanOrEqual(6);
    const down = (l: Record<string, string>) => l.destination_service === 'down' && l.response_code === '503' && l.response_flags === 'UF';
    expect(await waitForCount(sc.sidecar.adminPort, down, 1)).toBeGreaterThanOrEqual(1);
    const unknown = (l: Record<string, string>) => l.reporter === 'source' && l.response_code === '503' && l.response_flags === 'DF' && l.destination_service === 'n'.repeat(64);
    expect(await waitForCount(sc.sidecar.adminPort, unknown, 1)).toBeGreaterThanOrEqual(1);
  });

  it('a listener that does not answer is a backend error', async () => {
    const port = await freePort();
    const lost = createInvoker({ port: () => port, appId: () => 'checkout', logger: pino({ level: 'silent' }) });
    try {
      expect((await rejection(lost.invoke(req('orders')))).kind).toBe('backend');
    } finally {
      lost.close();
    }
  });
});

describe('service invocation with static name resolution only', () => {
  let app: Upstream;
  let sc: Running;
  let invoker: ReturnType<typeof createInvoker>;

  beforeAll(async () => {
    app = await startUpstream('orders');
    sc = await startSidecar(`
app: { id: checkout }
node: { namespace: shop }
nameResolution:
  type: static
  static: { apps: [{ appId: orders, endpoints: ["127.0.0.1:${app.port}"] }] }
invocation: { port: 0 }
`);
    invoker = createInvoker({ port: () => sc.sidecar.listenerPort('capa-invocation'), appId: () => 'checkout', logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    invoker?.close();
    await sc?.stop();
    await app?.close();
  });

  it('no catch-all: an unknown app id, or a listed app in another namespace, is the proxy’s 404 (NR) → not-found', async () => {
    for (const id of ['nobody', 'orders.prod']) {
      const e = await rejection(invoker.invoke(req(id)));
      expect(e.kind).toBe('not-found');
      expect(e.message).toContain(`app id '${id}' is unknown`);
      expect(e.message).toContain('no route matched');
    }
    expect((await invoker.invoke(req('orders.shop'))).status).toBe(200);
    expect((await invoker.invoke(req('ORDERS'))).status).toBe(200);
    const unknown = (l: Record<string, string>) => l.reporter === 'source' && l.response_code === '404' && l.response_flags === 'NR';
    expect(await waitForCount(sc.sidecar.adminPort, unknown, 2)).toBeGreaterThanOrEqual(2);
  });
});
