/**
 * `state.redis`: values in Redis hashes, every write through one Lua script (scripts.ts) so etag
 * checks, bulk writes and transactions are atomic. The client never queues commands while
 * disconnected: a call during an outage fails at once with the reason (nothing is acknowledged
 * that was not stored) while ioredis reconnects in the background.
 */
import type { Redis } from 'ioredis';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { RedisComponent, RedisConnection } from '../../redis/connection.js';
import type { StateFeature } from '../features.js';
import { ETagMismatchError, StateBackendError, StateError } from '../errors.js';
import {
  checkKey,
  normaliseDelete,
  normaliseSet,
  type BulkGetItem,
  type DeleteRequest,
  type GetRequest,
  type GetResponse,
  type SetRequest,
  type TransactionOperation,
  type TransactionalStore,
} from '../store.js';
import { redisStateMetadata, type RedisStateMetadata } from './config.js';
import { WRITE_SCRIPT } from './scripts.js';

const FEATURES: readonly StateFeature[] = ['ETAG', 'TRANSACTIONAL', 'TTL'];
const COUNTER = '\u0000capa-etag-seq';

type WriteCommand = (numKeys: number, ...args: (string | Buffer)[]) => Promise<number[]>;

export class RedisStateStore extends RedisComponent implements TransactionalStore {
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly write: WriteCommand;

  constructor(m: RedisStateMetadata, ctx: ComponentContext) {
    super(
      new RedisConnection(m, 'state.redis', ctx, {
        backendError: (message, cause) => new StateBackendError(message, cause),
        // Typed already, or a script's etag refusal that run() turns into ETagMismatchError.
        passThrough: (e) => e instanceof StateError || /^CAPA(ETAG|EXISTS) /.test((e as Error).message),
      }),
    );
    this.client = this.conn.client;
    this.prefix = m.keyPrefix;
    this.client.defineCommand('capaStateWrite', { lua: WRITE_SCRIPT });
    this.write = (this.client as unknown as { capaStateWrite: WriteCommand }).capaStateWrite.bind(this.client);
  }

  // === impl StateStore ===

  features(): readonly StateFeature[] {
    return FEATURES;
  }

  async get(req: GetRequest): Promise<GetResponse | null> {
    const key = checkKey(req.key);
    const [data, version] = await this.conn.call(() => this.client.hmgetBuffer(this.prefix + key, 'data', 'version'));
    if (!data || !version) return null;
    return { data, etag: version.toString() };
  }

  async set(req: SetRequest): Promise<string> {
    const [v] = await this.run([{ operation: 'upsert', request: req }]);
    return String(v);
  }

  async delete(req: DeleteRequest): Promise<void> {
    await this.run([{ operation: 'delete', request: req }]);
  }

  async bulkGet(reqs: readonly GetRequest[]): Promise<BulkGetItem[]> {
    if (reqs.length === 0) return [];
    const keys = reqs.map((r) => checkKey(r.key));
    const pipe = this.client.pipeline();
    for (const k of keys) pipe.hmgetBuffer(this.prefix + k, 'data', 'version');
    const res = await this.conn.call(() => pipe.exec());
    return keys.map((key, i): BulkGetItem => {
      const [err, row] = res?.[i] ?? [new Error('no reply'), null];
      if (err) return { key, error: err.message };
      const [data, version] = row as (Buffer | null)[];
      return data && version ? { key, data, etag: version.toString() } : { key };
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

  private async run(ops: readonly TransactionOperation[]): Promise<number[]> {
    if (ops.length === 0) return [];
    const keys: string[] = [this.prefix + COUNTER];
    const args: (string | Buffer)[] = [];
    for (const op of ops) {
      const w = op.operation === 'upsert' ? normaliseSet(op.request) : normaliseDelete(op.request);
      keys.push(this.prefix + w.key);
      const version = w.condition.kind === 'etag' ? String(w.condition.version) : '';
      const data = op.operation === 'upsert' ? op.request.value : '';
      args.push(op.operation === 'upsert' ? 'set' : 'del', w.condition.kind, version, data, String(w.ttlMs));
    }
    try {
      return await this.conn.call(() => this.write(keys.length, ...keys, ...args));
    } catch (e) {
      const m = /^CAPA(ETAG|EXISTS) (\d+)/.exec((e as Error).message);
      if (!m) throw e;
      const key = keys[Number(m[2])]!.slice(this.prefix.length);
      throw m[1] === 'EXISTS' ? new ETagMismatchError(key, 'first-write: the key already exists') : new ETagMismatchError(key);
    }
  }
}

export const redisState: ComponentDefinition<RedisStateStore, RedisStateMetadata> = {
  type: 'state.redis',
  block: 'state',
  version: 'v1',
  metadataSchema: redisStateMetadata,
  create: (m, ctx) => new RedisStateStore(m, ctx),
};
