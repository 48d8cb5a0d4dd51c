/**
 * The configuration conformance suite: the same cases for every backend (all WRITABLE), built
 * through the real registry from user-format YAML; changes must reach subscribers within 1 s,
 * also when written by a second store on the same backend (another sidecar).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComponentRequestError } from '../../../src/components/errors.js';
import type { ConfigurationStore } from '../../../src/components/configuration/store.js';
import { buildComponent, sleep } from '../lock/build.js';
import type { ConfigurationMatrixEntry } from './matrix.js';
import { Changes } from './watch.js';

export function configurationConformance(entry: ConfigurationMatrixEntry): void {
  describe(`configuration conformance: ${entry.type}`, () => {
    let store: ConfigurationStore;
    let setup: ReturnType<ConfigurationMatrixEntry['setup']>;
    const run = randomUUID().slice(0, 8);
    const k = (name: string): string => `${run}-${name}`;
    const valueOf = async (key: string) => (await store.get({ keys: [key] }))[0];

    beforeAll(async () => {
      setup = entry.setup();
      store = buildComponent<ConfigurationStore>(setup.yaml);
      await store.init();
    });
    afterAll(async () => {
      await store?.close();
      await setup?.cleanup();
    });

    it('is WRITABLE', () => {
      expect(store.features()).toContain('WRITABLE');
    });

    it('save then get by keys; missing keys are absent; empty keys return every item', async () => {
      await store.save([
        { key: k('a'), value: 'alpha' },
        { key: k('b'), value: 'beta: with || separators' },
      ]);
      const got = await store.get({ keys: [k('a'), k('missing'), k('b')] });
      expect(got.map((i) => [i.key, i.value])).toEqual([
        [k('a'), 'alpha'],
        [k('b'), 'beta: with || separators'],
      ]);
      for (const i of got) expect(i.version).not.toBe('');
      const all = await store.get({ keys: [] });
      expect(all.map((i) => i.key).sort()).toEqual([k('a'), k('b')].sort());
    });

    it('a new value has a different version', async () => {
      await store.save([{ key: k('v'), value: '1' }]);
      const v1 = await valueOf(k('v'));
      await store.save([{ key: k('v'), value: '2' }]);
      const v2 = await valueOf(k('v'));
      expect(v2?.value).toBe('2');
      expect(v2?.version).not.toBe(v1?.version);
    });

    it('delete removes keys; deleting a missing key succeeds', async () => {
      await store.save([{ key: k('d'), value: 'x' }]);
      await store.delete({ keys: [k('d'), k('never')] });
      expect(await store.get({ keys: [k('d')] })).toEqual([]);
    });

    it('rejects empty keys, a non-string value and a delete of no keys', async () => {
      await expect(store.save([{ key: '', value: 'x' }])).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(store.save([{ key: k('n'), value: 5 as unknown as string }])).rejects.toThrow(/must be a string/);
      await expect(store.get({ keys: [''] })).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(store.delete({ keys: [] })).rejects.toThrow(/keys is empty/);
    });

    it('a subscriber gets its keys’ changes within 1 s (key, value, version), deletes as deleted, and nothing else', async () => {
      await store.save([{ key: k('s1'), value: 'old' }]);
      const changes = new Changes();
      const watch = await store.subscribe({ keys: [k('s1'), k('s2')] }, changes.onChange);
      try {
        await store.save([{ key: k('s1'), value: 'new' }]);
        const got = await changes.next((i) => i.key === k('s1') && i.value === 'new');
        expect(got.version).toBe((await valueOf(k('s1')))?.version);
        expect(got.deleted).toBeFalsy();

        await store.save([{ key: k('unrelated'), value: 'x' }]);
        await store.save([{ key: k('s2'), value: 'two' }]);
        await changes.next((i) => i.key === k('s2'));

        await store.delete({ keys: [k('s1')] });
        const del = await changes.next((i) => i.key === k('s1') && i.deleted === true);
        expect(del.value).toBe('');
        expect(changes.keys()).not.toContain(k('unrelated'));
      } finally {
        await watch.close();
      }
    });

    it('a subscriber with no keys gets every key', async () => {
      const changes = new Changes();
      const watch = await store.subscribe({ keys: [] }, changes.onChange);
      try {
        await store.save([{ key: k('any'), value: 'x' }]);
        await changes.next((i) => i.key === k('any') && i.value === 'x');
      } finally {
        await watch.close();
      }
    });

    it('watch.close() stops notifications', async () => {
      const closed = new Changes();
      const control = new Changes();
      const w1 = await store.subscribe({ keys: [k('c')] }, closed.onChange);
      const w2 = await store.subscribe({ keys: [k('c')] }, control.onChange);
      await w1.close();
      await store.save([{ key: k('c'), value: 'after-close' }]);
      await control.next((i) => i.key === k('c'));
      await sleep(200);
      expect(closed.items).toEqual([]);
      await w2.close();
    });

    it('a write by a second store on the same backend (another sidecar) reaches subscribers within 1 s', async () => {
      const other = buildComponent<ConfigurationStore>(setup.yaml);
      await other.init();
      const changes = new Changes();
      const watch = await store.subscribe({ keys: [k('x')] }, changes.onChange);
      try {
        await other.save([{ key: k('x'), value: 'from-other' }]);
        const got = await changes.next((i) => i.key === k('x') && i.value === 'from-other');
        expect(got.version).toBe((await other.get({ keys: [k('x')] }))[0]?.version);
        expect((await valueOf(k('x')))?.value).toBe('from-other');
        await other.delete({ keys: [k('x')] });
        await changes.next((i) => i.key === k('x') && i.deleted === true);
      } finally {
        await watch.close();
        await other.close();
      }
    });
  });
}
