/**
 * Dapr's state API over the state building block:
 *   POST   /v1.0/state/{store}              save (array of items)        → 204
 *   GET    /v1.0/state/{store}/{key}        value + ETag header          → 200 | 204 absent
 *   DELETE /v1.0/state/{store}/{key}        If-Match etag                → 204
 *   POST   /v1.0/state/{store}/bulk         {keys, parallelism}          → 200 [{key, data, etag}]
 *   POST   /v1.0/state/{store}/transaction  {operations: [...]}          → 204
 * Values are stored as the JSON text of the item's `value` and returned as stored.
 */
import type { ComponentsOf } from '../../components/manager.js';
import type { StateOptions, StateStore, TransactionOperation, SetRequest } from '../../components/state/store.js';
import { isTransactional } from '../../components/state/store.js';
import { DaprHttpError, findComponent, stateFailure } from './errors.js';

/** The configured state stores (the manager's view of the block). */
export type StateStores = ComponentsOf<StateStore>;

export interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

const NO_CONTENT: Reply = { status: 204 };

export function findStore(stores: StateStores, name: string): StateStore {
  return findComponent(stores, name, {
    label: 'state store',
    notConfigured: ['ERR_STATE_STORES_NOT_CONFIGURED', 'state store is not configured'],
    notFound: 'ERR_STATE_STORE_NOT_FOUND',
    notFoundMessage: (n) => `state store ${n} is not found`,
    notReady: 'ERR_STATE_STORE_NOT_FOUND',
  });
}

export async function getState(store: StateStore, storeName: string, key: string, query: URLSearchParams): Promise<Reply> {
  try {
    const r = await store.get({ key, options: consistencyOf(query.get('consistency')), metadata: queryMetadata(query) });
    if (!r) return NO_CONTENT;
    return { status: 200, headers: { 'content-type': 'application/json', etag: r.etag }, body: r.data };
  } catch (e) {
    throw stateFailure('ERR_STATE_GET', `fail to get ${key} from state store ${storeName}`, e);
  }
}

export async function saveState(store: StateStore, storeName: string, body: unknown): Promise<Reply> {
  if (!Array.isArray(body)) throw malformed('expected a JSON array of state items');
  const reqs = body.map((item, i) => setRequest(item, `[${i}]`));
  try {
    await store.bulkSet(reqs);
  } catch (e) {
    throw stateFailure('ERR_STATE_SAVE', `failed saving state in state store ${storeName}`, e);
  }
  return NO_CONTENT;
}

export async function deleteState(store: StateStore, key: string, ifMatch: string | undefined, query: URLSearchParams): Promise<Reply> {
  const options: StateOptions = { ...consistencyOf(query.get('consistency')), ...concurrencyOf(query.get('concurrency'), 'concurrency') };
  try {
    await store.delete({ key, etag: ifMatch, options, metadata: queryMetadata(query) });
  } catch (e) {
    throw stateFailure('ERR_STATE_DELETE', `failed deleting state with key ${key}`, e);
  }
  return NO_CONTENT;
}

export async function bulkGetState(store: StateStore, storeName: string, body: unknown, query: URLSearchParams): Promise<Reply> {
  const b = body as { keys?: unknown; metadata?: unknown } | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.keys) || !b.keys.every((k) => typeof k === 'string')) throw malformed("expected {keys: [string, ...]}");
  const metadata = { ...queryMetadata(query), ...stringRecord(b.metadata, 'metadata') };
  let items;
  try {
    items = await store.bulkGet((b.keys as string[]).map((key) => ({ key, metadata })));
  } catch (e) {
    throw stateFailure('ERR_STATE_BULK_GET', `fail to get bulk state from state store ${storeName}`, e);
  }
  const out = items.map((it) => {
    if (it.error !== undefined) return { key: it.key, error: it.error };
    if (!it.data) return { key: it.key };
    return { key: it.key, data: parseStored(it.data), etag: it.etag };
  });
  const json = JSON.stringify(out);
  return { status: 200, headers: { 'content-type': 'application/json' }, body: json };
}

