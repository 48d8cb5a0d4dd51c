/**
 * The official Layotto Node SDK (`layotto` on npm) against the sidecar's gRPC runtime API: its
 * `Client` for state, pub/sub, configuration, lock, sequencer, invocation, file and binding, its
 * generated RuntimeClient for the RPCs the SDK wraps no method for (LockKeepAlive, secrets), and
 * its `Server` as the gRPC app receiving events through GrpcAppChannel and PubSubRuntime.
 * Memory backends, plus the Redis state and lock stores through the same cases.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, RuntimeTypes, Server } from 'layotto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComponentManager } from '../../src/components/manager.js';
import { startComponents } from '../helpers/runtime.js';
import type { PubSub } from '../../src/components/pubsub/pubsub.js';
import { PubSubRuntime } from '../../src/runtime/pubsub.js';
import { createInvoker } from '../../src/runtime/invoker.js';
import { GrpcAppChannel, startRuntimeGrpcServer, type RuntimeGrpcServer } from '../../src/runtime-api/grpc/index.js';
import { REDIS_HOST, deleteRedisPrefix } from '../conformance/state/matrix.js';
import { freePort } from '../helpers/http.js';
import { startSidecar, type Running } from '../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/** User-format `components:` YAML → checked ComponentSpecs, as the config compiler makes them. */

const logger = pino({ level: process.env.CAPA_TEST_LOG ?? 'silent' });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prefix = `capa-test-sdk-${randomUUID().slice(0, 8)}:`;

/** A call on the SDK's generated RuntimeClient (google-protobuf messages). */
function raw<T>(client: Client, method: string, req: unknown): Promise<T> {
  const runtime = (client as any)._runtime;
  return new Promise((resolve, reject) => runtime[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
}

async function grpcFailure(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; details: string };
  }
  throw new Error('expected the SDK call to fail');
}

