/**
 * The state conformance suite (after Dapr's tests/conformance/state): the same cases for every
 * backend, each store built through the real component registry from user-format YAML. Cases of
 * an optional feature run when the matrix declares it, and check it is really absent otherwise.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pino } from 'pino';
import { builtinComponentRegistry } from '../../../src/components/index.js';
import { componentSchema } from '../../../src/config/schema-components.js';
import {
  ETagInvalidError,
  ETagMismatchError,
  StateUnsupportedError,
  isTransactional,
  type StateFeature,
  type StateStore,
} from '../../../src/components/state/index.js';

export interface StateMatrixEntry {
  readonly type: string;
  /** The optional features the backend must have — and only these. */
  readonly features: readonly StateFeature[];
  /** The `components:` entry as a user writes it (name, type, metadata). */
  readonly yaml: string;
  /** Removes what the run left in the backend. */
  readonly cleanup?: () => Promise<void>;
}

export function buildStore(yaml: string): StateStore {
  const spec = componentSchema.parse(parse(yaml));
  const def = builtinComponentRegistry().get(spec.type, spec.version);
  if (!def) throw new Error(`unknown component type ${spec.type}`);
  return def.create(def.metadataSchema.parse(spec.metadata), { name: spec.name, logger: pino({ level: 'silent' }) }) as StateStore;
}

