/**
 * What only one backend does: the JetStream stream and subject scheme, Redis stream keys and
 * trimming. The shared delivery semantics are in suite.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { Redis } from 'ioredis';
import { ComponentBackendError, ComponentRequestError } from '../../../src/components/errors.js';
import { jetstreamPubSubMetadata } from '../../../src/components/pubsub/jetstream/config.js';
import { REDIS_HOST, deleteRedisPrefix } from '../state/matrix.js';
import { NATS_URL, deleteJetStream } from './matrix.js';
import { buildPubSub } from './suite.js';

const run = randomUUID().slice(0, 8);

async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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

  it('publishes and acks made in separate event-loop turns each get their own PubAck; every ack reaches the server', async () => {
    const own = `${stream}-turns`;
    const ps = buildPubSub(`name: pubsub\ntype: pubsub.jetstream\nmetadata:\n  natsURL: "${NATS_URL}"\n  streamName: ${own}\n  memoryStorage: "true"\n  concurrency: parallel\n  ackWait: 1s\n`);
    await ps.init();
    try {
      const seen: string[] = [];
      const sub = await ps.subscribe({ topic: 'turns', consumerGroup: 'g' }, async (m) => {
        seen.push(m.data.toString());
        // Answer in a later turn, as an app over HTTP does.
        await new Promise((r) => setImmediate(r));
        return 'SUCCESS';
      });
      // One publish per turn (as HTTP requests arrive), several per turn too.
      const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((d, i) => new Promise<void>((r) => setTimeout(r, i % 20)).then(() => ps.publish({ topic: 'turns', data: Buffer.from(d) }))));
      await until(() => seen.length >= sent.length, 'every message');
      // Past ackWait: an ack that never left the client would show as a redelivery.
      await new Promise((r) => setTimeout(r, 1500));
      await sub.close();
      expect(seen.sort()).toEqual(sent.sort());
      const nc = await connect({ servers: NATS_URL });
      try {
        const info = await (await nc.jetstreamManager()).streams.info(own);
        expect(info.state.messages).toBe(200);
      } finally {
        await nc.close();
      }
    } finally {
      await ps.close();
      await deleteJetStream(own);
    }
  });

  it('publish resolves only on a PubAck: with the stream gone it rejects as a backend error and nothing is stored', async () => {
    const own = `${stream}-gone`;
    const ps = buildPubSub(`name: pubsub\ntype: pubsub.jetstream\nmetadata:\n  natsURL: "${NATS_URL}"\n  streamName: ${own}\n  memoryStorage: "true"\n  publishTimeout: 1s\n`);
    await ps.init();
    try {
      await ps.publish({ topic: 'x', data: Buffer.from('stored') });
      await deleteJetStream(own);
      const err = await ps.publish({ topic: 'x', data: Buffer.from('lost') }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ComponentBackendError);
      expect((err as Error).message).toMatch(/publish to .*\.x failed: no responders/);
      const nc = await connect({ servers: NATS_URL });
      try {
        await expect((await nc.jetstreamManager()).streams.info(own)).rejects.toThrow(/not found/);
      } finally {
        await nc.close();
      }
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