describe('Layotto Node SDK against the runtime gRPC API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capa-sdk-'));
  const configFile = join(dir, 'config.yaml');
  const secretsFile = join(dir, 'secrets.json');
  let components: ComponentManager;
  let pubsub: PubSubRuntime;
  let invoker: ReturnType<typeof createInvoker>;
  let server: RuntimeGrpcServer;
  let client: Client;
  let sc: Running;
  let app: Upstream;

  beforeAll(async () => {
    writeFileSync(configFile, 'greeting: hello\nretries: "3"\n');
    writeFileSync(secretsFile, JSON.stringify({ dbPassword: 's3cret', token: 't0k' }));
    app = await startUpstream('billing');
    sc = await startSidecar(`
app: { id: checkout }
nameResolution:
  type: static
  static: { apps: [{ appId: billing, endpoints: ["127.0.0.1:${app.port}"] }] }
invocation: { port: 0 }
`);
    components = await startComponents(
      `
- { name: memstate, type: state.memory }
- { name: redisstate, type: state.redis, metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${prefix}" } }
- { name: pubsub, type: pubsub.memory, metadata: { redeliveryDelay: 50ms } }
- { name: memlock, type: lock.memory }
- { name: redislock, type: lock.redis, metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${prefix}" } }
- { name: config, type: configuration.file, metadata: { path: "${configFile}", pollIntervalMs: 100 } }
- { name: seq, type: sequencer.memory }
- { name: secrets, type: secretstores.local.file, metadata: { secretsFile: "${secretsFile}" } }
`,
      logger,
      60_000,
    );
    const appId = () => 'checkout';
    pubsub = new PubSubRuntime({ pubsubs: components.view<PubSub>('pubsub'), appId, logger, retryInitialMs: 50, retryMaxMs: 200 });
    invoker = createInvoker({ port: () => sc.sidecar.listenerPort('capa-invocation'), appId, logger });
    server = await startRuntimeGrpcServer({ host: '127.0.0.1', port: 0, services: { appId, components, pubsub, invoker, logger } });
    client = new Client(String(server.port), '127.0.0.1', { logger: quiet });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    invoker?.close();
    await pubsub?.close();
    await components?.close();
    await sc?.stop();
    await app?.close();
    await deleteRedisPrefix(prefix);
  });

  it('hello.sayHello', async () => {
    expect(await client.hello.sayHello({ name: 'sdk' })).toBe('greetings, sdk');
  });

  for (const storeName of ['memstate', 'redisstate']) {
    describe(`state (${storeName})`, () => {
      const k = (n: string) => `${randomUUID().slice(0, 6)}-${n}`;

      it('save / get / delete; a missing key is null', async () => {
        const key = k('a');
        await client.state.save({ storeName, states: [{ key, value: 'hello' }] });
        const got = await client.state.get({ storeName, key });
        expect(Buffer.from(got!.value).toString()).toBe('hello');
        expect(got!.etag).not.toBe('');
        await client.state.delete({ storeName, key });
        expect(await client.state.get({ storeName, key })).toBeNull();
      });

      it('etags: a save or delete with the current etag succeeds, a stale one is ABORTED', async () => {
        const key = k('e');
        await client.state.save({ storeName, states: { key, value: 'v1' } });
        const first = (await client.state.get({ storeName, key }))!.etag;
        await client.state.save({ storeName, states: { key, value: 'v2', etag: first } });
        const stale = await grpcFailure(client.state.save({ storeName, states: { key, value: 'v3', etag: first } }));
        expect(stale.code).toBe(10); // ABORTED
        const second = (await client.state.get({ storeName, key }))!;
        expect(Buffer.from(second.value).toString()).toBe('v2');
        expect((await grpcFailure(client.state.delete({ storeName, key, etag: first }))).code).toBe(10);
        await client.state.delete({ storeName, key, etag: second.etag });
        expect(await client.state.get({ storeName, key })).toBeNull();
      });

      it('getBulk / deleteBulk', async () => {
        const [a, b] = [k('ba'), k('bb')];
        await client.state.save({ storeName, states: [{ key: a, value: 'A' }, { key: b, value: new Uint8Array([0, 1, 2]) }] });
        const bulk = await client.state.getBulk({ storeName, keys: [a, b, k('missing')] });
        expect(bulk.map((i) => [i.key, Buffer.from(i.value).toString('hex')])).toEqual([
          [a, Buffer.from('A').toString('hex')],
          [b, '000102'],
        ]);
        await client.state.deleteBulk({ storeName, states: [{ key: a }, { key: b }] });
        expect(await client.state.getBulk({ storeName, keys: [a, b] })).toEqual([]);
      });

      it('executeTransaction applies all; a stale etag aborts all', async () => {
        const [a, b] = [k('ta'), k('tb')];
        await client.state.save({ storeName, states: [{ key: b, value: 'old' }] });
        const etagB = (await client.state.get({ storeName, key: b }))!.etag;
        await client.state.executeTransaction({
          storeName,
          operations: [
            { operationType: 'upsert' as any, request: { key: a, value: 'A' } },
            { operationType: 'delete' as any, request: { key: b, etag: etagB } },
          ],
        });
        expect(Buffer.from((await client.state.get({ storeName, key: a }))!.value).toString()).toBe('A');
        expect(await client.state.get({ storeName, key: b })).toBeNull();
        const etagA = (await client.state.get({ storeName, key: a }))!.etag;
        const err = await grpcFailure(
          client.state.executeTransaction({
            storeName,
            operations: [
              { operationType: 'upsert' as any, request: { key: b, value: 'new' } },
              { operationType: 'upsert' as any, request: { key: a, value: 'A2', etag: String(Number(etagA) + 100) } },
            ],
          }),
        );
        expect(err.code).toBe(10);
        expect(await client.state.get({ storeName, key: b })).toBeNull();
      });
    });
  }

  it('an unknown state store is INVALID_ARGUMENT naming it', async () => {
    const e = await grpcFailure(client.state.get({ storeName: 'nostore', key: 'k' }));
    expect([e.code, e.details]).toEqual([3, 'state store nostore is not found']);
  });

  it('pubsub.publish reaches the SDK Server through GrpcAppChannel; a thrown handler (RETRY) gets the event again', async () => {
    const port = await freePort();
    const appServer = new Server(String(port), undefined, { logger: quiet });
    const seen: { data: any; id: string; topic: string; pubsubName: string; specVersion: string }[] = [];
    let failOnce = true;
    appServer.pubsub.subscribe('pubsub', 'orders', async (data, req) => {
      seen.push({ data, id: req.id, topic: req.topic, pubsubName: req.pubsubName, specVersion: req.specVersion });
      if (failOnce) {
        failOnce = false;
        throw new Error('not yet');
      }
    });
    appServer.pubsub.addPubSubSubscription('pubsub', 'orders');
    await appServer.start();
    const channel = new GrpcAppChannel(`127.0.0.1:${port}`, logger);
    try {
      await pubsub.start(channel);
      expect(pubsub.subscriptions().map((s) => `${s.pubsubName}/${s.topic}`)).toContain('pubsub/orders');
      await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'orders', data: { order: 42 } });
      for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toMatchObject({ data: { order: 42 }, topic: 'orders', pubsubName: 'pubsub', specVersion: '1.0' });
      expect(seen[0]!.id).not.toBe('');
      expect(seen[1]!.id).toBe(seen[0]!.id);
      await sleep(150);
      expect(seen).toHaveLength(2);
      const bad = await grpcFailure(client.pubsub.publish({ pubsubName: 'kafka', topic: 'orders', data: {} }));
      expect([bad.code, bad.details]).toEqual([3, 'pubsub kafka is not found']);
    } finally {
      await pubsub.close();
      await channel.close();
      await appServer.close();
    }
  });

  it('configuration get / save / delete, and subscribe receives a change within 1 s; ending the call closes it', async () => {
    const items = await client.configuration.get({ storeName: 'config', appId: 'checkout', keys: ['greeting', 'retries'] });
    expect(items.map((i) => [i.key, i.content]).sort()).toEqual([
      ['greeting', 'hello'],
      ['retries', '3'],
    ]);
    await client.configuration.save({ storeName: 'config', appId: 'checkout', items: [{ key: 'flag', content: 'on' }] });
    expect((await client.configuration.get({ storeName: 'config', appId: 'checkout', keys: ['flag'] }))[0]?.content).toBe('on');
    await client.configuration.delete({ storeName: 'config', appId: 'checkout', keys: ['flag'] });
    expect(await client.configuration.get({ storeName: 'config', appId: 'checkout', keys: ['flag'] })).toEqual([]);

    const changes: { key: string; content: string }[][] = [];
    let closed: Error | undefined | 'open' = 'open';
    const call = client.configuration.subscribe({
      storeName: 'config',
      appId: 'checkout',
      keys: ['greeting'],
      onData: (it) => changes.push(it.map((i) => ({ key: i.key, content: i.content }))),
      onClose: (err) => (closed = err),
    });
    await sleep(150);
    const t0 = Date.now();
    writeFileSync(configFile, 'greeting: hallo\nretries: "3"\n');
    while (changes.length === 0 && Date.now() - t0 < 1000) await sleep(10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(changes[0]).toEqual([{ key: 'greeting', content: 'hallo' }]);
    call.end();
    for (let i = 0; i < 50 && closed === 'open'; i++) await sleep(10);
    expect(closed).toBeUndefined();
  });

  for (const storeName of ['memlock', 'redislock']) {
    it(`lock tryLock / unLock / keepAlive semantics (${storeName})`, async () => {
      const resourceId = `order-${randomUUID().slice(0, 6)}`;
      expect(await client.lock.tryLock({ storeName, resourceId, lockOwner: 'a', expire: 10 })).toBe(true);
      expect(await client.lock.tryLock({ storeName, resourceId, lockOwner: 'b', expire: 10 })).toBe(false);
      const keepAlive = (owner: string) => {
        const req = new RuntimeTypes.LockKeepAliveRequest();
        req.setStoreName(storeName);
        req.setResourceId(resourceId);
        req.setLockOwner(owner);
        req.setExpire(10);
        return raw<InstanceType<typeof RuntimeTypes.LockKeepAliveResponse>>(client, 'lockKeepAlive', req).then((r) => r.getStatus());
      };
      expect(await keepAlive('a')).toBe(RuntimeTypes.LockKeepAliveResponse.Status.SUCCESS);
      expect(await keepAlive('b')).toBe(RuntimeTypes.LockKeepAliveResponse.Status.LOCK_BELONG_TO_OTHERS);
      expect((await client.lock.unLock({ storeName, resourceId, lockOwner: 'b' })).status).toBe(RuntimeTypes.UnlockResponse.Status.LOCK_BELONG_TO_OTHERS);
      expect((await client.lock.unLock({ storeName, resourceId, lockOwner: 'a' })).status).toBe(RuntimeTypes.UnlockResponse.Status.SUCCESS);
      expect((await client.lock.unLock({ storeName, resourceId, lockOwner: 'a' })).status).toBe(RuntimeTypes.UnlockResponse.Status.LOCK_UNEXIST);
      expect(await keepAlive('a')).toBe(RuntimeTypes.LockKeepAliveResponse.Status.LOCK_UNEXIST);
      expect(await client.lock.tryLock({ storeName, resourceId, lockOwner: 'b', expire: 1 })).toBe(true);
      await client.lock.unLock({ storeName, resourceId, lockOwner: 'b' });
      const bad = await grpcFailure(client.lock.tryLock({ storeName, resourceId, lockOwner: 'a', expire: 0 }));
      expect([bad.code, bad.details]).toEqual([3, `Expire is not positive in lock store ${storeName}`]);
    });
  }

  it('sequencer.getNextId is strictly increasing, as a string', async () => {
    const ids: bigint[] = [];
    for (let i = 0; i < 10; i++) {
      const id = await client.sequencer.getNextId({ storeName: 'seq', key: 'orders' });
      expect(typeof id).toBe('string');
      ids.push(BigInt(id));
    }
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it('secrets GetSecret / GetBulkSecret through the SDK\'s generated client', async () => {
    const req = new RuntimeTypes.GetSecretRequest();
    req.setStoreName('secrets');
    req.setKey('dbPassword');
    const one = await raw<InstanceType<typeof RuntimeTypes.GetSecretResponse>>(client, 'getSecret', req);
    expect(Object.fromEntries(one.getDataMap().entries())).toEqual({ dbPassword: 's3cret' });
    const bulkReq = new RuntimeTypes.GetBulkSecretRequest();
    bulkReq.setStoreName('secrets');
    const bulk = await raw<InstanceType<typeof RuntimeTypes.GetBulkSecretResponse>>(client, 'getBulkSecret', bulkReq);
    const all = Object.fromEntries([...bulk.getDataMap().entries()].map(([name, r]) => [name, Object.fromEntries(r.getSecretsMap().entries())]));
    expect(all).toEqual({ dbPassword: { dbPassword: 's3cret' }, token: { token: 't0k' } });
    req.setKey('missing');
    expect((await grpcFailure(raw(client, 'getSecret', req))).code).toBe(5); // NOT_FOUND
  });

  it('invoker.invoke reaches the app through the real Invoker and comes back parsed', async () => {
    const res = await client.invoker.invoke({ id: 'billing', method: '/pay', httpVerb: RuntimeTypes.HTTPExtension.Verb.POST, data: { amount: 5 } });
    expect(res.contentType).toBe('application/json');
    const seen = res.content as { method: string; url: string; body: string; headers: Record<string, string> };
    expect([seen.method, seen.url, JSON.parse(seen.body)]).toEqual(['POST', '/pay', { amount: 5 }]);
    expect(seen.headers['content-type']).toBe('application/json');
    const get = await client.invoker.invoke({ id: 'billing', method: 'ping' });
    expect((get.content as { method: string }).method).toBe('GET');
  });

  it('file and binding calls are UNIMPLEMENTED', async () => {
    const list = await grpcFailure(client.file.list({ storeName: 'oss', name: 'dir' }));
    expect(list.code).toBe(12);
    expect(list.details).toMatch(/file API arrives with a later issue/);
    expect((await grpcFailure(client.file.delete({ storeName: 'oss', name: 'f' }))).code).toBe(12);
    const stream = await client.file.get({ storeName: 'oss', name: 'f' });
    const err = await new Promise<{ code: number }>((resolve) => {
      stream.on('error', resolve);
      stream.resume();
    });
    expect(err.code).toBe(12);
    const binding = await grpcFailure(client.binding.invoke({ name: 'kafka', operation: 'create', data: 'x', metadata: {} }));
    expect(binding.code).toBe(12);
    expect(binding.details).toMatch(/bindings API arrives with a later issue/);
  });
});
