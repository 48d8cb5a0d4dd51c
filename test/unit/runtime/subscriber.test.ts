/**
 * The subscription handler over the real pubsub.memory backend: acks, redelivery up to
 * maxDeliveries, dead-lettering, drops. The app side is a scripted AppChannel (the interface the
 * subscriber talks to); the HTTP channel itself is tested in http-app-channel.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ComponentManager } from '../../../src/components/manager.js';
import type { Message, PubSub } from '../../../src/components/pubsub/pubsub.js';
import type { AppChannel, AppDeliveryResult, AppSubscription, TopicEvent } from '../../../src/runtime/app-channel.js';
import { envelopeForPublish } from '../../../src/runtime/cloudevents.js';
import { compileRoutingRules } from '../../../src/runtime/routing-rules.js';
import { DEFAULT_MAX_DELIVERIES, createSubscriptionHandler, maxDeliveriesOf } from '../../../src/runtime/subscriber.js';
import { eventually, memoryLogger, startComponents } from '../../helpers/runtime.js';

const YAML = `
- name: bus
  type: pubsub.memory
  metadata: { redeliveryDelay: 5ms }
`;

let cm: ComponentManager | undefined;
afterEach(async () => {
  await cm?.close();
  cm = undefined;
});

/** Answers with `script[i]` for the i-th delivery (the last one repeats); 'throw' rejects. */
function scripted(script: (AppDeliveryResult | 'throw')[]): AppChannel & { events: TopicEvent[]; routes: string[] } {
  const events: TopicEvent[] = [];
  const routes: string[] = [];
  return {
    protocol: 'http',
    events,
    routes,
    listSubscriptions: async () => [],
    deliver: async (s, e) => {
      events.push(e);
      routes.push(s.route);
      const r = script[Math.min(events.length - 1, script.length - 1)]!;
      if (r === 'throw') throw new Error('app unreachable');
      return r;
    },
    close: async () => undefined,
  };
}

async function setup(script: (AppDeliveryResult | 'throw')[], sub: Partial<AppSubscription> = {}) {
  const { logger, lines } = memoryLogger();
  cm = await startComponents(YAML, logger);
  const bus = cm.component<PubSub>('pubsub', 'bus')!;
  const subscription: AppSubscription = { pubsubName: 'bus', topic: 'orders', route: '/orders', metadata: {}, ...sub };
  const channel = scripted(script);
  await bus.subscribe({ topic: 'orders', consumerGroup: 'app' }, createSubscriptionHandler({ pubsubName: 'bus', pubsub: bus, subscription, channel, logger }));
  const dead: Message[] = [];
  await bus.subscribe({ topic: 'dead', consumerGroup: 'watcher' }, async (m) => {
    dead.push(m);
    return 'SUCCESS';
  });
  const { data, contentType } = envelopeForPublish({ topic: 'orders', pubsubName: 'bus', source: 'checkout', data: Buffer.from('{"n":1}'), contentType: 'application/json' });
  await bus.publish({ topic: 'orders', data, contentType, metadata: { k: 'v' } });
  return { channel, dead, lines, data };
}

const settle = () => new Promise((r) => setTimeout(r, 100));

