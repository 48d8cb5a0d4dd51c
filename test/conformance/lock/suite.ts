/**
 * The lock conformance suite (after Dapr's tests/conformance/lock): the same cases for every
 * backend, each store built through the real registry from user-format YAML; for backends shared
 * by sidecars, two independent stores race for the same resources.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComponentRequestError } from '../../../src/components/errors.js';
import type { LockStore } from '../../../src/components/lock/store.js';
import { buildComponent, sleep } from './build.js';
import type { LockMatrixEntry } from './matrix.js';

export function lockConformance(entry: LockMatrixEntry): void {
  describe(`lock conformance: ${entry.type}`, () => {
    let store: LockStore;
    const run = randomUUID().slice(0, 8);
    const r = (name: string): string => `${run}-${name}`;

    beforeAll(async () => {
      store = buildComponent<LockStore>(entry.yaml);
      await store.init();
    });
    afterAll(async () => {
      await entry.cleanup?.();
      await store?.close();
    });

    it('acquires, releases, and can acquire again after release', async () => {
      expect(await store.tryLock({ resourceId: r('a'), lockOwner: 'o1', expiryInSeconds: 10 })).toBe(true);
      expect(await store.unlock({ resourceId: r('a'), lockOwner: 'o1' })).toBe('SUCCESS');
      expect(await store.tryLock({ resourceId: r('a'), lockOwner: 'o2', expiryInSeconds: 10 })).toBe(true);
      expect(await store.unlock({ resourceId: r('a'), lockOwner: 'o2' })).toBe('SUCCESS');
    });

    it('another owner cannot acquire a held lock; the owner can again (tryLock is re-entrant)', async () => {
      expect(await store.tryLock({ resourceId: r('b'), lockOwner: 'o1', expiryInSeconds: 10 })).toBe(true);
      expect(await store.tryLock({ resourceId: r('b'), lockOwner: 'o2', expiryInSeconds: 10 })).toBe(false);
      expect(await store.tryLock({ resourceId: r('b'), lockOwner: 'o1', expiryInSeconds: 10 })).toBe(true);
      expect(await store.unlock({ resourceId: r('b'), lockOwner: 'o1' })).toBe('SUCCESS');
    });

    it('unlock by another owner is LOCK_BELONGS_TO_OTHERS and keeps the lock', async () => {
      await store.tryLock({ resourceId: r('c'), lockOwner: 'o1', expiryInSeconds: 10 });
      expect(await store.unlock({ resourceId: r('c'), lockOwner: 'o2' })).toBe('LOCK_BELONGS_TO_OTHERS');
      expect(await store.tryLock({ resourceId: r('c'), lockOwner: 'o2', expiryInSeconds: 10 })).toBe(false);
      expect(await store.unlock({ resourceId: r('c'), lockOwner: 'o1' })).toBe('SUCCESS');
    });

    it('unlock of an unknown (or already released) lock is LOCK_DOES_NOT_EXIST', async () => {
      expect(await store.unlock({ resourceId: r('never'), lockOwner: 'o1' })).toBe('LOCK_DOES_NOT_EXIST');
      await store.tryLock({ resourceId: r('d'), lockOwner: 'o1', expiryInSeconds: 10 });
      await store.unlock({ resourceId: r('d'), lockOwner: 'o1' });
      expect(await store.unlock({ resourceId: r('d'), lockOwner: 'o1' })).toBe('LOCK_DOES_NOT_EXIST');
    });

    it('the expiry releases the lock', async () => {
      expect(await store.tryLock({ resourceId: r('exp'), lockOwner: 'o1', expiryInSeconds: 1 })).toBe(true);
      expect(await store.tryLock({ resourceId: r('exp'), lockOwner: 'o2', expiryInSeconds: 1 })).toBe(false);
      await sleep(1150);
      expect(await store.tryLock({ resourceId: r('exp'), lockOwner: 'o2', expiryInSeconds: 10 })).toBe(true);
      expect(await store.unlock({ resourceId: r('exp'), lockOwner: 'o1' })).toBe('LOCK_BELONGS_TO_OTHERS');
    });

    it('keepAlive extends past the original expiry; a non-owner cannot extend', async () => {
      const id = r('ka');
      expect(await store.tryLock({ resourceId: id, lockOwner: 'o1', expiryInSeconds: 1 })).toBe(true);
      await sleep(600);
      expect(await store.keepAlive({ resourceId: id, lockOwner: 'o2', expiryInSeconds: 10 })).toBe('LOCK_BELONGS_TO_OTHERS');
      expect(await store.keepAlive({ resourceId: id, lockOwner: 'o1', expiryInSeconds: 2 })).toBe('SUCCESS');
      await sleep(700); // 1.3 s after the lock: past the original expiry
      expect(await store.tryLock({ resourceId: id, lockOwner: 'o2', expiryInSeconds: 10 })).toBe(false);
      expect(await store.unlock({ resourceId: id, lockOwner: 'o1' })).toBe('SUCCESS');
      expect(await store.keepAlive({ resourceId: id, lockOwner: 'o1', expiryInSeconds: 2 })).toBe('LOCK_DOES_NOT_EXIST');
    });

    it('rejects an empty resourceId or lockOwner and a bad expiry, naming the field', async () => {
      const bad = async (p: Promise<unknown>, what: RegExp): Promise<void> => {
        const e = await p.then(
          () => null,
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(ComponentRequestError);
        expect((e as Error).message).toMatch(what);
      };
      await bad(store.tryLock({ resourceId: '', lockOwner: 'o', expiryInSeconds: 1 }), /resourceId/);
      await bad(store.tryLock({ resourceId: r('v'), lockOwner: '', expiryInSeconds: 1 }), /lockOwner/);
      await bad(store.unlock({ resourceId: '', lockOwner: 'o' }), /resourceId/);
      for (const e of [0, -1, 1.5, Number.NaN, 10 ** 9]) await bad(store.tryLock({ resourceId: r('v'), lockOwner: 'o', expiryInSeconds: e }), /expiryInSeconds/);
      await bad(store.keepAlive({ resourceId: r('v'), lockOwner: 'o', expiryInSeconds: 0 }), /expiryInSeconds/);
      expect(await store.unlock({ resourceId: r('v'), lockOwner: 'o' })).toBe('LOCK_DOES_NOT_EXIST');
    });

    it('50 owners racing for one resource: exactly one wins', async () => {
      const id = r('race');
      const wins = await Promise.all(Array.from({ length: 50 }, (_, i) => store.tryLock({ resourceId: id, lockOwner: `owner-${i}`, expiryInSeconds: 10 })));
      expect(wins.filter(Boolean)).toHaveLength(1);
      const winner = wins.indexOf(true);
      expect(await store.unlock({ resourceId: id, lockOwner: `owner-${winner}` })).toBe('SUCCESS');
    });

    if (entry.shared) {
      it('two stores (two sidecars) racing over many rounds never both hold a resource', async () => {
        const other = buildComponent<LockStore>(entry.yaml);
        await other.init();
        try {
          const id = r('shared');
          let holder: string | null = null;
          let acquired = 0;
          let overlaps = 0;
          const worker = async (s: LockStore, owner: string): Promise<void> => {
            for (let round = 0; round < 40; round++) {
              if (!(await s.tryLock({ resourceId: id, lockOwner: owner, expiryInSeconds: 5 }))) continue;
              if (holder !== null) overlaps++;
              holder = owner;
              acquired++;
              await sleep(1);
              holder = null;
              expect(await s.unlock({ resourceId: id, lockOwner: owner })).toBe('SUCCESS');
            }
          };
          await Promise.all([0, 1, 2, 3].flatMap((i) => [worker(store, `a-${i}`), worker(other, `b-${i}`)]));
          expect(overlaps).toBe(0);
          expect(acquired).toBeGreaterThan(0);
          // The other store sees this store's lock and cannot release it.
          expect(await store.tryLock({ resourceId: id, lockOwner: 'a-x', expiryInSeconds: 5 })).toBe(true);
          expect(await other.tryLock({ resourceId: id, lockOwner: 'b-x', expiryInSeconds: 5 })).toBe(false);
          expect(await other.unlock({ resourceId: id, lockOwner: 'b-x' })).toBe('LOCK_BELONGS_TO_OTHERS');
          expect(await other.unlock({ resourceId: id, lockOwner: 'a-x' })).toBe('SUCCESS');
        } finally {
          await other.close();
        }
      });
    }
  });
}
