/**
 * The runtime APIs through the real, fully wired sidecar (src/sidecar.ts → src/runtime/runtime.ts):
 * what only the whole sidecar does. The app channel chosen by `app.protocol` (the Layotto SDK's
 * gRPC Server, the Dapr SDK's HTTP DaprServer), both front ends over one pub/sub layer and one set
 * of components, service invocation through the real invoker and the `capa-invocation` listener
 * (counted in istio_requests_total), a `secretKeyRef` read from a secret store at start (and a
 * missing one reported while the rest keeps serving), and PostgreSQL-backed state and sequencer
 * across a restart. The per-front-end cases live in test/integration/runtime-api and test/compat.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommunicationProtocolEnum, DaprClient, DaprServer, HttpMethod, LogLevel } from '@dapr/dapr';
import { Redis } from 'ioredis';
import { Client, RuntimeTypes, Server } from 'layotto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_CONNECTION, REDIS_HOST, deleteRedisPrefix, dropPgTables, pgTestTable } from '../../conformance/state/matrix.js';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { eventually, freePort } from '../../helpers/runtime.js';
import { waitForCount } from '../../helpers/traffic.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const daprLogger = { level: LogLevel.Error };
const utf8 = (v: Uint8Array | undefined): string => Buffer.from(v ?? new Uint8Array()).toString('utf8');

/** GET a runtime HTTP API path: status and parsed JSON body (undefined when empty). */
async function getJson(port: number, path: string): Promise<{ status: number; json: any; etag: string | null }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined, etag: r.headers.get('etag') };
}

/** Waits until /v1.0/metadata lists `pubsub/topic` as an active subscription (the sidecar asks the app in the background). */
async function subscribed(sc: Running, pubsubTopic: string): Promise<void> {
  let listed: string[] = [];
  const end = Date.now() + 5000;
  while (!listed.includes(pubsubTopic) && Date.now() < end) {
    const md = await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/metadata');
    listed = md.json.subscriptions.map((s: any) => `${s.pubsubname}/${s.topic}`);
    if (!listed.includes(pubsubTopic)) await new Promise((r) => setTimeout(r, 25));
  }
  expect(listed).toContain(pubsubTopic);
}

