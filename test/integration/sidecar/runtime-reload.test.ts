/**
 * Hot reload of `components:` in a real sidecar, by editing the file it watches: a component
 * added is usable over HTTP and gRPC within 2 s (the unchanged ones keep their data), a removed one
 * is unknown to both front ends, a changed pubsub re-subscribes the app's subscriptions on the new
 * backend, an invalid edit is rejected and logged while the running components keep working, and
 * edits made while an earlier one is still being applied (a slow backend) are applied in order.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import { Client } from 'layotto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sidecar } from '../../../src/sidecar.js';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';
import { SERVICE_PORTS_ZERO, writeTempConfig } from '../../helpers/sidecar.js';
import { eventually, memoryLogger, startTestApp } from '../../helpers/runtime.js';
import { sleep, waitFor } from '../../helpers/http.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const prefix = `capa-test-reload-${randomUUID().slice(0, 8)}:`;
const [REDIS_ADDR, REDIS_PORT] = REDIS_HOST.split(':') as [string, string];

const STATE = '  - { name: statestore, type: state.memory }';
const MEMORY_PUBSUB = '  - { name: pubsub, type: pubsub.memory }';
const redisPubSub = (host: string, extra = '') => `  - { name: pubsub, type: pubsub.redis, metadata: { redisHost: "${host}", keyPrefix: "${prefix}"${extra ? `, ${extra}` : ''} } }`;

/** A TCP relay to Redis that holds each new connection `delayMs` before relaying it: a backend slow to connect. */
async function slowRedis(delayMs: number): Promise<{ host: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    setTimeout(() => {
      if (client.destroyed) return;
      const up = net.connect(Number(REDIS_PORT), REDIS_ADDR);
      sockets.add(up);
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
      client.pipe(up).pipe(client);
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('components hot reload in a running sidecar', () => {
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let sidecar: Sidecar;
  let file: string;
  let lines: Record<string, any>[];
  let client: Client;
  let redis: Redis;
  let base: string;
  let appConfig: string;

  /** Replace the watched file with these components (the rest of the config unchanged). */
  const edit = (...components: string[]) => writeFileSync(file, `${appConfig}components:\n${components.join('\n')}\n`);

  const http = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  };

  const ordersReceived = () => app.received.filter((r) => r.path === '/orders').map((r) => r.json.data);

  /** Until metadata shows `pubsub` of `type` initialised and the app's subscription on it. */
  const pubsubReady = (type: string, ms = 4000) =>
    waitFor(async () => {
      const md = (await http('GET', '/v1.0/metadata')).json;
      const ps = md.components.find((c: any) => c.name === 'pubsub');
      return ps?.type === type && ps.error === undefined && md.subscriptions.some((s: any) => `${s.pubsubname}/${s.topic}` === 'pubsub/orders');
    }, ms);

  const grpcFailure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (e: { code: number; details: string }) => e,
    );

  beforeAll(async () => {
    app = await startTestApp((r) => {
      if (r.path === '/dapr/subscribe') return { status: 200, body: [{ pubsubname: 'pubsub', topic: 'orders', route: '/orders' }] };
      if (r.path === '/orders') return { status: 200, body: { status: 'SUCCESS' } };
      return { status: 404 };
    });
    appConfig = `${SERVICE_PORTS_ZERO}app: { id: reload-app, port: ${app.port} }\n`;
    file = writeTempConfig(`${appConfig}components:\n${STATE}\n${MEMORY_PUBSUB}\n`);
    const mem = memoryLogger();
    lines = mem.lines;
    sidecar = await Sidecar.start({ configPath: file, logger: mem.logger });
    base = `http://127.0.0.1:${sidecar.runtimeHttpPort}`;
    client = new Client(String(sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
    redis = new Redis({ host: REDIS_ADDR, port: Number(REDIS_PORT), lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    await pubsubReady('pubsub.memory');
  });
  afterAll(async () => {
    client?.close();
    redis?.disconnect();
    await sidecar?.stop();
    await app?.close();
    await deleteRedisPrefix(prefix);
  });

  it('a component added to the file is usable over HTTP and gRPC within 2 s; the unchanged ones keep their data', async () => {
    expect((await http('POST', '/v1.0/state/statestore', [{ key: 'kept', value: 'before reload' }])).status).toBe(204);
    expect((await http('GET', '/v1.0/state/added/k')).json.errorCode).toBe('ERR_STATE_STORE_NOT_FOUND');
    const t0 = Date.now();
    edit(STATE, MEMORY_PUBSUB, '  - { name: added, type: state.memory }', '  - { name: addedlock, type: lock.memory }');
    await waitFor(async () => (await http('GET', '/v1.0/state/added/k')).status === 204, 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await http('POST', '/v1.0/state/added', [{ key: 'k', value: { n: 1 } }])).status).toBe(204);
    expect(Buffer.from((await client.state.get({ storeName: 'added', key: 'k' }))!.value).toString()).toBe('{"n":1}');
    expect(await client.lock.tryLock({ storeName: 'addedlock', resourceId: 'r', lockOwner: 'grpc', expire: 10 })).toBe(true);
    expect((await http('POST', '/v1.0-alpha1/lock/addedlock', { resourceId: 'r', lockOwner: 'http', expiryInSeconds: 10 })).json).toEqual({ success: false });
    expect((await http('GET', '/v1.0/state/statestore/kept')).json).toBe('before reload');
    expect(sidecar.runtimeHttpPort).toBe(Number(new URL(base).port));
  });

  it('a component removed from the file is unknown to both front ends, naming it', async () => {
    edit(STATE, MEMORY_PUBSUB);
    await waitFor(async () => (await http('GET', '/v1.0/state/added/k')).status === 400, 2000);
    expect((await http('GET', '/v1.0/state/added/k')).json).toEqual({ errorCode: 'ERR_STATE_STORE_NOT_FOUND', message: 'state store added is not found' });
    const e = await grpcFailure(client.state.get({ storeName: 'added', key: 'k' }));
    expect([e.code, e.details]).toEqual([3, 'state store added is not found']); // INVALID_ARGUMENT
    // The last lock store went with it: the block is not configured any more (FAILED_PRECONDITION).
    const l = await grpcFailure(client.lock.tryLock({ storeName: 'addedlock', resourceId: 'r', lockOwner: 'grpc', expire: 10 }));
    expect([l.code, l.details]).toEqual([9, 'lock store is not configured']);
    expect((await http('GET', '/v1.0/state/statestore/kept')).json).toBe('before reload');
  });

  it('pubsub.memory → pubsub.redis: the app is subscribed again on Redis and a publish after the change is delivered', async () => {
    expect((await http('POST', '/v1.0/publish/pubsub/orders', { n: 'memory' })).status).toBe(204);
    await eventually('the event through pubsub.memory', () => ordersReceived().length === 1);
    edit(STATE, redisPubSub(REDIS_HOST));
    await pubsubReady('pubsub.redis');
    await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'orders', data: { n: 'redis' } });
    await eventually('the event through pubsub.redis', () => ordersReceived().length === 2, 3000);
    expect(ordersReceived()).toEqual([{ n: 'memory' }, { n: 'redis' }]);
    expect(await redis.xlen(`${prefix}orders`)).toBe(1);
  });

  it('an edit with an unknown component type is rejected and logged; the running components keep working', async () => {
    const version = sidecar.snapshot.version;
    edit(STATE, redisPubSub(REDIS_HOST), '  - { name: docs, type: state.mongo }');
    await waitFor(() => lines.some((l) => l.msg === 'configuration rejected; the running configuration stays in force'), 2000);
    const rejected = lines.find((l) => l.msg === 'configuration rejected; the running configuration stays in force')!;
    expect(rejected.error).toMatch(/components\[2\]\.type: unknown component type 'state\.mongo'/);
    expect(sidecar.snapshot.version).toBe(version);
    expect((await http('GET', '/v1.0/state/statestore/kept')).json).toBe('before reload');
    expect((await http('GET', '/v1.0/state/docs/k')).json.errorCode).toBe('ERR_STATE_STORE_NOT_FOUND');
    expect((await http('POST', '/v1.0/publish/pubsub/orders', { n: 'after bad edit' })).status).toBe(204);
    await eventually('the event after the rejected edit', () => ordersReceived().length === 3, 3000);
  });

  it('edits made while a slow backend is still starting are applied in order; the last one is in force and delivers', async () => {
    edit(STATE, MEMORY_PUBSUB);
    await pubsubReady('pubsub.memory');
    const slow = await slowRedis(700);
    const slowPubSub = redisPubSub(slow.host, 'connectTimeoutMs: 1500');
    const applied = () => lines.filter((l) => l.msg === 'configuration applied').map((l) => Number(l.version));
    const appliedBefore = applied().length;
    try {
      const before = ordersReceived().length;
      edit(STATE, slowPubSub); // A: applying it takes ~700 ms (the connect)
      await sleep(350);
      edit(STATE, MEMORY_PUBSUB); // B: while A is being applied
      await pubsubReady('pubsub.memory', 5000);
      await sleep(200);
      edit(STATE, slowPubSub); // C: A again, once B is in force
      await pubsubReady('pubsub.redis', 5000);
      await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'orders', data: { n: 'last edit' } });
      await eventually('the event after the last edit', () => ordersReceived().length === before + 1, 3000);
      expect(ordersReceived().at(-1)).toEqual({ n: 'last edit' });
      const versions = applied().slice(appliedBefore);
      expect(versions.length).toBeGreaterThanOrEqual(2); // 3 unless the watcher merged two edits
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    } finally {
      edit(STATE, MEMORY_PUBSUB);
      await pubsubReady('pubsub.memory').catch(() => undefined);
      await slow.close();
    }
  });
});

describe('the gRPC front end of a sidecar without components', () => {
  it('is not started for a plain proxy, and starts when a reload adds the first component', async () => {
    const file = writeTempConfig(`${SERVICE_PORTS_ZERO}app: { id: proxy-only }\n`);
    const sidecar = await Sidecar.start({ configPath: file, logger: memoryLogger().logger });
    try {
      expect(sidecar.runtimeGrpcPort).toBe(0);
      expect(sidecar.runtimeHttpPort).toBeGreaterThan(0);
      writeFileSync(file, `${SERVICE_PORTS_ZERO}app: { id: proxy-only }\ncomponents:\n${STATE}\n`);
      await waitFor(() => sidecar.runtimeGrpcPort > 0, 4000);
      const client = new Client(String(sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
      try {
        await client.state.save({ storeName: 'statestore', states: [{ key: 'k', value: 'v' }] });
        expect(Buffer.from((await client.state.get({ storeName: 'statestore', key: 'k' }))!.value).toString()).toBe('v');
      } finally {
        client.close();
      }
    } finally {
      await sidecar.stop();
    }
  });
});
