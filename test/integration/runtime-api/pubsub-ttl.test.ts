/**
 * Message TTL (Dapr's `ttlInSeconds` publish metadata) end to end over real HTTP, on every
 * backend: a message published with ttlInSeconds=1 that reaches its subscriber only after it
 * expired is acknowledged and never delivered; a message without a TTL (or with a long one) still
 * is. Durable backends (real NATS JetStream, real Redis Streams) are published to before the app
 * is up, so the subscription starts after the expiry; on pubsub.memory a slow subscriber holds
 * the queue past it. The acknowledgement is checked on the servers (nothing pending). Also:
 * single and bulk publish, raw payloads, and the 400 for an invalid ttlInSeconds.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { connect } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { NATS_URL, deleteJetStream } from '../../conformance/pubsub/matrix.js';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';
import { eventually, freePort, startRuntime, startTestApp, type AppReply, type Received, type RuntimeUnderTest } from '../../helpers/runtime.js';

const run = randomUUID().slice(0, 8);
const stream = `capa-test-ttl-${run}`;
const redisPrefix = `capa-test-ttl-${run}:`;
const APP_ID = 'ttl-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function publish(rt: RuntimeUnderTest, topic: string, body: unknown, query = '', contentType = 'application/json'): Promise<Response> {
  return fetch(`${rt.base}/v1.0/publish/pubsub/${topic}${query}`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function publishBulk(rt: RuntimeUnderTest, topic: string, entries: unknown[], query = ''): Promise<Response> {
  return fetch(`${rt.base}/v1.0-alpha1/publish/bulk/pubsub/${topic}${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(entries) });
}

/** What the app got on `path`: each event's data (`n`), raw payloads decoded. */
function ns(received: Received[], path: string): unknown[] {
  return received
    .filter((r) => r.path === path)
    .map((r) => (r.json.data_base64 !== undefined ? Buffer.from(r.json.data_base64, 'base64').toString() : r.json.data.n))
    .sort();
}

/** How many of the group's messages on `topic` are still unacknowledged at the backend. */
type Pending = (topic: string) => Promise<number>;

const durable: { name: string; yaml: string; pending: Pending; cleanup: () => Promise<void> }[] = [
  {
    name: 'pubsub.jetstream',
    yaml: `- name: pubsub\n  type: pubsub.jetstream\n  metadata: { natsURL: "${NATS_URL}", streamName: ${stream}, memoryStorage: "true", redeliveryDelay: 50ms }`,
    pending: async (topic) => {
      const nc = await connect({ servers: NATS_URL });
      try {
        const jsm = await nc.jetstreamManager();
        const c = (await jsm.consumers.list(stream).next()).find((x) => x.config.filter_subject?.endsWith(`.${topic}`));
        if (!c) throw new Error(`no consumer for ${topic}`);
        const info = await jsm.consumers.info(stream, c.name);
        return info.num_ack_pending + info.num_pending;
      } finally {
        await nc.close();
      }
    },
    cleanup: () => deleteJetStream(stream),
  },
  {
    name: 'pubsub.redis',
    yaml: `- name: pubsub\n  type: pubsub.redis\n  metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${redisPrefix}", processingTimeout: 250ms, redeliverInterval: 50ms }`,
    pending: async (topic) => {
      const [host, port] = REDIS_HOST.split(':');
      const redis = new Redis({ host, port: Number(port), lazyConnect: true });
      try {
        await redis.connect();
        const [count] = (await redis.xpending(`${redisPrefix}${topic}`, APP_ID)) as [number];
        return Number(count);
      } finally {
        redis.disconnect();
      }
    },
    cleanup: () => deleteRedisPrefix(redisPrefix),
  },
];

afterAll(async () => {
  for (const b of durable) await b.cleanup();
});

describe.each(durable)('message TTL on $name: the subscriber is not consuming yet when the TTL runs out', ({ yaml, pending }) => {
  it('expired messages (single, bulk, raw) are acknowledged and never delivered; messages without a TTL or with a long one are', async () => {
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const rawTopic = `${topic}-raw`;
    const appPort = await freePort(); // nothing listens yet: the runtime keeps asking for the subscriptions
    const rt = await startRuntime(yaml, { appId: APP_ID, appPort });
    let app: Awaited<ReturnType<typeof startTestApp>> | undefined;
    try {
      expect((await publish(rt, topic, { n: 1 }, '?metadata.ttlInSeconds=1')).status).toBe(204);
      expect((await publish(rt, topic, { n: 2 })).status).toBe(204);
      expect((await publish(rt, topic, { n: 3 }, '?metadata.ttlInSeconds=60')).status).toBe(204);
      const bulk = [
        { entryId: 'a', event: { n: 4 }, contentType: 'application/json', metadata: { ttlInSeconds: '1' } },
        { entryId: 'b', event: { n: 5 }, contentType: 'application/json' },
      ];
      expect((await publishBulk(rt, topic, bulk)).status).toBe(204);
      expect((await publish(rt, rawTopic, 'raw-expired', '?metadata.rawPayload=true&metadata.ttlInSeconds=1', 'text/plain')).status).toBe(204);
      expect((await publish(rt, rawTopic, 'raw-kept', '?metadata.rawPayload=true', 'text/plain')).status).toBe(204);
      await sleep(1200); // every ttlInSeconds=1 message has expired now

      const subs = [
        { pubsubname: 'pubsub', topic, route: '/orders' },
        { pubsubname: 'pubsub', topic: rawTopic, route: '/raw', metadata: { rawPayload: 'true' } },
      ];
      app = await startTestApp((r): AppReply => (r.path === '/dapr/subscribe' ? { status: 200, body: subs } : { status: 200, body: { status: 'SUCCESS' } }), appPort);
      await rt.subscribed;
      await eventually('the live messages', () => ns(app!.received, '/orders').length === 3 && ns(app!.received, '/raw').length === 1, 10_000);
      const end = Date.now() + 3000;
      while (((await pending(topic)) > 0 || (await pending(rawTopic)) > 0) && Date.now() < end) await sleep(50);
      expect(await pending(topic)).toBe(0);
      expect(await pending(rawTopic)).toBe(0);
      await sleep(400); // past redeliveryDelay / processingTimeout: an unacknowledged message would be back
      expect(ns(app.received, '/orders')).toEqual([2, 3, 5]);
      expect(ns(app.received, '/raw')).toEqual(['raw-kept']);
      const kept = app.received.find((r) => r.json?.data?.n === 3)!;
      expect(Date.parse(kept.json.expiration)).toBeGreaterThan(Date.now() + 50_000);
      expect(app.received.find((r) => r.json?.data?.n === 2)!.json.expiration).toBeUndefined();
    } finally {
      await rt.close();
      await app?.close();
    }
  });
});

