/**
 * Layotto's state RPCs (GetState, GetBulkState, SaveState, DeleteState, DeleteBulkState,
 * ExecuteStateTransaction) over the state building block. Values are bytes, stored as sent.
 *
 * Etags: the Layotto SDK sends `Etag{value: "0"}` when the caller gave none, so "0" and "" mean
 * "no etag" (Dapr's Redis store reads "0" the same way); any other value must match. Options map
 * CONCURRENCY_FIRST_WRITE / LAST_WRITE and CONSISTENCY_EVENTUAL / STRONG to the block's
 * options; UNSPECIFIED leaves the store's default.
 */
import type { Concurrency, Consistency, DeleteRequest, SetRequest, StateOptions, StateStore, TransactionOperation } from '../../components/state/store.js';
import { isTransactional } from '../../components/state/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { Code, GrpcError, invalid, wrap } from './errors.js';
import { findComponent, stringMap } from './stores.js';

interface EtagPB {
  value: string;
}
interface StateOptionsPB {
  concurrency: string;
  consistency: string;
}
interface StateItemPB {
  key: string;
  value: Buffer;
  etag: EtagPB | null;
  metadata: Record<string, string>;
  options: StateOptionsPB | null;
}

const CONCURRENCY: Record<string, Concurrency> = { CONCURRENCY_FIRST_WRITE: 'first-write', CONCURRENCY_LAST_WRITE: 'last-write' };
const CONSISTENCY: Record<string, Consistency> = { CONSISTENCY_EVENTUAL: 'eventual', CONSISTENCY_STRONG: 'strong' };

function etagOf(e: EtagPB | null | undefined): string | undefined {
  const v = e?.value;
  return v === undefined || v === '' || v === '0' ? undefined : v;
}

function optionsOf(o: StateOptionsPB | null | undefined): StateOptions | undefined {
  if (!o) return undefined;
  const concurrency = CONCURRENCY[o.concurrency];
  const consistency = CONSISTENCY[o.consistency];
  return { ...(concurrency ? { concurrency } : {}), ...(consistency ? { consistency } : {}) };
}

function setRequest(item: StateItemPB): SetRequest {
  return { key: item.key, value: item.value ?? Buffer.alloc(0), etag: etagOf(item.etag), options: optionsOf(item.options), metadata: stringMap(item.metadata) };
}

function deleteRequest(item: StateItemPB): DeleteRequest {
  return { key: item.key, etag: etagOf(item.etag), options: optionsOf(item.options), metadata: stringMap(item.metadata) };
}

function items(list: unknown, field: string): StateItemPB[] {
  if (!Array.isArray(list)) return [];
  list.forEach((it, i) => {
    if (!it) throw invalid(`${field}[${i}] is missing`);
  });
  return list as StateItemPB[];
}

export function stateHandlers(services: RuntimeServices) {
  const store = (name: string): StateStore => findComponent<StateStore>(services, 'state', name);

  return {
    async GetState(req: { store_name: string; key: string; consistency: string; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      const consistency = CONSISTENCY[req.consistency];
      const r = await wrap(`fail to get ${req.key} from state store ${req.store_name}`, () =>
        s.get({ key: req.key, options: consistency ? { consistency } : undefined, metadata: stringMap(req.metadata) }),
      );
      return r ? { data: r.data, etag: r.etag, metadata: {} } : { data: Buffer.alloc(0), etag: '', metadata: {} };
    },

    async GetBulkState(req: { store_name: string; keys: string[]; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      if (!req.keys?.length) return { items: [] };
      const metadata = stringMap(req.metadata);
      const got = await wrap(`fail to get bulk state from state store ${req.store_name}`, () => s.bulkGet(req.keys.map((key) => ({ key, metadata }))));
      return {
        items: got.map((it) => ({ key: it.key, data: it.data ?? Buffer.alloc(0), etag: it.etag ?? '', error: it.error ?? '', metadata: {} })),
      };
    },

    async SaveState(req: { store_name: string; states: StateItemPB[] }) {
      const s = store(req.store_name);
      const reqs = items(req.states, 'states').map(setRequest);
      if (reqs.length) await wrap(`failed saving state in state store ${req.store_name}`, () => s.bulkSet(reqs));
      return {};
    },

    async DeleteState(req: { store_name: string; key: string; etag: EtagPB | null; options: StateOptionsPB | null; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      await wrap(`failed deleting state with key ${req.key}`, () =>
        s.delete({ key: req.key, etag: etagOf(req.etag), options: optionsOf(req.options), metadata: stringMap(req.metadata) }),
      );
      return {};
    },

    async DeleteBulkState(req: { store_name: string; states: StateItemPB[] }) {
      const s = store(req.store_name);
      const reqs = items(req.states, 'states').map(deleteRequest);
      if (reqs.length) await wrap(`failed deleting state in state store ${req.store_name}`, () => s.bulkDelete(reqs));
      return {};
    },

    async ExecuteStateTransaction(req: { storeName: string; operations: { operationType: string; request: StateItemPB | null }[]; metadata: Record<string, string> }) {
      const s = store(req.storeName);
      if (!isTransactional(s)) throw new GrpcError(Code.UNIMPLEMENTED, `state store ${req.storeName} doesn't support transaction`);
      const ops: TransactionOperation[] = (req.operations ?? []).map((op, i) => {
        if (!op?.request) throw invalid(`operations[${i}].request is missing`);
        if (op.operationType === 'upsert') return { operation: 'upsert', request: setRequest(op.request) };
        if (op.operationType === 'delete') return { operation: 'delete', request: deleteRequest(op.request) };
        throw invalid(`operations[${i}].operationType: operation type ${JSON.stringify(op.operationType)} not supported (upsert or delete)`);
      });
      if (ops.length) await wrap('error while executing state transaction', () => s.transact(ops, stringMap(req.metadata)));
      return {};
    },
  };
}