describe('app.protocol grpc: the Layotto SDK Server is the app', () => {
  let sc: Running;
  let app: Server;
  let client: Client;
  const events: { data: unknown; topic: string; pubsubName: string }[] = [];

  beforeAll(async () => {
    const appPort = await freePort();
    app = new Server(String(appPort), undefined, { logger: quiet });
    app.pubsub.subscribe('pubsub', 'orders', async (data, req) => {
      events.push({ data, topic: req.topic, pubsubName: req.pubsubName });
    });
    app.pubsub.addPubSubSubscription('pubsub', 'orders');
    await app.start();
    sc = await startSidecar(`
app: { id: grpc-app, port: ${appPort}, protocol: grpc }
components:
  - { name: pubsub, type: pubsub.memory }
`);
    client = new Client(String(sc.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
  });
  afterAll(async () => {
    client?.close();
    await sc?.stop();
    await app?.close();
  });

  it('the sidecar asks the app over AppCallback; publishes over gRPC and HTTP reach its handler', async () => {
    await subscribed(sc, 'pubsub/orders');
    await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'orders', data: { order: 1, via: 'grpc' } });
    const r = await fetch(`http://127.0.0.1:${sc.sidecar.runtimeHttpPort}/v1.0/publish/pubsub/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ order: 2, via: 'http' }),
    });
    expect(r.status).toBe(204);
    await eventually('2 events at the gRPC app', () => events.length === 2);
    expect(events.map((e) => e.data).sort((a: any, b: any) => a.order - b.order)).toEqual([
      { order: 1, via: 'grpc' },
      { order: 2, via: 'http' },
    ]);
    expect(events.every((e) => e.topic === 'orders' && e.pubsubName === 'pubsub')).toBe(true);
  });
});

describe('app.protocol http: the Dapr SDK DaprServer is the app; both front ends share the components', () => {
  let sc: Running;
  let dapr: DaprClient;
  let app: DaprServer;
  let layotto: Client;
  const orders: unknown[] = [];
  const payments: { body: unknown; contentType: string | undefined }[] = [];

  beforeAll(async () => {
    const appPort = await freePort();
    sc = await startSidecar(`
app: { id: checkout, port: ${appPort} }
components:
  - { name: statestore, type: state.memory }
  - { name: pubsub, type: pubsub.memory }
  - { name: lockstore, type: lock.memory }
  - { name: seq, type: sequencer.memory }
nameResolution:
  type: static
  static:
    apps:
      - { appId: billing, endpoints: ["127.0.0.1:${appPort}"] }
invocation: { port: 0 }
`);
    const clientOptions = { daprHost: '127.0.0.1', daprPort: String(sc.sidecar.runtimeHttpPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: daprLogger };
    dapr = new DaprClient(clientOptions);
    app = new DaprServer({ serverHost: '127.0.0.1', serverPort: String(appPort), communicationProtocol: CommunicationProtocolEnum.HTTP, clientOptions, logger: daprLogger });
    await app.pubsub.subscribe('pubsub', 'orders', async (data: unknown) => {
      orders.push(data);
    });
    await app.invoker.listen(
      'pay',
      async (req) => {
        const body = JSON.parse(req.body ?? 'null');
        payments.push({ body, contentType: req.metadata?.contentType });
        return { paid: body.amount };
      },
      { method: HttpMethod.POST },
    );
    await app.start();
    layotto = new Client(String(sc.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
  });
  afterAll(async () => {
    layotto?.close();
    await app?.stop();
    await dapr?.stop();
    await sc?.stop();
  });

  it('a publish through the gRPC front end reaches the DaprServer subscription (HttpAppChannel)', async () => {
    await subscribed(sc, 'pubsub/orders');
    await layotto.pubsub.publish({ pubsubName: 'pubsub', topic: 'orders', data: { orderId: 7 } });
    await eventually('the event at the DaprServer', () => orders.length === 1);
    expect(orders).toEqual([{ orderId: 7 }]);
  });

  it('service invocation: DaprClient (HTTP) and the Layotto SDK (gRPC) reach the billing app through the invoker; counted as outbound to billing', async () => {
    const before = payments.length;
    expect(await dapr.invoker.invoke('billing', 'pay', HttpMethod.POST, { amount: 5 })).toEqual({ paid: 5 });
    const res = await layotto.invoker.invoke({ id: 'billing', method: 'pay', httpVerb: RuntimeTypes.HTTPExtension.Verb.POST, data: { amount: 7 } });
    // DaprServer answers without a content type: the SDK hands back the bytes.
    expect(JSON.parse(utf8(res.content as Uint8Array))).toEqual({ paid: 7 });
    expect(payments.slice(before)).toEqual([
      { body: { amount: 5 }, contentType: 'application/json' },
      { body: { amount: 7 }, contentType: 'application/json' },
    ]);
    const billing = (l: Record<string, string>) => l.reporter === 'source' && l.destination_service === 'billing' && l.response_code === '200';
    expect(await waitForCount(sc.sidecar.adminPort, billing, 2)).toBeGreaterThanOrEqual(2);
  });

  it('state saved over HTTP is read over gRPC with the same etag, and the other way round', async () => {
    const k = `wiring-${randomUUID().slice(0, 8)}`;
    await dapr.state.save('statestore', [{ key: `${k}-http`, value: { from: 'http' } }]);
    const overHttp = await getJson(sc.sidecar.runtimeHttpPort, `/v1.0/state/statestore/${k}-http`);
    const overGrpc = await layotto.state.get({ storeName: 'statestore', key: `${k}-http` });
    expect(JSON.parse(utf8(overGrpc?.value))).toEqual({ from: 'http' });
    expect(overGrpc?.etag).toBe(overHttp.etag);

    await layotto.state.save({ storeName: 'statestore', states: [{ key: `${k}-grpc`, value: JSON.stringify({ from: 'grpc' }) }] });
    expect(await dapr.state.get('statestore', `${k}-grpc`)).toEqual({ from: 'grpc' });
    await layotto.state.delete({ storeName: 'statestore', key: `${k}-http` });
    expect((await getJson(sc.sidecar.runtimeHttpPort, `/v1.0/state/statestore/${k}-http`)).status).toBe(204);
  });

  it('a lock taken over gRPC is refused over HTTP to another owner; released over HTTP, gRPC can take it', async () => {
    const resourceId = `res-${randomUUID().slice(0, 8)}`;
    expect(await layotto.lock.tryLock({ storeName: 'lockstore', resourceId, lockOwner: 'grpc-owner', expire: 30 })).toBe(true);
    expect(await dapr.lock.lock('lockstore', resourceId, 'http-owner', 30)).toEqual({ success: false });
    expect((await dapr.lock.unlock('lockstore', resourceId, 'grpc-owner')).status).toBe(0);
    expect(await layotto.lock.tryLock({ storeName: 'lockstore', resourceId, lockOwner: 'other', expire: 30 })).toBe(true);
  });

  it('sequencer ids over gRPC increase; metadata lists every component of the sidecar', async () => {
    const key = `wiring-${randomUUID().slice(0, 8)}`;
    const a = BigInt(await layotto.sequencer.getNextId({ storeName: 'seq', key }));
    const b = BigInt(await layotto.sequencer.getNextId({ storeName: 'seq', key }));
    expect(b > a).toBe(true);
    const md = (await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/metadata')).json;
    expect(md.components.map((c: any) => `${c.name}:${c.type}`).sort()).toEqual(['lockstore:lock.memory', 'pubsub:pubsub.memory', 'seq:sequencer.memory', 'statestore:state.memory']);
  });
});

describe('secretKeyRef end to end', () => {
  const prefix = `capa-test-secretref-${randomUUID().slice(0, 8)}:`;
  const dir = mkdtempSync(join(tmpdir(), 'capa-secretref-'));
  const secretsFile = join(dir, 'secrets.json');
  let sc: Running;
  let redis: Redis;

  beforeAll(async () => {
    writeFileSync(secretsFile, JSON.stringify({ statePrefix: prefix }));
    sc = await startSidecar(`
components:
  - name: localsecrets
    type: secretstores.local.file
    metadata: { secretsFile: "${secretsFile}" }
  - name: redisstate
    type: state.redis
    auth: { secretStore: localsecrets }
    metadata:
      - { name: redisHost, value: "${REDIS_HOST}" }
      - { name: keyPrefix, secretKeyRef: { name: statePrefix, key: statePrefix } }
  - name: lostsecret
    type: state.redis
    auth: { secretStore: localsecrets }
    metadata:
      - { name: redisHost, value: "${REDIS_HOST}" }
      - { name: keyPrefix, secretKeyRef: { name: noSuchSecret } }
  - name: memstate
    type: state.memory
`);
    const [host, port] = REDIS_HOST.split(':');
    redis = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await sc?.stop();
    await deleteRedisPrefix(prefix);
  });

  it('a keyPrefix read from the secrets file is the prefix the saved key lands under in Redis', async () => {
    const base = `http://127.0.0.1:${sc.sidecar.runtimeHttpPort}`;
    const save = await fetch(`${base}/v1.0/state/redisstate`, { method: 'POST', body: JSON.stringify([{ key: 'order-1', value: { total: 12 } }]) });
    expect(save.status).toBe(204);
    expect(await redis.hget(`${prefix}order-1`, 'data')).toBe('{"total":12}');
    expect(await redis.exists('order-1')).toBe(0);
  });

  it('a missing secret: the component is failing in metadata and healthz (500 naming it); the others keep serving', async () => {
    const md = (await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/metadata')).json;
    const byName = Object.fromEntries(md.components.map((c: any) => [c.name, c]));
    expect(byName.lostsecret.error).toMatch(/keyPrefix.*noSuchSecret/);
    expect(byName.redisstate.error).toBeUndefined();
    expect(byName.memstate.error).toBeUndefined();
    expect(byName.localsecrets.error).toBeUndefined();
    const h = await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/healthz');
    expect(h.status).toBe(500);
    expect(h.json.message).toMatch(/component lostsecret: .*noSuchSecret/);
    expect(h.json.message).not.toMatch(/component (redisstate|memstate|localsecrets)/);
    expect((await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/healthz/outbound')).status).toBe(204);
    // Over HTTP too: 500 with the reason, not "not found".
    const lost = await getJson(sc.sidecar.runtimeHttpPort, '/v1.0/state/lostsecret/k');
    expect(lost.status).toBe(500);
    expect(lost.json.message).toMatch(/state store lostsecret is not ready: .*noSuchSecret/);

    const client = new Client(String(sc.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
    try {
      await client.state.save({ storeName: 'memstate', states: [{ key: 'k', value: '"ok"' }] });
      expect(utf8((await client.state.get({ storeName: 'memstate', key: 'k' }))?.value)).toBe('"ok"');
      const err = await client.state.get({ storeName: 'lostsecret', key: 'k' }).then(
        () => undefined,
        (e: { code: number; details: string }) => e,
      );
      expect(err?.code).toBe(14); // UNAVAILABLE: configured but waiting for its secret
      expect(err?.details).toMatch(/lostsecret is not ready: .*noSuchSecret/);
    } finally {
      client.close();
    }
  });
});

describe('restart with PostgreSQL state and sequencer', () => {
  const stateTable = pgTestTable('wstate');
  const seqTable = pgTestTable('wseq');
  const yaml = `
components:
  - name: pgstate
    type: state.postgresql
    metadata: { connectionString: "${PG_CONNECTION}", tableName: "${stateTable}" }
  - name: pgseq
    type: sequencer.postgresql
    metadata: { connectionString: "${PG_CONNECTION}", tableName: "${seqTable}" }
`;
  afterAll(async () => {
    await dropPgTables(stateTable, seqTable);
  });

  it('a new sidecar on the same config sees the state and continues the ids above the last', async () => {
    const first = await startSidecar(yaml);
    let last: bigint;
    try {
      const client = new Client(String(first.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
      try {
        const save = await fetch(`http://127.0.0.1:${first.sidecar.runtimeHttpPort}/v1.0/state/pgstate`, {
          method: 'POST',
          body: JSON.stringify([
            { key: 'cart-1', value: { items: 3 } },
            { key: 'cart-2', value: 'two' },
          ]),
        });
        expect(save.status).toBe(204);
        const ids: bigint[] = [];
        for (let i = 0; i < 3; i++) ids.push(BigInt(await client.sequencer.getNextId({ storeName: 'pgseq', key: 'orders' })));
        last = ids[2]!;
      } finally {
        client.close();
      }
    } finally {
      await first.stop();
    }

    const second = await startSidecar(yaml);
    try {
      const bulk = await fetch(`http://127.0.0.1:${second.sidecar.runtimeHttpPort}/v1.0/state/pgstate/bulk`, { method: 'POST', body: JSON.stringify({ keys: ['cart-1', 'cart-2'] }) });
      expect(((await bulk.json()) as any[]).map((x) => x.data)).toEqual([{ items: 3 }, 'two']);
      const client = new Client(String(second.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
      try {
        expect(BigInt(await client.sequencer.getNextId({ storeName: 'pgseq', key: 'orders' })) > last).toBe(true);
      } finally {
        client.close();
      }
    } finally {
      await second.stop();
    }
  });
});