describe('subscriber', () => {
  it('SUCCESS: delivered once with the parsed event, acknowledged (no redelivery)', async () => {
    const { channel } = await setup(['SUCCESS']);
    await eventually('delivery', () => channel.events.length === 1);
    await settle();
    expect(channel.events).toHaveLength(1);
    expect(channel.events[0]).toMatchObject({ source: 'checkout', topic: 'orders', pubsubName: 'bus', metadata: { k: 'v' } });
    expect(JSON.parse(channel.events[0]!.data.toString())).toEqual({ n: 1 });
  });

  it('RETRY and app failures are redelivered until the app succeeds; the same event id each time', async () => {
    const { channel, dead } = await setup(['RETRY', 'throw', 'SUCCESS']);
    await eventually('3 deliveries', () => channel.events.length === 3);
    await settle();
    expect(channel.events).toHaveLength(3);
    expect(new Set(channel.events.map((e) => e.id)).size).toBe(1);
    expect(dead).toHaveLength(0);
  });

  it('after maxDeliveries failed deliveries the stored envelope goes to the deadLetterTopic, then it stops', async () => {
    const { channel, dead, data, lines } = await setup(['RETRY'], { metadata: { maxDeliveries: '3' }, deadLetterTopic: 'dead' });
    await eventually('dead letter', () => dead.length === 1);
    await settle();
    expect(channel.events).toHaveLength(3);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.data.equals(data)).toBe(true);
    expect(dead[0]!.metadata).toEqual({ k: 'v' });
    expect(lines.some((l) => l.msg.includes('dead-letter topic') && l.reason === 'delivery 3 of 3 failed')).toBe(true);
  });

  it('DROP dead-letters at once', async () => {
    const { channel, dead } = await setup(['DROP'], { deadLetterTopic: 'dead' });
    await eventually('dead letter', () => dead.length === 1);
    await settle();
    expect(channel.events).toHaveLength(1);
  });

  it('without a deadLetterTopic a dropped or exhausted message is logged and acknowledged', async () => {
    const { channel, lines } = await setup(['throw'], { metadata: { maxDeliveries: '2' } });
    await eventually('2 deliveries', () => channel.events.length === 2);
    await settle();
    expect(channel.events).toHaveLength(2);
    expect(lines.some((l) => l.msg.includes('dropped (the subscription has no deadLetterTopic)'))).toBe(true);
  });

  it('a raw subscription gets the stored bytes wrapped as data_base64', async () => {
    const { channel, data } = await setup(['SUCCESS'], { metadata: { rawPayload: 'true' } });
    await eventually('delivery', () => channel.events.length === 1);
    const env = channel.events[0]!.envelope;
    expect(env.datacontenttype).toBe('application/octet-stream');
    expect(Buffer.from(env.data_base64 as string, 'base64').equals(data)).toBe(true);
  });

  it('maxDeliveries: default 5, a bad value falls back to it with a warning', () => {
    const { logger, lines } = memoryLogger();
    const sub = (m: Record<string, string>): AppSubscription => ({ pubsubName: 'p', topic: 't', route: '/t', metadata: m });
    expect(DEFAULT_MAX_DELIVERIES).toBe(5);
    expect(maxDeliveriesOf(sub({}))).toBe(5);
    expect(maxDeliveriesOf(sub({ maxDeliveries: '1' }))).toBe(1);
    expect(maxDeliveriesOf(sub({ maxDeliveries: '0' }), logger)).toBe(5);
    expect(lines[0]).toMatchObject({ maxDeliveries: '0' });
  });
});

/** Subscribes `sub` (plus a watcher on 'dead'), then publishes each event through the runtime's envelope code. */
async function routedSetup(sub: Partial<AppSubscription>, events: { data: unknown; type?: string; expiration?: string; metadata?: Record<string, string> }[]) {
  const { logger, lines } = memoryLogger();
  cm = await startComponents(YAML, logger);
  const bus = cm.component<PubSub>('pubsub', 'bus')!;
  const subscription: AppSubscription = { pubsubName: 'bus', topic: 'orders', route: '/orders', metadata: {}, ...sub };
  const channel = scripted(['SUCCESS']);
  await bus.subscribe({ topic: 'orders', consumerGroup: 'app' }, createSubscriptionHandler({ pubsubName: 'bus', pubsub: bus, subscription, channel, logger }));
  const dead: Message[] = [];
  await bus.subscribe({ topic: 'dead', consumerGroup: 'watcher' }, async (m) => (dead.push(m), 'SUCCESS'));
  for (const e of events) {
    const metadata = { ...e.metadata, ...(e.type ? { 'cloudevent.type': e.type } : {}) };
    const out = envelopeForPublish({ topic: 'orders', pubsubName: 'bus', source: 'checkout', data: Buffer.from(JSON.stringify(e.data)), contentType: 'application/json', metadata, expiration: e.expiration });
    await bus.publish({ topic: 'orders', data: out.data, contentType: out.contentType, metadata: e.metadata });
  }
  return { channel, dead, lines };
}

const abs = (p: string): string => (p.startsWith('/') ? p : `/${p}`);
const PAST = '2020-01-01T00:00:00Z';
const FUTURE = '2999-01-01T00:00:00.000Z';

