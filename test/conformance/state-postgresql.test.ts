/**
 * What `state.postgresql` promises beyond the shared state suite: data outlives the sidecar,
 * several sidecars can start on a fresh table at once, expired rows are swept, an unreachable
 * server fails init clearly, and connection/table typos are reported with the field.
 */
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { poolConfig } from '../../src/components/state/postgresql/pg.js';
import { ETagMismatchError, StateBackendError, postgresqlState, type StateStore } from '../../src/components/state/index.js';
import { PG_CONNECTION, dropPgTables, pgTestTable } from './state/matrix.js';
import { buildStore } from './state/suite.js';

const table = pgTestTable('pgstate');
const opened: StateStore[] = [];
const b = (s: string): Buffer => Buffer.from(s);

function yaml(extra: Record<string, string> = {}): string {
  const meta = { connectionString: PG_CONNECTION, tableName: table, ...extra };
  return `name: statestore\ntype: state.postgresql\nmetadata:\n${Object.entries(meta)
    .map(([name, value]) => `  - name: ${name}\n    value: "${value}"\n`)
    .join('')}`;
}

async function open(extra?: Record<string, string>): Promise<StateStore> {
  const s = buildStore(yaml(extra));
  opened.push(s);
  await s.init();
  return s;
}

async function rowCount(key: string): Promise<number> {
  const c = new pg.Client(poolConfig(PG_CONNECTION));
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}" WHERE key = $1`, [key]);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  for (const s of opened) await s.close();
  await dropPgTables(table);
});

describe('state.postgresql', () => {
  const run = randomUUID().slice(0, 8);
  const k = (n: string): string => `${run}-${n}`;

  it('two sidecars starting at once on a missing table both come up', async () => {
    await Promise.all([open(), open(), open()]);
  });

  it('data and etags survive close and a new store instance (restart)', async () => {
    const first = await open();
    const etag = await first.set({ key: k('kept'), value: b('{"n":1}') });
    await first.close();
    const second = await open();
    expect(await second.get({ key: k('kept') })).toEqual({ data: b('{"n":1}'), etag });
    const next = await second.set({ key: k('kept'), value: b('2'), etag });
    await expect(second.set({ key: k('kept'), value: b('3'), etag })).rejects.toBeInstanceOf(ETagMismatchError);
    expect(Number(next)).toBeGreaterThan(Number(etag));
  });

  it('the key prefix isolates stores sharing a table', async () => {
    const a = await open({ keyPrefix: `${run}-a|` });
    const other = await open({ keyPrefix: `${run}-b|` });
    await a.set({ key: 'same', value: b('a') });
    expect(await other.get({ key: 'same' })).toBeNull();
    await other.set({ key: 'same', value: b('b') });
    expect((await a.get({ key: 'same' }))?.data.toString()).toBe('a');
  });

  it('expired rows are invisible at once and deleted by the sweep', async () => {
    const s = await open({ cleanupIntervalInSeconds: '1' });
    await s.set({ key: k('swept'), value: b('x'), metadata: { ttlInSeconds: '1' } });
    expect(await rowCount(k('swept'))).toBe(1);
    await new Promise((r) => setTimeout(r, 2300));
    expect(await s.get({ key: k('swept') })).toBeNull();
    expect(await rowCount(k('swept'))).toBe(0);
  });

  it('first-write may take the place of an expired row; an etag of an expired row mismatches', async () => {
    const s = await open({ cleanupIntervalInSeconds: '0' });
    const etag = await s.set({ key: k('exp'), value: b('old'), metadata: { ttlInSeconds: '1' } });
    await new Promise((r) => setTimeout(r, 1100));
    await expect(s.set({ key: k('exp'), value: b('x'), etag })).rejects.toBeInstanceOf(ETagMismatchError);
    await s.set({ key: k('exp'), value: b('new'), options: { concurrency: 'first-write' } });
    expect((await s.get({ key: k('exp') }))?.data.toString()).toBe('new');
  });

  it('a key with a NUL character is a bad request, not a backend error', async () => {
    const s = await open();
    await expect(s.set({ key: 'a\u0000b', value: b('x') })).rejects.toThrow(/NUL/);
  });

  it('accepts a postgres:// URL', async () => {
    const c = poolConfig(PG_CONNECTION);
    const s = await open({ connectionString: `postgres://${c.user}@${c.host}:${c.port}/${c.database}` });
    await s.set({ key: k('url'), value: b('u') });
    expect((await s.get({ key: k('url') }))?.data.toString()).toBe('u');
  });

  it('init fails with a clear backend error when PostgreSQL is unreachable, and status says why', async () => {
    const s = buildStore(yaml({ connectionString: 'host=127.0.0.1 port=1 user=postgres dbname=test', timeoutInSeconds: '2' }));
    opened.push(s);
    const err = await s.init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateBackendError);
    expect((err as Error).message).toMatch(/PostgreSQL at 127\.0\.0\.1:1\/test.*ECONNREFUSED/);
    expect(s.status?.()).toMatchObject({ ready: false, error: expect.stringMatching(/ECONNREFUSED/) });
    await expect(s.get({ key: 'x' })).rejects.toBeInstanceOf(StateBackendError);
  });

  it('metadata typos are reported with the field and the reason', () => {
    const issues = (m: Record<string, unknown>) => postgresqlState.metadataSchema.safeParse(m).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ connectionString: 'host=x prot=5432' })).toEqual([expect.stringMatching(/^connectionString: .*unknown keyword "prot"/)]);
    expect(issues({ connectionString: 'host=x port=99999' })).toEqual([expect.stringMatching(/^connectionString: .*port/)]);
    expect(issues({ connectionString: PG_CONNECTION, tableName: 'state; DROP TABLE x' })).toEqual([expect.stringMatching(/^tableName: /)]);
    expect(issues({})).toEqual([expect.stringMatching(/^connectionString: /)]);
    const quoted = "host=h password='it\\'s a \\\\ secret' user='' dbname=d";
    expect(postgresqlState.metadataSchema.parse({ connectionString: quoted })).toMatchObject({ tableName: 'state', timeoutInSeconds: 20 });
    expect(poolConfig(quoted)).toMatchObject({ host: 'h', password: "it's a \\ secret", user: '', database: 'd' });
  });
});
