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
function scripted(script: (AppDeliveryResult | 'throw')[]): AppChannel & { events: TopicEvent[] } {
  const events: TopicEvent[] = [];
  return {
    protocol: 'http',
    events,
    listSubscriptions: async () => [],
    deliver: async (_s, e) => {
      events.push(e);
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
