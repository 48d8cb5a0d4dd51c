/**
 * `sequencer.postgresql`: one row per key, advanced by a single upsert that returns the new
 * value. The row lock serialises concurrent callers (any number of sidecars), and the value is
 * committed before it is returned, so an id is never handed out twice, across restarts too.
 */
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { ComponentBackendError, ComponentError, ComponentRequestError } from '../../errors.js';
import { PgPool, createOnce, ident } from '../../state/postgresql/pg.js';
import { checkSequencerKey } from '../key.js';
import type { NextIdRequest, Sequencer } from '../store.js';
import { postgresqlSequencerMetadata, type PostgresqlSequencerMetadata } from './config.js';

export class PostgresqlSequencer implements Sequencer {
  private readonly db: PgPool;
  private readonly table: string;
  private readonly next: string;
  private initialised = false;

  constructor(m: PostgresqlSequencerMetadata, ctx: ComponentContext) {
    this.db = new PgPool({ connectionString: m.connectionString, timeoutInSeconds: m.timeoutInSeconds, type: 'sequencer.postgresql' }, ctx);
    this.table = m.tableName;
    const t = ident(m.tableName);
    this.next = `INSERT INTO ${t} AS s (key, value) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET value = s.value + 1 RETURNING value`;
  }

  // === impl Component ===

  async init(): Promise<void> {
    if (this.initialised) return;
    try {
      await createOnce(this.db, this.table, [`CREATE TABLE IF NOT EXISTS ${ident(this.table)} (key text PRIMARY KEY, value bigint NOT NULL)`]);
    } catch (e) {
      this.db.lastError = (e as Error).message;
      throw new ComponentBackendError(`cannot prepare table ${this.table} in PostgreSQL at ${this.db.where}: ${(e as Error).message}`, e);
    }
    this.initialised = true;
    this.db.lastError = '';
  }

  async close(): Promise<void> {
    this.initialised = false;
    await this.db.end();
  }

  status(): { ready: boolean; error?: string } {
    return this.db.status(this.initialised);
  }

  features(): readonly string[] {
    return [];
  }

  // === impl Sequencer ===

  async nextId(req: NextIdRequest): Promise<bigint> {
    const key = checkSequencerKey(req.key);
    if (key.includes('\u0000')) throw new ComponentRequestError('key must not contain the NUL character');
    const { rows } = await this.db.call(
      () => this.db.pool.query<{ value: string }>(this.next, [key]),
      (message, cause) => new ComponentBackendError(message, cause),
      (e) => e instanceof ComponentError,
    );
    // pg returns bigint columns as decimal strings: exact past 2^53.
    return BigInt(rows[0]!.value);
  }
}

export const postgresqlSequencer: ComponentDefinition<PostgresqlSequencer, PostgresqlSequencerMetadata> = {
  type: 'sequencer.postgresql',
  block: 'sequencer',
  version: 'v1',
  metadataSchema: postgresqlSequencerMetadata,
  create: (m, ctx) => new PostgresqlSequencer(m, ctx),
};
