/**
 * Dapr's publish API and delivery to an HTTP app, end to end over real HTTP: the app declares its
 * subscriptions on /dapr/subscribe, events published through /v1.0/publish arrive as CloudEvents
 * on its routes, its replies drive redelivery and dead-lettering; in-memory and real Redis
 * Streams backends; /v1.0/metadata lists the subscriptions.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';
import { eventually, readJson, startRuntime, startTestApp, type AppReply, type Received, type RuntimeUnderTest } from '../../helpers/runtime.js';

const prefix = `capa-test-pshttp-${randomUUID().slice(0, 8)}:`;

const COMPONENTS = `
- name: pubsub
  type: pubsub.memory
  metadata: { redeliveryDelay: 10ms }
- name: redispubsub
  type: pubsub.redis
  metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${prefix}", processingTimeout: 200ms, redeliverInterval: 100ms }
- name: statestore
  type: state.memory
`;

const SUBSCRIPTIONS = [
  { pubsubname: 'pubsub', topic: 'orders', route: '/orders' },
  { pubsubname: 'pubsub', topic: 'flaky', routes: { default: '/flaky' }, deadLetterTopic: 'dead', metadata: { maxDeliveries: '3' } },
  { pubsubname: 'pubsub', topic: 'gone', route: '/no-such-route', deadLetterTopic: 'dead' },
  { pubsubname: 'pubsub', topic: 'dead', route: '/dead' },
  { pubsubname: 'pubsub', topic: 'raw', route: '/raw', metadata: { rawPayload: 'true' } },
  { pubsubname: 'redispubsub', topic: 'orders', route: '/redis-orders' },
  { pubsubname: 'kafka', topic: 'orders', route: '/never' },
];

describe('runtime HTTP API: pub/sub', () => {
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let rt: RuntimeUnderTest;
  let flakyCalls = 0;

  const at = (path: string): Received[] => app.received.filter((r) => r.path === path);
  const post = (path: string, body?: string | Buffer, headers: Record<string, string> = {}) => fetch(rt.base + path, { method: 'POST', body, headers });

  beforeAll(async () => {
    app = await startTestApp((r): AppReply => {
      if (r.path === '/dapr/subscribe') return { status: 200, body: SUBSCRIPTIONS };
      if (r.path === '/no-such-route') return { status: 404 };
      if (r.path === '/flaky') return ++flakyCalls === 1 ? { status: 500 } : { status: 200, body: { status: 'RETRY' } };
      return { status: 200, body: { status: 'SUCCESS' } };
    });
    rt = await startRuntime(COMPONENTS, { appId: 'checkout', appPort: app.port });
    await rt.subscribed;
  });
  afterAll(async () => {
    await rt?.close();
    await app?.close();
    await deleteRedisPrefix(prefix);
  });

  it('publish → 204; the app gets a CloudEvent with the JSON data on its route', async () => {
    const r = await post('/v1.0/publish/pubsub/orders', JSON.stringify({ orderId: 1 }), { 'content-type': 'application/json' });
    expect(r.status).toBe(204);
    await eventually('delivery', () => at('/orders').length === 1);
    const got = at('/orders')[0]!;
    expect(got.headers['content-type']).toBe('application/cloudevents+json');
    expect(got.json).toMatchObject({ specversion: '1.0', type: 'com.dapr.event.sent', source: 'checkout', topic: 'orders', pubsubname: 'pubsub', datacontenttype: 'application/json', data: { orderId: 1 } });
  });

  it('text, an app-made CloudEvent, trace headers and cloudevent.* metadata', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await post('/v1.0/publish/pubsub/orders?metadata.cloudevent.type=order.text', 'plain words', { 'content-type': 'text/plain', traceparent: tp });
    await post('/v1.0/publish/pubsub/orders', JSON.stringify({ id: 'ce-1', type: 'mine', data: 'x' }), { 'content-type': 'application/cloudevents+json' });
    await eventually('deliveries', () => at('/orders').length === 3);
    const [, text, ce] = at('/orders');
    expect(text!.json).toMatchObject({ data: 'plain words', datacontenttype: 'text/plain', type: 'order.text', traceparent: tp });
    expect(text!.headers.traceparent).toBe(tp);
    expect(ce!.json).toMatchObject({ id: 'ce-1', type: 'mine', data: 'x', source: 'checkout', topic: 'orders' });
  });

  it('a real Redis Streams pubsub delivers too', async () => {
    expect((await post('/v1.0/publish/redispubsub/orders', '{"r":1}', { 'content-type': 'application/json' })).status).toBe(204);
    await eventually('redis delivery', () => at('/redis-orders').length === 1);
    expect(at('/redis-orders')[0]!.json).toMatchObject({ pubsubname: 'redispubsub', data: { r: 1 } });
  });

  it('an app answering 500 then RETRY gets it again up to maxDeliveries, then it goes to the dead-letter topic', async () => {
    await post('/v1.0/publish/pubsub/flaky', '{"f":1}', { 'content-type': 'application/json' });
    await eventually('dead letter', () => at('/dead').some((r) => r.json?.topic === 'flaky'));
    expect(at('/flaky')).toHaveLength(3);
    expect(new Set(at('/flaky').map((r) => r.json.id)).size).toBe(1);
    expect(at('/dead').find((r) => r.json.topic === 'flaky')!.json.data).toEqual({ f: 1 });
  });

  it('an app answering 404 drops the event at once (to the dead-letter topic)', async () => {
    await post('/v1.0/publish/pubsub/gone', 'g', { 'content-type': 'text/plain' });
    await eventually('dead letter', () => at('/dead').some((r) => r.json?.topic === 'gone'));
    expect(at('/no-such-route')).toHaveLength(1);
  });

  it('rawPayload: published without an envelope, delivered wrapped with data_base64', async () => {
    expect((await post('/v1.0/publish/pubsub/raw?metadata.rawPayload=true', '{"legacy":true}', { 'content-type': 'application/json' })).status).toBe(204);
    await eventually('raw delivery', () => at('/raw').length === 1);
    const env = at('/raw')[0]!.json;
    expect(env.datacontenttype).toBe('application/octet-stream');
    expect(Buffer.from(env.data_base64, 'base64').toString()).toBe('{"legacy":true}');
  });

  it('bulk publish (alpha) → 204, each entry delivered; a bad entry → 400 naming it', async () => {
    const entries = [
      { entryId: '1', event: { b: 1 }, contentType: 'application/json' },
      { entryId: '2', event: 'two', contentType: 'text/plain' },
    ];
    const before = at('/orders').length;
    const r = await post('/v1.0-alpha1/publish/bulk/pubsub/orders', JSON.stringify(entries), { 'content-type': 'application/json' });
    expect(r.status).toBe(204);
    await eventually('bulk deliveries', () => at('/orders').length === before + 2);
    expect(at('/orders').slice(before).map((x) => x.json.data)).toEqual([{ b: 1 }, 'two']);
    const bad = await post('/v1.0-alpha1/publish/bulk/pubsub/orders', JSON.stringify([{ entryId: '1', event: 1, contentType: 'application/json' }, { entryId: '1', event: 2, contentType: 'application/json' }]));
    expect(bad.status).toBe(400);
    expect(await readJson(bad)).toMatchObject({ errorCode: 'ERR_PUBSUB_EVENTS_SER', message: expect.stringContaining('[1].entryId: 1 is duplicated') });
  });

  it('errors: unknown pubsub 404 ERR_PUBSUB_NOT_FOUND, empty topic 404, bad CloudEvent 400, wrong method 405', async () => {
    const unknown = await post('/v1.0/publish/nope/orders', 'x');
    expect(unknown.status).toBe(404);
    expect(await readJson(unknown)).toEqual({ errorCode: 'ERR_PUBSUB_NOT_FOUND', message: 'pubsub nope not found' });
    const noTopic = await post('/v1.0/publish/pubsub', 'x');
    expect(noTopic.status).toBe(404);
    expect((await readJson(noTopic)).errorCode).toBe('ERR_TOPIC_NAME_EMPTY');
    const badCe = await post('/v1.0/publish/pubsub/orders', 'not json', { 'content-type': 'application/cloudevents+json' });
    expect(badCe.status).toBe(400);
    expect((await readJson(badCe)).errorCode).toBe('ERR_PUBSUB_CLOUD_EVENTS_SER');
    expect((await fetch(`${rt.base}/v1.0/publish/pubsub/orders`)).status).toBe(405);
  });

  it('a pubsub whose backend is down → 500 ERR_PUBSUB_PUBLISH_MESSAGE with the reason', async () => {
    const down = await startRuntime(`
- name: downbus
  type: pubsub.redis
  metadata: { redisHost: "127.0.0.1:1", connectTimeoutMs: 200, timeoutMs: 300 }
`);
    try {
      const r = await fetch(`${down.base}/v1.0/publish/downbus/t`, { method: 'POST', body: 'x' });
      expect(r.status).toBe(500);
      const body = await readJson(r);
      expect(body.errorCode).toBe('ERR_PUBSUB_PUBLISH_MESSAGE');
      expect(body.message).toMatch(/error when publish to topic t in pubsub downbus: .+/);
    } finally {
      await down.close();
    }
  });

  it('no pubsub configured → 400 ERR_PUBSUB_NOT_CONFIGURED', async () => {
    const none = await startRuntime('- name: s\n  type: state.memory\n');
    try {
      const r = await fetch(`${none.base}/v1.0/publish/pubsub/t`, { method: 'POST', body: 'x' });
      expect(r.status).toBe(400);
      expect((await readJson(r)).errorCode).toBe('ERR_PUBSUB_NOT_CONFIGURED');
    } finally {
      await none.close();
    }
  });

  it('metadata lists the active subscriptions (not the one to an unknown pubsub, which is logged)', async () => {
    const m = await readJson(await fetch(`${rt.base}/v1.0/metadata`));
    expect(m.id).toBe('checkout');
    expect(m.subscriptions).toHaveLength(SUBSCRIPTIONS.length - 1);
    expect(m.subscriptions).toContainEqual({ pubsubname: 'pubsub', topic: 'flaky', metadata: { maxDeliveries: '3' }, rules: [{ match: '', path: '/flaky' }], deadLetterTopic: 'dead', type: 'PROGRAMMATIC' });
    expect(m.subscriptions.some((s: any) => s.pubsubname === 'kafka')).toBe(false);
    expect(rt.lines.some((l) => l.pubsub === 'kafka' && /not configured; subscription skipped/.test(l.msg))).toBe(true);
  });
});