export async function transactState(store: StateStore, storeName: string, body: unknown): Promise<Reply> {
  if (!isTransactional(store)) throw new DaprHttpError('ERR_STATE_STORE_NOT_SUPPORTED', `state store ${storeName} doesn't support transaction`);
  const b = body as { operations?: unknown; metadata?: unknown } | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.operations)) throw malformed('expected {operations: [...]}');
  const metadata = stringRecord(b.metadata, 'metadata');
  const ops: TransactionOperation[] = b.operations.map((o: any, i: number) => {
    const at = `operations[${i}]`;
    if (!o || typeof o !== 'object') throw malformed(`${at}: expected an object`);
    if (o.operation === 'upsert') return { operation: 'upsert', request: setRequest(o.request, `${at}.request`, metadata) };
    if (o.operation === 'delete') {
      const r = o.request;
      if (!r || typeof r !== 'object') throw malformed(`${at}.request: expected an object`);
      return { operation: 'delete', request: { key: r.key, etag: etagOf(r.etag, `${at}.request.etag`), options: optionsOf(r.options, `${at}.request.options`) } };
    }
    throw new DaprHttpError('ERR_NOT_SUPPORTED_STATE_OPERATION', `operation type ${String(o.operation)} not supported`);
  });
  try {
    await store.transact(ops, metadata);
  } catch (e) {
    throw stateFailure('ERR_STATE_TRANSACTION', 'error while executing state transaction', e);
  }
  return NO_CONTENT;
}

// === request parsing ===

function setRequest(item: any, at: string, defaults: Record<string, string> = {}): SetRequest {
  if (!item || typeof item !== 'object' || Array.isArray(item)) throw malformed(`${at}: expected an object`);
  if (typeof item.key !== 'string' || item.key === '') throw malformed(`${at}.key: must be a non-empty string`);
  return {
    key: item.key,
    // Dapr stores the JSON encoding of `value`; a missing value is stored as JSON null.
    value: Buffer.from(JSON.stringify(item.value ?? null)),
    etag: etagOf(item.etag, `${at}.etag`),
    options: optionsOf(item.options, `${at}.options`),
    metadata: { ...defaults, ...stringRecord(item.metadata, `${at}.metadata`) },
  };
}

function etagOf(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw malformed(`${at}: expected a string`);
}

function optionsOf(v: unknown, at: string): StateOptions | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object') throw malformed(`${at}: expected an object`);
  const o = v as { concurrency?: unknown; consistency?: unknown };
  return { ...concurrencyOf(o.concurrency, `${at}.concurrency`), ...consistencyOf(o.consistency, `${at}.consistency`) };
}

function concurrencyOf(v: unknown, at: string): Pick<StateOptions, 'concurrency'> {
  if (v === undefined || v === null || v === '') return {};
  if (v === 'first-write' || v === 'last-write') return { concurrency: v };
  throw malformed(`${at}: expected first-write or last-write, got ${JSON.stringify(v)}`);
}

function consistencyOf(v: unknown, at = 'consistency'): Pick<StateOptions, 'consistency'> {
  if (v === undefined || v === null || v === '') return {};
  if (v === 'eventual' || v === 'strong') return { consistency: v };
  throw malformed(`${at}: expected eventual or strong, got ${JSON.stringify(v)}`);
}

function stringRecord(v: unknown, at: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw malformed(`${at}: expected an object`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  return out;
}

/** `?metadata.ttlInSeconds=10` → {ttlInSeconds: '10'}. */
function queryMetadata(q: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of q) if (k.startsWith('metadata.')) out[k.slice(9)] = v;
  return out;
}

/** Bulk get returns values as JSON; bytes that are not JSON come back as a string. */
function parseStored(data: Buffer): unknown {
  const text = data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function malformed(reason: string): DaprHttpError {
  return new DaprHttpError('ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${reason}`);
}