describe('subscriber: message TTL', () => {
  it('an event whose expiration is past is acknowledged without reaching the app (debug log); others are delivered', async () => {
    const { channel, lines } = await routedSetup({}, [{ data: { n: 1 }, expiration: PAST }, { data: { n: 2 }, expiration: FUTURE }, { data: { n: 3 } }]);
    await eventually('2 deliveries', () => channel.events.length === 2);
    await settle();
    expect(channel.events.map((e) => JSON.parse(e.data.toString()).n)).toEqual([2, 3]);
    const log = lines.find((l) => l.msg.includes('not delivered'))!;
    expect(log).toMatchObject({ level: 20, pubsub: 'bus', topic: 'orders', reason: `it expired at ${PAST}` });
  });

  it('an expired raw payload (expiration in the message metadata) is not delivered either', async () => {
    const { channel } = await routedSetup({ metadata: { rawPayload: 'true' } }, [
      { data: 'old', metadata: { rawPayload: 'true', expiration: PAST } },
      { data: 'new', metadata: { rawPayload: 'true', expiration: FUTURE } },
    ]);
    await eventually('1 delivery', () => channel.events.length === 1);
    await settle();
    expect(channel.events).toHaveLength(1);
    expect(Buffer.from(channel.events[0]!.envelope.data_base64 as string, 'base64').toString()).toBe('"new"');
  });

  it('with a deadLetterTopic an expired event goes there (as Dapr does), unchanged', async () => {
    const { channel, dead } = await routedSetup({ deadLetterTopic: 'dead' }, [{ data: { n: 1 }, expiration: PAST }]);
    await eventually('dead letter', () => dead.length === 1);
    await settle();
    expect(channel.events).toHaveLength(0);
    expect(JSON.parse(dead[0]!.data.toString())).toMatchObject({ expiration: PAST, data: { n: 1 } });
  });
});

describe('subscriber: routing rules', () => {
  const rules = (...r: [string, string][]) => compileRoutingRules(r.map(([match, path]) => ({ match, path })), abs);

  it('each event goes to the path of the first rule that matches it, else to the default path', async () => {
    const sub = { route: '/default', rules: await rules(["event.type == 'widget'", '/widgets'], ['event.data.n > 10', '/big'], ["event.type == 'gadget'", '/gadgets']) };
    const { channel } = await routedSetup(sub, [
      { data: { n: 1 }, type: 'widget' },
      { data: { n: 50 }, type: 'gadget' }, // rule 1 before rule 2
      { data: { n: 2 }, type: 'gadget' },
      { data: { n: 3 }, type: 'other' },
    ]);
    await eventually('4 deliveries', () => channel.events.length === 4);
    expect(channel.routes).toEqual(['/widgets', '/big', '/gadgets', '/default']);
  });

  it('no rule matched and no default path: acknowledged without delivery (debug log), or dead-lettered when the subscription has a topic for it', async () => {
    const sub = { route: '', rules: await rules(["event.type == 'widget'", '/widgets']) };
    const { channel, lines } = await routedSetup(sub, [{ data: { n: 1 }, type: 'gadget' }, { data: { n: 2 }, type: 'widget' }]);
    await eventually('1 delivery', () => channel.events.length === 1);
    await settle();
    expect(channel.routes).toEqual(['/widgets']);
    expect(lines.find((l) => l.msg.includes('not delivered'))).toMatchObject({ level: 20, reason: 'no routing rule matched it and the subscription has no default path' });

    await cm!.close();
    const dl = await routedSetup({ ...sub, deadLetterTopic: 'dead' }, [{ data: { n: 1 }, type: 'gadget' }]);
    await eventually('dead letter', () => dl.dead.length === 1);
    expect(dl.channel.events).toHaveLength(0);
  });

  it('a rule that fails on an event counts as no match for it (debug log naming the rule); the next rules still apply', async () => {
    const sub = { route: '/default', rules: await rules(["event.data.kind == 'x'", '/kind'], ['event.data.n == 1', '/one']) };
    const { channel, lines } = await routedSetup(sub, [{ data: { n: 1 } }, { data: { n: 2 } }]);
    await eventually('2 deliveries', () => channel.events.length === 2);
    expect(channel.routes).toEqual(['/one', '/default']);
    const failed = lines.filter((l) => l.msg.includes('routing rule failed'));
    expect(failed).toHaveLength(2);
    expect(failed[0]).toMatchObject({ level: 20, rule: 0, match: "event.data.kind == 'x'", reason: expect.stringMatching(/kind/) });
  });

  it('expiration is checked before routing', async () => {
    const sub = { route: '/default', rules: await rules(['true', '/all']) };
    const { channel } = await routedSetup(sub, [{ data: { n: 1 }, expiration: PAST }, { data: { n: 2 } }]);
    await eventually('1 delivery', () => channel.events.length === 1);
    await settle();
    expect(channel.routes).toEqual(['/all']);
  });
});

