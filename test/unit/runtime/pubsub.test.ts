/** PubSubRuntime over the real pubsub.memory: publish, the app's subscriptions, retries, close. */
import { afterEach, describe, expect, it } from 'vitest';
import { ComponentError } from '../../../src/components/errors.js';
import type { ComponentManager } from '../../../src/components/manager.js';
import type { Message, PubSub } from '../../../src/components/pubsub/pubsub.js';
import type { AppChannel, AppSubscription, TopicEvent } from '../../../src/runtime/app-channel.js';
import { PubSubRuntime } from '../../../src/runtime/pubsub.js';
import { eventually, memoryLogger, startComponents } from '../../helpers/runtime.js';

const YAML = `
- name: bus
  type: pubsub.memory
  metadata: { redeliveryDelay: 5ms }
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(appId = 'checkout') {
  const { logger, lines } = memoryLogger();
  const cm: ComponentManager = await startComponents(YAML, logger);
  const rt = new PubSubRuntime({ pubsubs: cm.view<PubSub>('pubsub'), appId: () => appId, logger, retryInitialMs: 10, retryMaxMs: 40 });
  cleanups.push(() => cm.close(), () => rt.close());
  return { cm, rt, lines, bus: cm.component<PubSub>('pubsub', 'bus')! };
}

/** An app that is unreachable for the first `failures` listings, then declares `subs`. */
function app(subs: AppSubscription[], failures = 0): AppChannel & { events: TopicEvent[]; listings: number } {
  const ch = {
    protocol: 'http' as const,
    events: [] as TopicEvent[],
    listings: 0,
    listSubscriptions: async () => {
      ch.listings++;
      if (ch.listings <= failures) throw new Error('ECONNREFUSED');
      return subs;
    },
    deliver: async (_s: AppSubscription, e: TopicEvent) => {
      ch.events.push(e);
      return 'SUCCESS' as const;
    },
    close: async () => undefined,
  };
  return ch;
}

const orders: AppSubscription = { pubsubName: 'bus', topic: 'orders', route: '/orders', metadata: {} };

describe('PubSubRuntime.publish', () => {
  it('stores a CloudEvent with the app id as source on the named pubsub', async () => {
    const { rt, bus } = await setup();
    const got: Message[] = [];
    await bus.subscribe({ topic: 'orders', consumerGroup: 'g' }, async (m) => (got.push(m), 'SUCCESS'));
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('{"a":1}'), contentType: 'application/json' });
    await eventually('message', () => got.length === 1);
    expect(got[0]!.contentType).toBe('application/cloudevents+json');
    expect(JSON.parse(got[0]!.data.toString())).toMatchObject({ source: 'checkout', topic: 'orders', pubsubname: 'bus', data: { a: 1 } });
  });

  it('an unknown pubsub is not-found naming it; an empty topic and a bad CloudEvent are bad requests', async () => {
    const { rt } = await setup();
    const err = await rt.publish({ pubsubName: 'nope', topic: 't', data: Buffer.from('x') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComponentError);
    expect(err).toMatchObject({ kind: 'not-found', message: 'pubsub nope not found' });
    await expect(rt.publish({ pubsubName: 'bus', topic: '', data: Buffer.from('x') })).rejects.toMatchObject({ kind: 'bad-request' });
    await expect(rt.publish({ pubsubName: 'bus', topic: 't', data: Buffer.from('x'), contentType: 'application/cloudevents+json' })).rejects.toMatchObject({ kind: 'bad-request', message: expect.stringMatching(/not JSON/) });
  });

  it('ttlInSeconds: the envelope gets an expiration that many seconds ahead; a raw payload carries it in the message metadata', async () => {
    const { rt, bus } = await setup();
    const got: Message[] = [];
    await bus.subscribe({ topic: 'orders', consumerGroup: 'g' }, async (m) => (got.push(m), 'SUCCESS'));
    const before = Date.now();
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('{"a":1}'), contentType: 'application/json', metadata: { ttlInSeconds: '30' } });
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('raw bytes'), metadata: { ttlInSeconds: '30', rawPayload: 'true' } });
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('{"a":2}'), contentType: 'application/json', metadata: { ttlInSeconds: '' } });
    await eventually('messages', () => got.length === 3);
    const [ttl, raw, none] = got;
    const expiration = JSON.parse(ttl!.data.toString()).expiration as string;
    expect(expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(expiration) - before).toBeGreaterThanOrEqual(30_000);
    expect(Date.parse(expiration) - Date.now()).toBeLessThanOrEqual(30_000);
    expect(ttl!.metadata).toEqual({ ttlInSeconds: '30' });
    expect(raw!.data.toString()).toBe('raw bytes');
    expect(raw!.metadata).toEqual({ ttlInSeconds: '30', rawPayload: 'true', expiration: expect.stringMatching(/Z$/) });
    expect(JSON.parse(none!.data.toString()).expiration).toBeUndefined();
  });

  it('an invalid ttlInSeconds is a bad request naming the value; nothing is stored', async () => {
    const { rt, bus } = await setup();
    const got: Message[] = [];
    await bus.subscribe({ topic: 'orders', consumerGroup: 'g' }, async (m) => (got.push(m), 'SUCCESS'));
    for (const [v, why] of [['abc', /valid integer: actual is 'abc'/], ['0', /higher than zero: actual is 0/], ['2.5', /'2.5'/]] as const) {
      await expect(rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('x'), metadata: { ttlInSeconds: v } })).rejects.toMatchObject({ kind: 'bad-request', message: expect.stringMatching(why) });
    }
    await new Promise((r) => setTimeout(r, 30));
    expect(got).toHaveLength(0);
  });

  it('a backend with a native MESSAGE_TTL keeps the TTL itself: no expiration is added (Dapr\'s rule)', async () => {
    const { rt, bus } = await setup();
    const got: Message[] = [];
    await bus.subscribe({ topic: 'orders', consumerGroup: 'g' }, async (m) => (got.push(m), 'SUCCESS'));
    const features = bus.features.bind(bus);
    bus.features = () => [...features(), 'MESSAGE_TTL'];
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('{}'), contentType: 'application/json', metadata: { ttlInSeconds: '5' } });
    await eventually('message', () => got.length === 1);
    expect(JSON.parse(got[0]!.data.toString()).expiration).toBeUndefined();
    expect(got[0]!.metadata).toEqual({ ttlInSeconds: '5' });
  });

  it('a backend that fails is a backend error with the reason', async () => {
    const { rt, bus } = await setup();
    await bus.close();
    await expect(rt.publish({ pubsubName: 'bus', topic: 't', data: Buffer.from('x') })).rejects.toMatchObject({ kind: 'backend' });
  });
});

describe('PubSubRuntime.start', () => {
  it('keeps asking an app that is not up yet, then subscribes and delivers', async () => {
    const { rt, lines } = await setup();
    const ch = app([orders], 3);
    await rt.start(ch);
    expect(ch.listings).toBe(4);
    expect(rt.subscriptions()).toEqual([orders]);
    expect(lines.filter((l) => l.msg.includes('asking the app for its subscriptions failed'))).toHaveLength(3);
    await rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from('hi'), contentType: 'text/plain' });
    await eventually('delivery', () => ch.events.length === 1);
    expect(ch.events[0]!.data.toString()).toBe('hi');
  });

  it('a subscription to an unknown pubsub is logged and skipped; the others work', async () => {
    const { rt, lines } = await setup();
    await rt.start(app([{ ...orders, pubsubName: 'kafka' }, orders]));
    expect(rt.subscriptions()).toEqual([orders]);
    const log = lines.find((l) => l.msg.includes('not configured; subscription skipped'));
    expect(log).toMatchObject({ pubsub: 'kafka', topic: 'orders', configured: ['bus'] });
  });

  it('consumer group = app id: two replicas share, another app gets its own copy; metadata consumerGroup overrides', async () => {
    const a1 = await setup('svc-a');
    const shared = a1.cm; // every runtime below uses this one bus
    const mk = (id: string) => new PubSubRuntime({ pubsubs: shared.view<PubSub>('pubsub'), appId: () => id, logger: memoryLogger().logger });
    const rts = [a1.rt, mk('svc-a'), mk('svc-b'), mk('svc-c')];
    cleanups.push(...rts.slice(1).map((r) => () => r.close()));
    const chans = [app([orders]), app([orders]), app([orders]), app([{ ...orders, metadata: { consumerGroup: 'svc-b' } }])];
    await Promise.all(rts.map((r, i) => r.start(chans[i]!)));
    for (let i = 0; i < 4; i++) await a1.rt.publish({ pubsubName: 'bus', topic: 'orders', data: Buffer.from(String(i)) });
    await eventually('deliveries', () => chans.reduce((n, c) => n + c.events.length, 0) === 8);
    expect(chans[0]!.events.length + chans[1]!.events.length).toBe(4); // svc-a replicas share
    expect(chans[2]!.events.length + chans[3]!.events.length).toBe(4); // svc-b and the svc-c that joined its group share
    expect(chans[0]!.events.length).toBeGreaterThan(0);
    expect(chans[1]!.events.length).toBeGreaterThan(0);
  });

  it('close stops the retries of an app that never answers and leaves no subscription', async () => {
    const { rt } = await setup();
    const ch = app([orders], Infinity);
    const started = rt.start(ch);
    await eventually('a few listings', () => ch.listings >= 2);
    await rt.close();
    await started;
    const n = ch.listings;
    await new Promise((r) => setTimeout(r, 100));
    expect(ch.listings).toBe(n);
    expect(rt.subscriptions()).toEqual([]);
  });
});
