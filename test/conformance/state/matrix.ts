/**
 * Every state backend and the features it must have. A new backend is one folder under
 * src/components/state and one line here. Redis runs against the machine's real server, under a
 * key prefix unique to the run, removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { poolConfig } from '../../../src/components/state/postgresql/pg.js';
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

export const PG_CONNECTION = process.env.CAPA_TEST_POSTGRES ?? 'host=127.0.0.1 port=5432 user=postgres dbname=test';

/** A table name unique to the run (tests create it through the component and drop it after). */
export function pgTestTable(what: string): string {
  return `capa_test_${what}_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
}

/** Drops the tables (and their sequences) a run created. */
export async function dropPgTables(...tables: string[]): Promise<void> {
  const c = new pg.Client(poolConfig(PG_CONNECTION));
  await c.connect();
  try {
    for (const t of tables) await c.query(`DROP TABLE IF EXISTS "${t}"; DROP SEQUENCE IF EXISTS "${t}_version_seq"`);
  } finally {
    await c.end();
  }
}

const pgStateTable = pgTestTable('state');

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
  {
    type: 'state.postgresql',
    features: ['ETAG', 'TRANSACTIONAL', 'TTL'],
    yaml: `name: statestore\ntype: state.postgresql\nmetadata:\n  - name: connectionString\n    value: "${PG_CONNECTION}"\n  - name: tableName\n    value: "${pgStateTable}"\n`,
    cleanup: () => dropPgTables(pgStateTable),
  },
];
