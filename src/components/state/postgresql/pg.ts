/**
 * PostgreSQL plumbing shared by `state.postgresql` and `sequencer.postgresql`: the
 * `connectionString` (libpq keyword/value, as Dapr's examples write it, or a postgres:// URL),
 * table names, the pool, and the error mapping. `pg` is loaded on first use (see lazy.ts).
 */
import type * as Pg from 'pg';
import type { Pool, PoolClient, PoolConfig } from 'pg';
import { z } from 'zod';
import { lazy } from '../../../lazy.js';
import { nonEmpty } from '../../../config/schema-common.js';
import type { ComponentContext } from '../../registry.js';

const pg = lazy<typeof Pg>('pg');

// === connectionString ===

/** The libpq keywords understood in keyword/value form, and where they go in pg's config. */
const KEYWORDS = ['host', 'hostaddr', 'port', 'user', 'password', 'dbname', 'database', 'sslmode', 'connect_timeout', 'application_name', 'pool_max_conns'] as const;

/** `host=h port=5432 password='it\'s'` → pairs (libpq's rules); throws naming the problem. */
export function parseKeywordValue(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']*))/y;
  let at = 0;
  while (at < s.length && s.slice(at).trim() !== '') {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw new Error(`cannot parse ${JSON.stringify(s.slice(at).trim().slice(0, 20))}: expected keyword=value`);
    const key = m[1]!;
    if (!(KEYWORDS as readonly string[]).includes(key)) throw new Error(`unknown keyword ${JSON.stringify(key)} (known: ${KEYWORDS.join(', ')})`);
    out[key] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
    at = re.lastIndex;
  }
  return out;
}

function sslFor(mode: string | undefined): PoolConfig['ssl'] {
  switch (mode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return undefined;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return true;
    default:
      throw new Error(`sslmode ${JSON.stringify(mode)} is not one of disable, allow, prefer, require, verify-ca, verify-full`);
  }
}

/** The pg pool config of a connection string (URL or keyword/value); throws naming the problem. */
export function poolConfig(conn: string): PoolConfig {
  if (/^postgres(ql)?:\/\//.test(conn)) {
    try {
      new URL(conn);
    } catch {
      throw new Error('not a valid postgres:// URL');
    }
    return { connectionString: conn };
  }
  const kv = parseKeywordValue(conn);
  const port = kv.port === undefined ? undefined : Number(kv.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`port ${JSON.stringify(kv.port)} is not a port number`);
  for (const k of ['connect_timeout', 'pool_max_conns'] as const) {
    if (kv[k] !== undefined && !/^[0-9]+$/.test(kv[k])) throw new Error(`${k} ${JSON.stringify(kv[k])} is not a whole number`);
  }
  return {
    host: kv.hostaddr ?? kv.host,
    port,
    user: kv.user,
    password: kv.password,
    database: kv.dbname ?? kv.database,
    ssl: sslFor(kv.sslmode),
    application_name: kv.application_name,
    connectionTimeoutMillis: kv.connect_timeout ? Number(kv.connect_timeout) * 1000 : undefined,
    max: kv.pool_max_conns ? Number(kv.pool_max_conns) : undefined,
  };
}

/** `connectionString`, checked at config time so a typo is reported with the field. */
export const connectionString = nonEmpty.superRefine((s, ctx) => {
  try {
    poolConfig(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid connection string: ${(e as Error).message}` });
  }
});

/** A table name, optionally schema-qualified; short enough for the derived index/sequence names. */
export const tableName = (fallback: string) =>
  nonEmpty
    .pipe(z.string().regex(/^([A-Za-z_][A-Za-z0-9_]{0,47}\.)?[A-Za-z_][A-Za-z0-9_]{0,47}$/, { error: 'expected [schema.]name: letters, digits and "_", at most 48 each' }))
    .default(fallback);

/** `"schema"."name"` with `suffix` added to the name (for the table's index and sequence). */
export function ident(table: string, suffix = ''): string {
  return table
    .split('.')
    .map((p, i, all) => `"${i === all.length - 1 ? p + suffix : p}"`)
    .join('.');
}

// === pool ===

/** Where the pool points, for messages (never the password). */
export function describeTarget(c: PoolConfig): string {
  if (c.connectionString) {
    const u = new URL(c.connectionString);
    return `${u.hostname || 'localhost'}:${u.port || 5432}${u.pathname}`;
  }
  return `${c.host ?? 'localhost'}:${c.port ?? 5432}/${c.database ?? c.user ?? ''}`;
}

export interface PgPoolOptions {
  readonly connectionString: string;
  readonly timeoutInSeconds: number;
  /** For logs: `state.postgresql`. */
  readonly type: string;
}

/**
 * A pool that reports instead of crashing: an idle connection dropping (server restart) only
 * sets `lastError` and logs once; the next query reconnects.
 */
export class PgPool {
  readonly pool: Pool;
  readonly where: string;
  lastError = '';
  private readonly type: string;

  constructor(
    o: PgPoolOptions,
    private readonly ctx: ComponentContext,
  ) {
    this.type = o.type;
    const cfg = poolConfig(o.connectionString);
    this.where = describeTarget(cfg);
    const timeoutMs = o.timeoutInSeconds * 1000;
    this.pool = new (pg().Pool)({
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      max: 10,
      idleTimeoutMillis: 30_000,
      ...Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)),
      allowExitOnIdle: true,
    });
    this.pool.on('error', (e: Error) => this.failed(e));
  }

  /** Runs `f`, turning a driver or server failure into `wrap(message)`; typed errors pass. */
  async call<T>(f: () => Promise<T>, wrap: (message: string, cause: unknown) => Error, passThrough: (e: unknown) => boolean): Promise<T> {
    try {
      const r = await f();
      this.lastError = '';
      return r;
    } catch (e) {
      if (passThrough(e)) throw e;
      if (!isSqlError(e)) this.failed(e as Error);
      throw wrap(`PostgreSQL at ${this.where}: ${(e as Error).message || String(e)}`, e);
    }
  }

  /** BEGIN … COMMIT around `f`; any failure rolls back (a broken connection is discarded). */
  async transaction<T>(f: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const r = await f(c);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch((re: Error) => (broken = re));
      throw e;
    } finally {
      c.release(broken);
    }
  }

  async end(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  status(initialised: boolean): { ready: boolean; error?: string } {
    if (!initialised) return { ready: false, error: `PostgreSQL at ${this.where}: ${this.lastError || 'not connected yet'}` };
    return this.lastError ? { ready: false, error: `PostgreSQL at ${this.where}: ${this.lastError}` } : { ready: true };
  }

  private failed(e: Error): void {
    const first = this.lastError === '';
    this.lastError = e.message || String(e);
    if (first) this.ctx.logger.warn({ component: this.ctx.name, postgresql: this.where, error: this.lastError }, `${this.type}: connection failed; retrying on next use`);
  }
}

/** A server-side error with an SQLSTATE (the connection itself is fine), not a network failure. */
function isSqlError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && !code.startsWith('57P');
}

/**
 * Runs `ddl` once per database at a time: concurrent `CREATE … IF NOT EXISTS` can still collide
 * in the catalog when two sidecars start together, so they take a transaction-level advisory
 * lock keyed by the table name first.
 */
export async function createOnce(p: PgPool, table: string, ddl: readonly string[]): Promise<void> {
  await p.transaction(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`capa-ddl:${table}`]);
    for (const q of ddl) await c.query(q);
  });
}
