/**
 * Every state backend and the features it must have. A new backend is one folder under
 * src/components/state and one line here. Redis runs against the machine's real server, under a
 * key prefix unique to the run, removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StateMatrixEntry } from './suite.js';

export const REDIS_HOST = process.env.CAPA_TEST_REDIS ?? '127.0.0.1:6379';

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const [host, port] = REDIS_HOST.split(':');
  const r = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
      if (keys.length) await r.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

const redisPrefix = `capa-test-${randomUUID().slice(0, 8)}:`;

export const STATE_MATRIX: readonly StateMatrixEntry[] = [
  {
    type: 'state.memory',
    features: ['ETAG', 'TRANSACTIONAL', 'TTL'],
    yaml: 'name: statestore\ntype: state.memory\n',
  },
  {
    type: 'state.redis',
    features: ['ETAG', 'TRANSACTIONAL', 'TTL'],
    yaml: `name: statestore\ntype: state.redis\nmetadata:\n  - name: redisHost\n    value: "${REDIS_HOST}"\n  - name: keyPrefix\n    value: "${redisPrefix}"\n`,
    cleanup: () => deleteRedisPrefix(redisPrefix),
  },
];
