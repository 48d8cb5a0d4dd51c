import { describe, expect, it } from 'vitest';
import { ComponentBackendError } from '../../src/components/errors.js';
import type { LockStore } from '../../src/components/lock/store.js';
import { buildComponent } from './lock/build.js';
import { LOCK_MATRIX } from './lock/matrix.js';
import { lockConformance } from './lock/suite.js';

for (const entry of LOCK_MATRIX) lockConformance(entry);

describe('lock.redis: backend down', () => {
  it('init fails with a backend error naming the server; calls fail, nothing is granted', async () => {
    const store = buildComponent<LockStore>('name: l\ntype: lock.redis\nmetadata:\n  redisHost: 127.0.0.1:1\n  connectTimeoutMs: 300\n');
    try {
      await expect(store.init()).rejects.toThrow(/cannot connect to Redis at 127\.0\.0\.1:1/);
      await expect(store.tryLock({ resourceId: 'x', lockOwner: 'o', expiryInSeconds: 1 })).rejects.toBeInstanceOf(ComponentBackendError);
    } finally {
      await store.close();
    }
  });

  it('rejects bad metadata naming the key', () => {
    expect(() => buildComponent('name: l\ntype: lock.redis\nmetadata:\n  redisHost: nohost\n')).toThrow(/redisHost/);
    expect(() => buildComponent('name: l\ntype: lock.memory\nmetadata:\n  bogus: 1\n')).toThrow(/bogus/);
  });
});