const b = (s: string): Buffer => Buffer.from(s);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function stateConformance(entry: StateMatrixEntry): void {
  describe(`state conformance: ${entry.type}`, () => {
    let store: StateStore;
    const run = randomUUID().slice(0, 8);
    const k = (name: string): string => `${run}-${name}`;
    const has = (f: StateFeature): boolean => entry.features.includes(f);

    beforeAll(async () => {
      store = buildStore(entry.yaml);
      await store.init();
    });
    afterAll(async () => {
      await entry.cleanup?.();
      await store?.close();
    });

    it('declares exactly the features of the matrix', () => {
      expect([...store.features()].sort()).toEqual([...entry.features].sort());
      expect(isTransactional(store)).toBe(has('TRANSACTIONAL'));
    });

    it('get of a missing key is null', async () => {
      expect(await store.get({ key: k('missing') })).toBeNull();
    });

    it('set then get returns the bytes and the etag set returned', async () => {
      const etag = await store.set({ key: k('a'), value: b('{"v":1}') });
      const got = await store.get({ key: k('a') });
      expect(got?.data.toString()).toBe('{"v":1}');
      expect(got?.etag).toBe(etag);
    });

    it('keeps binary values and keys with separators intact', async () => {
      const value = Buffer.from([0, 255, 1, 254, 10, 13]);
      const key = k('we/ird:key||ü');
      await store.set({ key, value });
      expect((await store.get({ key }))?.data.equals(value)).toBe(true);
    });

    it('overwrite (last-write, no etag) replaces the value and changes the etag', async () => {
      const e1 = await store.set({ key: k('o'), value: b('1') });
      const e2 = await store.set({ key: k('o'), value: b('2') });
      expect(e2).not.toBe(e1);
      expect((await store.get({ key: k('o') }))?.data.toString()).toBe('2');
    });

    it('delete removes the key; deleting a missing key succeeds', async () => {
      await store.set({ key: k('d'), value: b('x') });
      await store.delete({ key: k('d') });
      expect(await store.get({ key: k('d') })).toBeNull();
      await store.delete({ key: k('d') });
    });

    it('an empty key is rejected', async () => {
      await expect(store.set({ key: '', value: b('x') })).rejects.toThrow(/key is empty/);
    });

    if (entry.features.includes('ETAG')) {
      it('etag: a matching etag writes, a stale one fails and changes nothing', async () => {
        const e1 = await store.set({ key: k('e'), value: b('1') });
        const e2 = await store.set({ key: k('e'), value: b('2'), etag: e1, options: { concurrency: 'first-write' } });
        await expect(store.set({ key: k('e'), value: b('3'), etag: e1, options: { concurrency: 'first-write' } })).rejects.toBeInstanceOf(ETagMismatchError);
        const got = await store.get({ key: k('e') });
        expect(got).toMatchObject({ etag: e2 });
        expect(got?.data.toString()).toBe('2');
      });

      it('etag: any etag mismatches a key that does not exist; a malformed etag is invalid', async () => {
        await expect(store.set({ key: k('none'), value: b('1'), etag: '12345' })).rejects.toBeInstanceOf(ETagMismatchError);
        expect(await store.get({ key: k('none') })).toBeNull();
        await expect(store.set({ key: k('none'), value: b('1'), etag: 'not-an-etag' })).rejects.toBeInstanceOf(ETagInvalidError);
      });

      it('etag: first-write without an etag only creates', async () => {
        await store.set({ key: k('fw'), value: b('1'), options: { concurrency: 'first-write' } });
        await expect(store.set({ key: k('fw'), value: b('2'), options: { concurrency: 'first-write' } })).rejects.toBeInstanceOf(ETagMismatchError);
        expect((await store.get({ key: k('fw') }))?.data.toString()).toBe('1');
      });

      it('etag: delete with a stale etag fails and keeps the key; with the current one deletes', async () => {
        const e1 = await store.set({ key: k('de'), value: b('1') });
        const e2 = await store.set({ key: k('de'), value: b('2') });
        await expect(store.delete({ key: k('de'), etag: e1 })).rejects.toBeInstanceOf(ETagMismatchError);
        expect(await store.get({ key: k('de') })).not.toBeNull();
        await store.delete({ key: k('de'), etag: e2 });
        expect(await store.get({ key: k('de') })).toBeNull();
      });

      it('etag: an etag is not handed out again after delete and re-create', async () => {
        const e1 = await store.set({ key: k('re'), value: b('1') });
        await store.delete({ key: k('re') });
        await store.set({ key: k('re'), value: b('2') });
        await expect(store.set({ key: k('re'), value: b('3'), etag: e1 })).rejects.toBeInstanceOf(ETagMismatchError);
      });

      it('etag: 50 parallel writers with the same etag — exactly one wins, each round', async () => {
        for (let round = 0; round < 3; round++) {
          const { etag } = (await store.get({ key: k('race') })) ?? { etag: await store.set({ key: k('race'), value: b('start') }) };
          const results = await Promise.allSettled(
            Array.from({ length: 50 }, (_, i) => store.set({ key: k('race'), value: b(`w${i}`), etag, options: { concurrency: 'first-write' } })),
          );
          const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
          expect(won).toHaveLength(1);
          for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ETagMismatchError);
          expect((await store.get({ key: k('race') }))?.data.toString()).toBe(`w${won[0]}`);
        }
      });

      it('etag: 50 parallel first-write creators of a new key — exactly one wins', async () => {
        const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => store.set({ key: k('create-race'), value: b(`c${i}`), options: { concurrency: 'first-write' } })));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      });
    } else {
      it('no ETAG feature: an etag-conditioned write is refused as unsupported', async () => {
        await expect(store.set({ key: k('e'), value: b('1'), etag: '1' })).rejects.toBeInstanceOf(StateUnsupportedError);
      });
    }

    if (entry.features.includes('TTL')) {
      it('ttl: a key with ttlInSeconds expires; a later write without ttl keeps it', async () => {
        await store.set({ key: k('ttl'), value: b('1'), metadata: { ttlInSeconds: '1' } });
        await store.set({ key: k('ttl-cleared'), value: b('1'), metadata: { ttlInSeconds: '1' } });
        await store.set({ key: k('ttl-cleared'), value: b('2') });
        expect(await store.get({ key: k('ttl') })).not.toBeNull();
        await sleep(1300);
        expect(await store.get({ key: k('ttl') })).toBeNull();
        expect((await store.get({ key: k('ttl-cleared') }))?.data.toString()).toBe('2');
      });

      it('ttl: a malformed ttlInSeconds is rejected', async () => {
        await expect(store.set({ key: k('ttl-bad'), value: b('1'), metadata: { ttlInSeconds: 'soon' } })).rejects.toThrow(/ttlInSeconds/);
      });
    } else {
      it('no TTL feature: a write with ttlInSeconds is refused as unsupported', async () => {
        await expect(store.set({ key: k('ttl'), value: b('1'), metadata: { ttlInSeconds: '1' } })).rejects.toBeInstanceOf(StateUnsupportedError);
      });
    }

    it('bulk: set, get (in order, missing keys without data), delete', async () => {
      await store.bulkSet([
        { key: k('b1'), value: b('1') },
        { key: k('b2'), value: b('2') },
        { key: k('b3'), value: b('3') },
      ]);
      const got = await store.bulkGet([k('b1'), k('bx'), k('b2'), k('b3')].map((key) => ({ key })));
      expect(got.map((g) => [g.key, g.data?.toString()])).toEqual([
        [k('b1'), '1'],
        [k('bx'), undefined],
        [k('b2'), '2'],
        [k('b3'), '3'],
      ]);
      expect(got[0]!.etag).toBeTruthy();
      expect(got[1]!.etag).toBeUndefined();
      await store.bulkDelete([{ key: k('b1') }, { key: k('b2') }]);
      expect((await store.bulkGet([{ key: k('b1') }, { key: k('b2') }, { key: k('b3') }])).map((g) => g.data?.toString())).toEqual([undefined, undefined, '3']);
    });

    if (entry.features.includes('TRANSACTIONAL')) {
      it('transaction: upserts and deletes apply together', async () => {
        if (!isTransactional(store)) throw new Error('not transactional');
        await store.set({ key: k('t-del'), value: b('x') });
        await store.transact([
          { operation: 'upsert', request: { key: k('t1'), value: b('1') } },
          { operation: 'upsert', request: { key: k('t2'), value: b('2') } },
          { operation: 'delete', request: { key: k('t-del') } },
        ]);
        expect((await store.get({ key: k('t1') }))?.data.toString()).toBe('1');
        expect((await store.get({ key: k('t2') }))?.data.toString()).toBe('2');
        expect(await store.get({ key: k('t-del') })).toBeNull();
      });

      it('transaction: a failing etag aborts the whole transaction', async () => {
        if (!isTransactional(store)) throw new Error('not transactional');
        const keep = await store.set({ key: k('t-keep'), value: b('old') });
        const stale = await store.set({ key: k('t-stale'), value: b('1') });
        await store.set({ key: k('t-stale'), value: b('2') });
        await expect(
          store.transact([
            { operation: 'upsert', request: { key: k('t-new'), value: b('new') } },
            { operation: 'upsert', request: { key: k('t-keep'), value: b('changed'), etag: keep } },
            { operation: 'delete', request: { key: k('t-keep2') } },
            { operation: 'upsert', request: { key: k('t-stale'), value: b('3'), etag: stale } },
          ]),
        ).rejects.toBeInstanceOf(ETagMismatchError);
        expect(await store.get({ key: k('t-new') })).toBeNull();
        expect((await store.get({ key: k('t-keep') }))?.data.toString()).toBe('old');
        expect((await store.get({ key: k('t-stale') }))?.data.toString()).toBe('2');
      });

      it('transaction: a later operation sees the earlier ones (create then first-write fails)', async () => {
        if (!isTransactional(store)) throw new Error('not transactional');
        await expect(
          store.transact([
            { operation: 'upsert', request: { key: k('t-seq'), value: b('1') } },
            { operation: 'upsert', request: { key: k('t-seq'), value: b('2'), options: { concurrency: 'first-write' } } },
          ]),
        ).rejects.toBeInstanceOf(ETagMismatchError);
        expect(await store.get({ key: k('t-seq') })).toBeNull();
      });
    }
  });
}
