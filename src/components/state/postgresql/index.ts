/**
 * `state.postgresql`: one row per key (value bytea, version, expiry). Versions come from one
 * sequence per table, so an etag is never handed out twice, even after delete + re-create or
 * across sidecars sharing the table. Every conditional write is one statement whose WHERE
 * clause is the condition, so PostgreSQL's row locks give exactly one winner among concurrent
 * writers with the same etag. Bulk writes and transactions run in one database transaction.
 * Expired rows are invisible to reads and conditions, and deleted by a periodic sweep.
 */
import type { PoolClient, Pool } from 'pg';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import type { StateFeature } from '../features.js';
import { ETagMismatchError, StateBackendError, StateError, StateRequestError } from '../errors.js';
import {
  checkKey,
  normaliseDelete,
  normaliseSet,
  type BulkGetItem,
  type DeleteRequest,
  type GetRequest,
  type GetResponse,
  type NormalisedWrite,
  type SetRequest,
  type TransactionOperation,
  type TransactionalStore,
} from '../store.js';
import { postgresqlStateMetadata, type PostgresqlStateMetadata } from './config.js';
import { PgPool, createOnce, ident } from './pg.js';

const FEATURES: readonly StateFeature[] = ['ETAG', 'TRANSACTIONAL', 'TTL'];

/** A write checked and ready: the SQL needs the prefixed key, the data and the condition. */
interface Write {
  readonly op: 'upsert' | 'delete';
  readonly w: NormalisedWrite;
  readonly value: Buffer;
}

type Queryable = Pick<Pool | PoolClient, 'query'>;

export class PostgresqlStateStore implements TransactionalStore {
  private readonly db: PgPool;
  private readonly sql: ReturnType<typeof statements>;
  private readonly table: string;
  private readonly prefix: string;
  private readonly cleanupMs: number;
  private initialised = false;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    m: PostgresqlStateMetadata,
    private readonly ctx: ComponentContext,
  ) {
    this.db = new PgPool({ connectionString: m.connectionString, timeoutInSeconds: m.timeoutInSeconds, type: 'state.postgresql' }, ctx);
    this.table = m.tableName;
    this.sql = statements(m.tableName);
    this.prefix = m.keyPrefix;
    this.cleanupMs = m.cleanupIntervalInSeconds * 1000;
  }

  // === impl Component ===

  async init(): Promise<void> {
    if (this.initialised) return;
    try {
      await createOnce(this.db, this.table, this.sql.ddl);
    } catch (e) {
      this.db.lastError = (e as Error).message;
      throw new StateBackendError(`cannot prepare table ${this.table} in PostgreSQL at ${this.db.where}: ${(e as Error).message}`, e);
    }
    this.initialised = true;
    this.db.lastError = '';
    if (this.cleanupMs > 0) this.sweeper ??= setInterval(() => void this.sweep(), this.cleanupMs).unref();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.initialised = false;
    await this.db.end();
  }

  status(): { ready: boolean; error?: string } {
    return this.db.status(this.initialised);
  }

  // === impl StateStore ===

  features(): readonly StateFeature[] {
    return FEATURES;
  }

  async get(req: GetRequest): Promise<GetResponse | null> {
    const key = this.key(checkKey(req.key));
    const { rows } = await this.call(() => this.db.pool.query<{ value: Buffer; version: string }>(this.sql.get, [key]));
    return rows[0] ? { data: rows[0].value, etag: rows[0].version } : null;
  }

  async set(req: SetRequest): Promise<string> {
    const [v] = await this.run([{ operation: 'upsert', request: req }]);
    return v!;
  }

  async delete(req: DeleteRequest): Promise<void> {
    await this.run([{ operation: 'delete', request: req }]);
  }

  async bulkGet(reqs: readonly GetRequest[]): Promise<BulkGetItem[]> {
    if (reqs.length === 0) return [];
    const keys = reqs.map((r) => checkKey(r.key));
    const full = keys.map((k) => this.key(k));
    const { rows } = await this.call(() => this.db.pool.query<{ key: string; value: Buffer; version: string }>(this.sql.bulkGet, [full]));
    const found = new Map(rows.map((r) => [r.key, r]));
    return keys.map((key, i): BulkGetItem => {
      const r = found.get(full[i]!);
      return r ? { key, data: r.value, etag: r.version } : { key };
    });
  }

  async bulkSet(reqs: readonly SetRequest[]): Promise<void> {
    await this.run(reqs.map((request) => ({ operation: 'upsert', request })));
  }

  async bulkDelete(reqs: readonly DeleteRequest[]): Promise<void> {
    await this.run(reqs.map((request) => ({ operation: 'delete', request })));
  }

  async transact(ops: readonly TransactionOperation[]): Promise<void> {
    await this.run(ops);
  }

  // === impl internals ===

  /** Checks every request first (bad input touches nothing), then writes; returns upsert etags. */
  private async run(ops: readonly TransactionOperation[]): Promise<string[]> {
    const writes: Write[] = ops.map((op) => {
      const w = op.operation === 'upsert' ? normaliseSet(op.request) : normaliseDelete(op.request);
      return { op: op.operation, w: { ...w, key: this.key(w.key) }, value: op.operation === 'upsert' ? op.request.value : Buffer.alloc(0) };
    });
    if (writes.length === 0) return [];
    const applyAll = async (q: Queryable): Promise<string[]> => {
      const etags: string[] = [];
      for (const w of writes) {
        const v = await this.apply(q, w);
        if (w.op === 'upsert') etags.push(v);
      }
      return etags;
    };
    // One statement is atomic by itself; more need a transaction.
    return this.call(() => (writes.length === 1 ? applyAll(this.db.pool) : this.db.transaction(applyAll)));
  }

  /** One write; its condition is in the statement, so no row back means the condition failed. */
  private async apply(q: Queryable, { op, w, value }: Write): Promise<string> {
    const c = w.condition;
    const { rows } =
      op === 'upsert'
        ? c.kind === 'etag'
          ? await q.query<{ version: string }>(this.sql.updateIfVersion, [w.key, value, w.ttlMs, c.version])
          : await q.query<{ version: string }>(c.kind === 'absent' ? this.sql.insertIfAbsent : this.sql.upsert, [w.key, value, w.ttlMs])
        : c.kind === 'etag'
          ? await q.query<{ version: string }>(this.sql.deleteIfVersion, [w.key, c.version])
          : await q.query<{ version: string }>(this.sql.delete, [w.key]);
    if (op === 'delete' && c.kind !== 'etag') return '';
    if (rows.length === 0) throw new ETagMismatchError(this.unprefixed(w.key), c.kind === 'absent' ? 'first-write: the key already exists' : undefined);
    return op === 'upsert' ? rows[0]!.version : '';
  }

  private async sweep(): Promise<void> {
    try {
      const { rowCount } = await this.db.pool.query(this.sql.sweep);
      if (rowCount) this.ctx.logger.debug({ component: this.ctx.name, deleted: rowCount }, 'state.postgresql: expired rows deleted');
    } catch (e) {
      this.ctx.logger.warn({ component: this.ctx.name, error: (e as Error).message }, 'state.postgresql: expired-row sweep failed; next interval retries');
    }
  }

  private key(k: string): string {
    // PostgreSQL text cannot hold NUL: say so instead of failing as a backend error.
    if (k.includes('\u0000')) throw new StateRequestError('key must not contain the NUL character');
    return this.prefix + k;
  }

  private unprefixed(k: string): string {
    return k.slice(this.prefix.length);
  }

  private call<T>(f: () => Promise<T>): Promise<T> {
    return this.db.call(
      f,
      (message, cause) => new StateBackendError(message, cause),
      (e) => e instanceof StateError,
    );
  }
}

