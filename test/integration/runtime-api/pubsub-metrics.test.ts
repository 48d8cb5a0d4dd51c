/**
 * The pub/sub counters (capa_pubsub_egress_total, capa_pubsub_ingress_total) over real HTTP: a
 * publish counts egress by whether the backend stored it; every message taken for the app counts
 * once per delivery attempt by outcome — success, retry (the backend redelivers), drop (the app
 * dropped it or the last retry failed), expired (TTL), unrouted (no routing rule, no default).
 * Then the real CLI with `concurrency: 2`: the counters are on the Prometheus port beside the
 * workers' aggregated metrics.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { eventually, freePort, startRuntime, startTestApp, type AppReply } from '../../helpers/runtime.js';
import { spawnCli, waitReady, writeTempConfig } from '../../helpers/sidecar.js';
import { request } from '../../helpers/http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value of one sample of a counter in Prometheus text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    const got = Object.fromEntries(body.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 2, -1)]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('pub/sub metrics', () => {
  it('count publishes and every delivery outcome by component and topic', async () => {
    const registry = new Registry();
    const topic = `m-${randomUUID().slice(0, 6)}`;
    const routed = `${topic}-routed`;
    const appPort = await freePort();
    const subs = [
      { pubsubname: 'pubsub', topic, route: '/in', metadata: { maxDeliveries: '2' } },
      { pubsubname: 'pubsub', topic: routed, routes: { rules: [{ match: 'event.data.kind == "a"', path: '/a' }] } },
    ];
    // n 1: success; n 2: DROP; n 3: RETRY every time (2 deliveries: one retry, then dropped).
    const app = await startTestApp((r): AppReply => {
      if (r.path === '/dapr/subscribe') return { status: 200, body: subs };
      const n = r.json?.data?.n;
      return { status: 200, body: { status: n === 2 ? 'DROP' : n === 3 ? 'RETRY' : 'SUCCESS' } };
    }, appPort);
    const rt = await startRuntime('- name: pubsub\n  type: pubsub.memory\n  metadata: { redeliveryDelay: 20ms }', { appPort, registry });
    try {
      await rt.subscribed;
      const pub = (t: string, body: unknown, q = '') => fetch(`${rt.base}/v1.0/publish/pubsub/${t}${q}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      for (const n of [1, 2, 3]) expect((await pub(topic, { n })).status).toBe(204);
      expect((await pub(routed, { kind: 'a' })).status).toBe(204);
      expect((await pub(routed, { kind: 'b' })).status).toBe(204); // no rule matches, no default path
      expect((await pub('', { n: 0 })).status).toBe(404); // no topic: not a publish to count
      await eventually('every outcome', async () => sample(await registry.metrics(), 'capa_pubsub_ingress_total', { component: 'pubsub', topic, status: 'drop' }) === 2, 5000);
      await sleep(100); // nothing more may arrive
      const text = await registry.metrics();
      const ing = (t: string, status: string) => sample(text, 'capa_pubsub_ingress_total', { component: 'pubsub', topic: t, status });
      expect(sample(text, 'capa_pubsub_egress_total', { component: 'pubsub', topic, success: 'true' })).toBe(3);
      expect(sample(text, 'capa_pubsub_egress_total', { component: 'pubsub', topic: routed, success: 'true' })).toBe(2);
      expect(ing(topic, 'success')).toBe(1);
      expect(ing(topic, 'retry')).toBe(1); // n 3's first delivery
      expect(ing(topic, 'drop')).toBe(2); // n 2 at once, n 3 after its second delivery
      expect(ing(routed, 'success')).toBe(1);
      expect(ing(routed, 'unrouted')).toBe(1);
      expect(app.received.filter((r) => r.path === '/a')).toHaveLength(1);
    } finally {
      await rt.close();
      await app.close();
    }
  });

  it('count an expired message and a failed publish', async () => {
    const registry = new Registry();
    const topic = `x-${randomUUID().slice(0, 6)}`;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const app = await startTestApp(async (r): Promise<AppReply> => {
      if (r.path === '/dapr/subscribe') return { status: 200, body: [{ pubsubname: 'pubsub', topic, route: '/in' }] };
      if (r.json?.data?.n === 0) await held; // busy with the first message: the next waits in the queue
      return { status: 200 };
    });
    const rt = await startRuntime('- name: pubsub\n  type: pubsub.memory\n  metadata: { concurrency: 1 }', { appPort: app.port, registry });
    try {
      await rt.subscribed;
      const pub = (n: number, q = '') => fetch(`${rt.base}/v1.0/publish/pubsub/${topic}${q}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) });
      expect((await pub(0)).status).toBe(204);
      await eventually('the first one in the app', () => app.received.some((r) => r.path === '/in'));
      expect((await pub(1, '?metadata.ttlInSeconds=1')).status).toBe(204);
      await sleep(1100);
      release();
      await eventually('expired counted', async () => sample(await registry.metrics(), 'capa_pubsub_ingress_total', { component: 'pubsub', topic, status: 'expired' }) === 1, 5000);
      expect(app.received.filter((r) => r.path === '/in')).toHaveLength(1);
      // A publish that fails (a CloudEvent that is not JSON) counts as success="false".
      await expect(rt.services.pubsub.publish({ pubsubName: 'pubsub', topic, data: Buffer.from('not json'), contentType: 'application/cloudevents+json' })).rejects.toThrow(/not JSON/);
      const text = await registry.metrics();
      expect(sample(text, 'capa_pubsub_ingress_total', { component: 'pubsub', topic, status: 'success' })).toBe(1);
      expect(sample(text, 'capa_pubsub_egress_total', { component: 'pubsub', topic, success: 'true' })).toBe(2);
      expect(sample(text, 'capa_pubsub_egress_total', { component: 'pubsub', topic, success: 'false' })).toBe(1);
    } finally {
      release();
      await rt.close();
      await app.close();
    }
  });
});

describe('pub/sub metrics with worker processes', () => {
  it('are served on the Prometheus port beside the workers\' aggregated metrics', async () => {
    const [admin, prom, metrics, ready, api, grpc] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const file = writeTempConfig(`
sidecar: { port: ${api}, grpcPort: ${grpc}, adminPort: ${admin}, prometheusPort: ${prom}, metricsPort: ${metrics}, readinessPort: ${ready} }
concurrency: 2
drainTime: 1s
components:
  - name: pubsub
    type: pubsub.memory
`);
    const cli = spawnCli(['--config', file]);
    try {
      await waitReady(admin, 15_000);
      const res = await fetch(`http://127.0.0.1:${api}/v1.0/publish/pubsub/w`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
      expect(res.status).toBe(204);
      const text = (await request(prom, { path: '/stats/prometheus' })).body;
      expect(sample(text, 'capa_pubsub_egress_total', { component: 'pubsub', topic: 'w', success: 'true' })).toBe(1);
      expect(text).toMatch(/^# TYPE nodejs_heap_size_used_bytes gauge$/m); // the workers' part is still there
      expect(text.match(/^# TYPE capa_pubsub_egress_total counter$/gm)).toHaveLength(1);
    } finally {
      cli.kill('SIGTERM');
      await cli.exited;
    }
  }, 30_000);
});