describe('message TTL on pubsub.memory: a slow subscriber', () => {
  it('a message whose TTL runs out while it waits behind a slow one is acknowledged without delivery; the next one is delivered', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const app = await startTestApp(async (r): Promise<AppReply> => {
      if (r.path === '/dapr/subscribe') return { status: 200, body: [{ pubsubname: 'pubsub', topic: 'slow', route: '/slow' }] };
      if (r.json?.data?.n === 0) await held; // the app is busy with the first message
      return { status: 200, body: { status: 'SUCCESS' } };
    });
    // concurrency 1: one message in the app at a time, the rest wait in the group's queue.
    const rt = await startRuntime('- name: pubsub\n  type: pubsub.memory\n  metadata: { concurrency: 1, redeliveryDelay: 20ms }', { appPort: app.port });
    try {
      await rt.subscribed;
      expect((await publish(rt, 'slow', { n: 0 })).status).toBe(204);
      await eventually('the slow one in the app', () => ns(app.received, '/slow').length === 1);
      expect((await publish(rt, 'slow', { n: 1 }, '?metadata.ttlInSeconds=1')).status).toBe(204);
      expect((await publish(rt, 'slow', { n: 2 })).status).toBe(204);
      expect((await publish(rt, 'slow', { n: 3 }, '?metadata.ttlInSeconds=30')).status).toBe(204);
      await sleep(1200);
      release();
      await eventually('the live ones', () => ns(app.received, '/slow').length === 3);
      await sleep(200);
      expect(ns(app.received, '/slow')).toEqual([0, 2, 3]);
      expect(rt.lines.some((l) => l.level === 20 && /it expired at/.test(l.reason))).toBe(true);
    } finally {
      release();
      await rt.close();
      await app.close();
    }
  });
});

describe('an invalid ttlInSeconds', () => {
  it('is a 400 naming the value, for a publish and for a bulk publish (request-wide or per entry); nothing is published', async () => {
    const app = await startTestApp((r): AppReply => (r.path === '/dapr/subscribe' ? { status: 200, body: [{ pubsubname: 'pubsub', topic: 't', route: '/t' }] } : { status: 200 }));
    const rt = await startRuntime('- name: pubsub\n  type: pubsub.memory', { appPort: app.port });
    try {
      await rt.subscribed;
      for (const [v, why] of [['abc', "must be a valid integer: actual is 'abc'"], ['0', 'must be higher than zero: actual is 0'], ['-5', 'must be higher than zero: actual is -5'], ['1.5', "must be a valid integer: actual is '1.5'"]]) {
        const r = await publish(rt, 't', { n: 1 }, `?metadata.ttlInSeconds=${encodeURIComponent(v!)}`);
        expect(r.status).toBe(400);
        const body = (await r.json()) as { errorCode: string; message: string };
        expect(body.errorCode).toBe('ERR_PUBSUB_PUBLISH_MESSAGE');
        expect(body.message).toContain(`ttlInSeconds value ${why}`);
      }
      const ok = { entryId: 'ok', event: { n: 1 }, contentType: 'application/json' };
      const perEntry = await publishBulk(rt, 't', [ok, { entryId: 'bad', event: { n: 2 }, contentType: 'application/json', metadata: { ttlInSeconds: 'never' } }]);
      expect(perEntry.status).toBe(400);
      expect(await perEntry.json()).toMatchObject({ errorCode: 'ERR_PUBSUB_EVENTS_SER', message: expect.stringContaining("[1].metadata.ttlInSeconds: ttlInSeconds value must be a valid integer: actual is 'never'") });
      const common = await publishBulk(rt, 't', [ok], '?metadata.ttlInSeconds=0');
      expect(common.status).toBe(400);
      expect(await common.json()).toMatchObject({ errorCode: 'ERR_PUBSUB_EVENTS_SER', message: expect.stringContaining('metadata.ttlInSeconds: ttlInSeconds value must be higher than zero: actual is 0') });
      await sleep(100);
      expect(app.received.filter((r) => r.path === '/t')).toHaveLength(0);
    } finally {
      await rt.close();
      await app.close();
    }
  });
});
