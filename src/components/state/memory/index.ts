/**
 * `state.memory`: the embedded default. A Map in the sidecar process; lost on restart. Etags are
 * a per-store counter, so an etag is never handed out twice (not even after delete + re-create).
 * Expired keys are dropped on read and by a sweep once a second.
 */
import type { ComponentDefinition } from '../../registry.js';
import type { StateFeature } from '../features.js';
import { ETagMismatchError } from '../errors.js';
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
import { memoryStateMetadata, type MemoryStateMetadata } from './config.js';

interface Entry {
  readonly data: Buffer;
  readonly version: number;
  /** 0 = never. */
  readonly expiresAt: number;
}

const FEATURES: readonly StateFeature[] = ['ETAG', 'TRANSACTIONAL', 'TTL'];

export class MemoryStateStore implements TransactionalStore {
  private readonly items = new Map<string, Entry>();
  private seq = 0;
  private sweeper: NodeJS.Timeout | null = null;

  async init(): Promise<void> {
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  features(): readonly StateFeature[] {
    return FEATURES;
  }

  async get(req: GetRequest): Promise<GetResponse | null> {
    const e = this.live(checkKey(req.key));
    return e ? { data: e.data, etag: String(e.version) } : null;
  }

  async set(req: SetRequest): Promise<string> {
    const [etag] = this.apply([{ operation: 'upsert', request: req }]);
    return etag!;
  }

  async delete(req: DeleteRequest): Promise<void> {
    this.apply([{ operation: 'delete', request: req }]);
  }

  async bulkGet(reqs: readonly GetRequest[]): Promise<BulkGetItem[]> {
    return Promise.all(reqs.map(async (r) => ({ key: r.key, ...((await this.get(r)) ?? {}) })));
  }

  async bulkSet(reqs: readonly SetRequest[]): Promise<void> {
    this.apply(reqs.map((request) => ({ operation: 'upsert', request })));
  }

  async bulkDelete(reqs: readonly DeleteRequest[]): Promise<void> {
    this.apply(reqs.map((request) => ({ operation: 'delete', request })));
  }

  async transact(ops: readonly TransactionOperation[]): Promise<void> {
    this.apply(ops);
  }

  /** Check every operation against the state the earlier ones leave, then commit all; returns upsert etags. */
  private apply(ops: readonly TransactionOperation[]): string[] {
    const staged = new Map<string, Entry | null>();
    const writes: { w: NormalisedWrite; op: TransactionOperation }[] = ops.map((op) => ({
      op,
      w: op.operation === 'upsert' ? normaliseSet(op.request) : normaliseDelete(op.request),
    }));
    const now = Date.now();
    const etags: string[] = [];
    let seq = this.seq;
    for (const { w, op } of writes) {
      const cur = staged.has(w.key) ? staged.get(w.key)! : this.live(w.key);
      if (w.condition.kind === 'etag' && cur?.version !== w.condition.version) throw new ETagMismatchError(w.key);
      if (w.condition.kind === 'absent' && cur) throw new ETagMismatchError(w.key, 'first-write: the key already exists');
      if (op.operation === 'upsert') {
        const version = ++seq;
        staged.set(w.key, { data: Buffer.from(op.request.value), version, expiresAt: w.ttlMs > 0 ? now + w.ttlMs : 0 });
        etags.push(String(version));
      } else {
        staged.set(w.key, null);
      }
    }
    this.seq = seq;
    for (const [k, e] of staged) {
      if (e) this.items.set(k, e);
      else this.items.delete(k);
    }
    return etags;
  }

  private live(key: string): Entry | undefined {
    const e = this.items.get(key);
    if (e && e.expiresAt !== 0 && e.expiresAt <= Date.now()) {
      this.items.delete(key);
      return undefined;
    }
    return e;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.items) if (e.expiresAt !== 0 && e.expiresAt <= now) this.items.delete(k);
  }
}

export const memoryState: ComponentDefinition<MemoryStateStore, MemoryStateMetadata> = {
  type: 'state.memory',
  block: 'state',
  version: 'v1',
  metadataSchema: memoryStateMetadata,
  create: () => new MemoryStateStore(),
};
