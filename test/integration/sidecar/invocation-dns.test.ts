/**
 * On-demand DNS name resolution through the fully wired sidecar: an app id listed nowhere is
 * invoked over the Dapr HTTP API (and the Layotto gRPC API), the `capa-invocation` listener's
 * catch-all routes it to the dynamic forward proxy cluster `invoke|*`, which resolves the DNS
 * template for it — `{appId}`, so `localhost` resolves from /etc/hosts and nothing leaves
 * 127.0.0.0/8 (or ::1) — and the request reaches a real HTTP server. Also Dapr's `app.namespace`
 * form, an app id whose DNS name cannot resolve (the proxy's DF 503 → Dapr's not-found error),
 * and the istio_requests_total samples naming the app id.
 */
import http from 'node:http';
import { Client, RuntimeTypes } from 'layotto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { admin, waitForCount } from '../../helpers/traffic.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** `localhost` may also resolve to ::1: the same app answers there too when the host has IPv6 loopback. */
async function alsoOnIpv6Loopback(u: Upstream): Promise<http.Server | null> {
  const v6 = http.createServer((req, res) => u.server.emit('request', req, res));
  return new Promise((resolve) => {
    v6.once('error', () => resolve(null));
    v6.listen(u.port, '::1', () => resolve(v6));
  });
}

async function invoke(sc: Running, appId: string, method: string, body?: string): Promise<{ status: number; json: any; text: string }> {
  const r = await fetch(`http://127.0.0.1:${sc.sidecar.runtimeHttpPort}/v1.0/invoke/${appId}/method/${method}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'text/plain' } }),
  });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, text };
}

describe('service invocation resolves unlisted app ids on demand (nameResolution type dns)', () => {
  let sc: Running;
  let app: Upstream;
  let orders: Upstream;
  let v6: http.Server | null;
  let layotto: Client;

  beforeAll(async () => {
    app = await startUpstream('dns-app');
    v6 = await alsoOnIpv6Loopback(app);
    orders = await startUpstream('orders');
    sc = await startSidecar(`
app: { id: checkout }
node: { namespace: shop }
nameResolution:
  type: dns
  dns: { template: "{appId}", port: ${app.port}, refreshRate: 1s, maxHosts: 8 }
  static:
    apps: [{ appId: orders, endpoints: ["127.0.0.1:${orders.port}"] }]
invocation: { port: 0, timeout: 5s }
`);
    layotto = new Client(String(sc.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
  });
  afterAll(async () => {
    layotto?.close();
    await sc?.stop();
    await new Promise<void>((r) => (v6 ? v6.close(() => r()) : r()));
    await Promise.all([app?.close(), orders?.close()]);
  });

  it('an app id listed nowhere is resolved through the template and reached, over the Dapr HTTP API', async () => {
    const r = await invoke(sc, 'localhost', 'orders/new?x=1', 'hello');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ upstream: 'dns-app', method: 'POST', url: '/orders/new?x=1', body: 'hello' });
    const got = app.seen.at(-1)!;
    expect(got.headers.host).toBe('localhost');
    expect(got.headers['dapr-caller-app-id']).toBe('checkout');
    expect(got.headers['dapr-callee-app-id']).toBe('localhost');
    // The on-demand cluster now has the resolved host (one pool per address).
    const clusters = JSON.parse((await admin(sc.sidecar.adminPort, '/clusters?format=json')).body);
    const dfp = (clusters.cluster_statuses ?? clusters).find((c: any) => c.name === 'invoke|*');
    expect(dfp).toBeDefined();
    expect(JSON.stringify(dfp)).toMatch(/127\.0\.0\.1|::1/);
  });

  it("Dapr's app.namespace form: the Host is the whole id, dapr-callee-app-id the app; app.<own namespace> of a listed id is that id", async () => {
    const r = await invoke(sc, 'localhost.prod', 'ping');
    expect(r.status).toBe(200);
    expect(r.json.upstream).toBe('dns-app');
    const got = app.seen.at(-1)!;
    expect(got.headers.host).toBe('localhost.prod');
    expect(got.headers['dapr-callee-app-id']).toBe('localhost');

    const own = await invoke(sc, 'orders.shop', 'list');
    expect(own.status).toBe(200);
    expect(own.json).toMatchObject({ upstream: 'orders', url: '/list' });
    expect(orders.seen.at(-1)!.headers['dapr-callee-app-id']).toBe('orders');
  });

  it('the Layotto gRPC API takes the same path', async () => {
    const res = await layotto.invoker.invoke({ id: 'localhost', method: 'grpc-call', httpVerb: RuntimeTypes.HTTPExtension.Verb.POST, data: { n: 1 } });
    // The app answers JSON, which the SDK hands back parsed.
    expect(res.content).toMatchObject({ upstream: 'dns-app', url: '/grpc-call', headers: { host: 'localhost', 'dapr-callee-app-id': 'localhost' } });
  });

  it('an app id whose DNS name cannot resolve: the proxy answers 503 DF, the Dapr API reports the app id as not found', async () => {
    // A label longer than 63 bytes cannot exist in DNS: refused before any query is sent.
    const ghost = 'g'.repeat(64);
    const r = await invoke(sc, ghost, 'ping');
    expect(r.status).toBe(404);
    expect(r.json.errorCode).toBe('ERR_DIRECT_INVOKE');
    expect(r.json.message).toContain(`fail to invoke, id: ${ghost}, err: app id '${ghost}' is unknown: its DNS name does not resolve`);
    expect(r.json.message).toContain('DNS resolution failure');
    const grpc = await layotto.invoker.invoke({ id: ghost, method: 'ping', httpVerb: RuntimeTypes.HTTPExtension.Verb.GET }).then(
      () => null,
      (e: { code?: number }) => e,
    );
    expect(grpc?.code).toBe(5); // NOT_FOUND
    // More than one dot is not an app id (Dapr: "invalid app id").
    const bad = await invoke(sc, 'a.b.c', 'ping');
    expect(bad.status).toBe(400);
    expect(bad.json.message).toContain('invalid app id "a.b.c"');
  });

  it('istio_requests_total names the app id as destination_service, and the DF failures carry flag DF', async () => {
    const ok = (l: Record<string, string>) => l.reporter === 'source' && l.destination_service === 'localhost' && l.response_code === '200';
    expect(await waitForCount(sc.sidecar.adminPort, ok, 2)).toBeGreaterThanOrEqual(2);
    const df = (l: Record<string, string>) => l.response_code === '503' && l.response_flags === 'DF' && l.destination_service === 'g'.repeat(64);
    expect(await waitForCount(sc.sidecar.adminPort, df, 1)).toBeGreaterThanOrEqual(1);
  });
});
