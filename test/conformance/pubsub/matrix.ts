/**
 * Every pub/sub backend and the features it must have. A new backend is one folder under
 * src/components/pubsub and one entry here. JetStream and Redis run against the machine's real
 * servers, in a stream / under a key prefix unique to the run, removed afterwards. Redelivery
 * delays are short so the suite stays fast.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { connect } from 'nats';
import { REDIS_HOST, deleteRedisPrefix } from '../state/matrix.js';
import type { PubSubMatrixEntry } from './suite.js';

export const NATS_URL = process.env.CAPA_TEST_NATS ?? 'nats://127.0.0.1:4222';

/** A loopback port nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function deleteJetStream(stream: string): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => false);
  } finally {
    await nc.close();
  }
}

const run = randomUUID().slice(0, 8);
const stream = `capa-test-${run}`;
const redisPrefix = `capa-test-${run}:`;

/** Dapr's list form of metadata, as users write it. */
function yaml(name: string, type: string, meta: Record<string, string>): string {
  const lines = Object.entries(meta).map(([k, v]) => `  - name: ${k}\n    value: "${v}"`);
  return `name: ${name}\ntype: ${type}\n${lines.length ? `metadata:\n${lines.join('\n')}\n` : ''}`;
}

export const PUBSUB_MATRIX: readonly PubSubMatrixEntry[] = [
  {
    type: 'pubsub.memory',
    features: ['CONSUMER_GROUPS'],
    yaml: yaml('pubsub', 'pubsub.memory', { redeliveryDelay: '150ms' }),
    redeliveryMs: 150,
    delayKey: 'redeliveryDelay',
  },
  {
    type: 'pubsub.jetstream',
    features: ['DURABLE', 'CONSUMER_GROUPS'],
    yaml: yaml('pubsub', 'pubsub.jetstream', { natsURL: NATS_URL, streamName: stream, redeliveryDelay: '150ms', memoryStorage: 'true' }),
    redeliveryMs: 150,
    delayKey: 'redeliveryDelay',
    // nats-server 2.9 (this machine's) counts that redelivery as a first delivery again.
    unansweredRedeliveryCount: 1,
    down: async () => ({
      yaml: yaml('pubsub', 'pubsub.jetstream', { natsURL: `nats://127.0.0.1:${await unusedPort()}`, streamName: stream, connectTimeout: '1s' }),
      message: /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/,
    }),
    cleanup: () => deleteJetStream(stream),
  },
  {
    type: 'pubsub.redis',
    features: ['DURABLE', 'CONSUMER_GROUPS'],
    yaml: yaml('pubsub', 'pubsub.redis', { redisHost: REDIS_HOST, keyPrefix: redisPrefix, processingTimeout: '250ms', redeliverInterval: '50ms', concurrency: '4' }),
    // A RETRY waits for processingTimeout, found within one redeliverInterval.
    redeliveryMs: 300,
    delayKey: 'processingTimeout',
    down: async () => ({
      yaml: yaml('pubsub', 'pubsub.redis', { redisHost: `127.0.0.1:${await unusedPort()}`, keyPrefix: redisPrefix, connectTimeoutMs: '1000' }),
      message: /cannot connect to Redis at 127\.0\.0\.1:\d+/,
    }),
    cleanup: () => deleteRedisPrefix(redisPrefix),
  },
];