/** The statements of one table. $ttl (milliseconds, 0 = none) becomes the expiry, on the server's clock. */
function statements(table: string) {
  const t = ident(table);
  const seq = ident(table, '_version_seq');
  const live = `(expires_at IS NULL OR expires_at > now())`;
  const expiry = `CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END`;
  const insert = `INSERT INTO ${t} AS s (key, value, version, expires_at) VALUES ($1, $2, nextval('${seq}'), ${expiry})`;
  const replace = `DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at, updated_at = now()`;
  return {
    ddl: [
      `CREATE SEQUENCE IF NOT EXISTS ${seq}`,
      `CREATE TABLE IF NOT EXISTS ${t} (key text PRIMARY KEY, value bytea NOT NULL, version bigint NOT NULL, expires_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())`,
      `CREATE INDEX IF NOT EXISTS ${ident(table.split('.').pop()!, '_expires_idx')} ON ${t} (expires_at) WHERE expires_at IS NOT NULL`,
    ],
    get: `SELECT value, version FROM ${t} WHERE key = $1 AND ${live}`,
    bulkGet: `SELECT key, value, version FROM ${t} WHERE key = ANY($1::text[]) AND ${live}`,
    upsert: `${insert} ON CONFLICT (key) ${replace} RETURNING version`,
    // An expired row counts as absent: first-write may take its place.
    insertIfAbsent: `${insert} ON CONFLICT (key) ${replace} WHERE s.expires_at IS NOT NULL AND s.expires_at <= now() RETURNING version`,
    updateIfVersion: `UPDATE ${t} SET value = $2, version = nextval('${seq}'), expires_at = ${expiry}, updated_at = now() WHERE key = $1 AND version = $4 AND ${live} RETURNING version`,
    delete: `DELETE FROM ${t} WHERE key = $1`,
    deleteIfVersion: `DELETE FROM ${t} WHERE key = $1 AND version = $2 AND ${live} RETURNING version`,
    sweep: `DELETE FROM ${t} WHERE expires_at IS NOT NULL AND expires_at <= now()`,
  };
}

export const postgresqlState: ComponentDefinition<PostgresqlStateStore, PostgresqlStateMetadata> = {
  type: 'state.postgresql',
  block: 'state',
  version: 'v1',
  metadataSchema: postgresqlStateMetadata,
  create: (m, ctx) => new PostgresqlStateStore(m, ctx),
};
