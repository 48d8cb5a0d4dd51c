/**
 * The state building block: the interface every backend implements (after Dapr's
 * `state/store.go`), the request types the front ends build, and the request normalisation
 * shared by the backends so they agree on the semantics:
 *
 * - An etag, when given, must equal the stored one (whatever the concurrency), else
 *   ETagMismatchError; a key that does not exist has no etag, so any etag mismatches.
 * - `first-write` without an etag writes only when the key does not exist yet.
 * - `last-write` without an etag (the default) overwrites.
 * - `ttlInSeconds` (metadata, a positive integer) expires the key; `-1` or absent keeps it forever.
 *   A write without a ttl clears an earlier one.
 * - Values are bytes; the HTTP front end stores the JSON text of the value.
 */
import type { Component } from '../registry.js';
import type { StateFeature } from './features.js';
import { ETagInvalidError, StateRequestError } from './errors.js';

export type Concurrency = 'first-write' | 'last-write';
export type Consistency = 'eventual' | 'strong';

export interface StateOptions {
  readonly concurrency?: Concurrency;
  readonly consistency?: Consistency;
}

export interface GetRequest {
  readonly key: string;
  readonly options?: Pick<StateOptions, 'consistency'>;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface GetResponse {
  readonly data: Buffer;
  readonly etag: string;
}

export interface SetRequest {
  readonly key: string;
  readonly value: Buffer;
  readonly etag?: string;
  readonly options?: StateOptions;
  /** `ttlInSeconds` is the one key read today. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface DeleteRequest {
  readonly key: string;
  readonly etag?: string;
  readonly options?: StateOptions;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface BulkGetItem {
  readonly key: string;
  /** Absent when the key does not exist. */
  readonly data?: Buffer;
  readonly etag?: string;
  readonly error?: string;
}

export type TransactionOperation =
  | { readonly operation: 'upsert'; readonly request: SetRequest }
  | { readonly operation: 'delete'; readonly request: DeleteRequest };

export interface StateStore extends Component {
  /** Only the optional features this store really has. */
  features(): readonly StateFeature[];
  /** null when the key does not exist (or has expired). */
  get(req: GetRequest): Promise<GetResponse | null>;
  /** Resolves with the new etag. */
  set(req: SetRequest): Promise<string>;
  delete(req: DeleteRequest): Promise<void>;
  bulkGet(reqs: readonly GetRequest[]): Promise<BulkGetItem[]>;
  /** Every write is checked before any is applied when the store is transactional, else one by one. */
  bulkSet(reqs: readonly SetRequest[]): Promise<void>;
  bulkDelete(reqs: readonly DeleteRequest[]): Promise<void>;
}

/** Stores with the TRANSACTIONAL feature: all operations apply, or none (a failing etag aborts all). */
export interface TransactionalStore extends StateStore {
  transact(ops: readonly TransactionOperation[], metadata?: Readonly<Record<string, string>>): Promise<void>;
}

export function isTransactional(s: StateStore): s is TransactionalStore {
  return s.features().includes('TRANSACTIONAL') && typeof (s as Partial<TransactionalStore>).transact === 'function';
}

// === request normalisation shared by the backends ===

/** How a write is conditioned: unconditional, on the etag, or on the key's absence. */
export type WriteCondition = { readonly kind: 'none' } | { readonly kind: 'etag'; readonly version: number } | { readonly kind: 'absent' };

export interface NormalisedWrite {
  readonly key: string;
  readonly condition: WriteCondition;
  /** 0 = no expiry. */
  readonly ttlMs: number;
}

export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new StateRequestError('key is empty');
  return key;
}

/** Etags are decimal versions > 0; anything else is invalid. */
export function parseETag(key: string, etag: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(etag)) throw new ETagInvalidError(key, etag);
  return Number(etag);
}

export function writeCondition(key: string, etag: string | undefined, options: StateOptions | undefined): WriteCondition {
  if (etag !== undefined && etag !== '') return { kind: 'etag', version: parseETag(key, etag) };
  if (options?.concurrency === 'first-write') return { kind: 'absent' };
  return { kind: 'none' };
}

export function ttlMs(metadata: Readonly<Record<string, string>> | undefined): number {
  const raw = metadata?.ttlInSeconds;
  if (raw === undefined || raw === '' || raw === '-1') return 0;
  if (!/^[0-9]+$/.test(raw) || Number(raw) === 0) throw new StateRequestError(`ttlInSeconds must be a positive integer or -1, got ${JSON.stringify(raw)}`);
  return Number(raw) * 1000;
}

export function normaliseSet(req: SetRequest): NormalisedWrite {
  const key = checkKey(req.key);
  return { key, condition: writeCondition(key, req.etag, req.options), ttlMs: ttlMs(req.metadata) };
}

export function normaliseDelete(req: DeleteRequest): NormalisedWrite {
  const key = checkKey(req.key);
  // first-write on delete without an etag has nothing to compare with: it is unconditional.
  const etag = req.etag !== undefined && req.etag !== '' ? req.etag : undefined;
  return { key, condition: etag === undefined ? { kind: 'none' } : { kind: 'etag', version: parseETag(key, etag) }, ttlMs: 0 };
}
