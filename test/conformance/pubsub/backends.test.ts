/**
 * What only one backend does: the JetStream stream and subject scheme, Redis stream keys and
 * trimming. The shared delivery semantics are in suite.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { Redis } from 'ioredis';
import { ComponentRequestError } from '../../../src/components/errors.js';
import { jetstreamPubSubMetadata } from '../../../src/components/pubsub/jetstream/config.js';
import { REDIS_HOST, deleteRedisPrefix } from '../state/matrix.js';
import { NATS_URL, deleteJetStream } from './matrix.js';
import { buildPubSub } from './suite.js';

const run = randomUUID().slice(0, 8);

describe('pubsub.jetstream specifics', () => {
  const stream = `capa-test-js-${run}`;
  afterAll(() => deleteJetStream(stream));

  it('creates the stream with subjects <subjectPrefix>.> and publishes topic T on <subjectPrefix>.T', async () => {
    const ps = buildPubSub(`name: pubsub\ntype: pubsub.jetstream\nmetadata:\n  natsURL: "${NATS_URL}"\n  streamName: ${stream}\n  subjectPrefix: app.events\n  memoryStorage: "true"\n`);
    await ps.init();
    try {
      await ps.publish({ topic: 'orders.created', data: Buffer.from('x') });
      const nc = await connect({ servers: NATS_URL });
      try {
        const info = await (await nc.jetstreamManager()).streams.info(stream, { subjects_filter: '>' });
        expect(info.config.subjects).toEqual(['app.events.>']);
        expect(info.state.subjects).toEqual({ 'app.events.orders.created': 1 });
      } finally {
        await nc.close();
      }
      await expect(ps.publish({ topic: 'has space', data: Buffer.from('x') })).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(ps.publish({ topic: 'wild.*', data: Buffer.from('x') })).rejects.toBeInstanceOf(ComponentRequestError);
    } finally {
      await ps.close();
    }
  });

  it('metadata: concurrency words, names checked with the field named', () => {
    expect(jetstreamPubSubMetadata.parse({ concurrency: 'parallel' }).concurrency).toBe(64);
    expect(jetstreamPubSubMetadata.parse({ concurrency: '8', ackWait: '2s' })).toMatchObject({ concurrency: 8, ackWait: 2000 });
    const bad = jetstreamPubSubMetadata.safeParse({ streamName: 'a.b', natsURL: 'http://x' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['natsURL', 'streamName']);
  });
});

describe('pubsub.redis specifics', () => {
  const prefix = `capa-test-rd-${run}:`;
  afterAll(() => deleteRedisPrefix(prefix));

  it('a topic is the stream <keyPrefix><topic>; maxLenApprox trims it', async () => {
    const ps = buildPubSub(`name: pubsub\ntype: pubsub.redis\nmetadata:\n  redisHost: "${REDIS_HOST}"\n  keyPrefix: "${prefix}"\n  maxLenApprox: 10\n`);
    await ps.init();
    const [host, port] = REDIS_HOST.split(':');
    const r = new Redis({ host, port: Number(port) });
    try {
      for (let i = 0; i < 300; i++) await ps.publish({ topic: 'trimmed', data: Buffer.from(`m${i}`) });
      const len = await r.xlen(`${prefix}trimmed`);
      expect(len).toBeGreaterThanOrEqual(10);
      expect(len).toBeLessThan(300);
    } finally {
      r.disconnect();
      await ps.close();
    }
  });
});
