/**
 * Sequencer promises specific to the shared backends: ids stay exact past 2^53, several sidecars
 * can start on a fresh table at once, an unreachable server fails init clearly and hands out
 * nothing, and metadata typos name the field.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ComponentBackendError } from '../../../src/components/errors.js';
import { postgresqlSequencer, redisSequencer, type Sequencer } from '../../../src/components/sequencer/index.js';
import { poolConfig } from '../../../src/components/state/postgresql/pg.js';
import { PG_CONNECTION, REDIS_HOST, deleteRedisPrefix, dropPgTables, pgTestTable } from '../state/matrix.js';
import { buildSequencer } from './suite.js';

const prefix = `capa-test-seqb-${randomUUID().slice(0, 8)}:`;
const table = pgTestTable('seqb');
const opened: Sequencer[] = [];
const BIG = 9_007_199_254_740_993n; // 2^53 + 1: not a float64

const redisYaml = (host = REDIS_HOST): string =>
  `name: seq\ntype: sequencer.redis\nmetadata:\n  - name: redisHost\n    value: "${host}"\n  - name: keyPrefix\n    value: "${prefix}"\n  - name: connectTimeoutMs\n    value: "500"\n`;
const pgYaml = (conn = PG_CONNECTION): string =>
  `name: seq\ntype: sequencer.postgresql\nmetadata:\n  - name: connectionString\n    value: "${conn}"\n  - name: tableName\n    value: "${table}"\n  - name: timeoutInSeconds\n    value: "2"\n`;

async function open(yaml: string): Promise<Sequencer> {
  const s = buildSequencer(yaml);
  opened.push(s);
  await s.init();
  return s;
}

afterAll(async () => {
  for (const s of opened) await s.close();
  await deleteRedisPrefix(prefix);
  await dropPgTables(table);
});

describe('sequencer.postgresql', () => {
  it('several sidecars starting at once on a missing table all come up and share the counter', async () => {
    const all = await Promise.all([open(pgYaml()), open(pgYaml()), open(pgYaml())]);
    const ids = await Promise.all(all.map((s) => s.nextId({ key: 'start' })));
    expect([...ids].sort()).toEqual([1n, 2n, 3n]);
  });

  it('ids past 2^53 stay exact', async () => {
    const s = await open(pgYaml());
    const c = new pg.Client(poolConfig(PG_CONNECTION));
    await c.connect();
    await c.query(`INSERT INTO "${table}" (key, value) VALUES ('big', $1)`, [(BIG - 1n).toString()]);
    await c.end();
    expect(await s.nextId({ key: 'big' })).toBe(BIG);
    expect(await s.nextId({ key: 'big' })).toBe(BIG + 1n);
  });

  it('an unreachable server fails init and nextId with a clear backend error', async () => {
    const s = buildSequencer(pgYaml('host=127.0.0.1 port=1 user=postgres dbname=test'));
    opened.push(s);
    await expect(s.init()).rejects.toThrow(/PostgreSQL at 127\.0\.0\.1:1\/test.*ECONNREFUSED/);
    await expect(s.nextId({ key: 'k' })).rejects.toBeInstanceOf(ComponentBackendError);
    expect(s.status?.()).toMatchObject({ ready: false });
  });

  it('metadata: table name and connection string are checked, the table defaults to "sequencer"', () => {
    const r = postgresqlSequencer.metadataSchema.safeParse({ connectionString: 'host=h', tableName: 'a-b' });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['tableName']);
    expect(postgresqlSequencer.metadataSchema.safeParse({ connectionString: 'hots=h' }).error?.issues[0]?.message).toMatch(/unknown keyword "hots"/);
    expect(postgresqlSequencer.metadataSchema.parse({ connectionString: PG_CONNECTION }).tableName).toBe('sequencer');
  });
});

describe('sequencer.redis', () => {
  it('ids past 2^53 stay exact', async () => {
    const s = await open(redisYaml());
    const [host, port] = REDIS_HOST.split(':');
    const r = new Redis({ host, port: Number(port) });
    await r.set(`${prefix}big`, (BIG - 1n).toString());
    r.disconnect();
    expect(await s.nextId({ key: 'big' })).toBe(BIG);
  });

  it('an unreachable server fails init and nextId with a clear backend error', async () => {
    const s = buildSequencer(redisYaml('127.0.0.1:1'));
    opened.push(s);
    await expect(s.init()).rejects.toThrow(/cannot connect to Redis at 127\.0\.0\.1:1/);
    await expect(s.nextId({ key: 'k' })).rejects.toBeInstanceOf(ComponentBackendError);
    expect(s.status?.()).toMatchObject({ ready: false });
  });

  it('metadata: a bad redisHost is reported with the field; counters are prefixed by default', () => {
    expect(redisSequencer.metadataSchema.safeParse({ redisHost: 'nohost' }).error?.issues.map((i) => i.path.join('.'))).toEqual(['redisHost']);
    expect(redisSequencer.metadataSchema.parse({}).keyPrefix).toBe('capa-sequencer|');
  });
});
