/** The secret store conformance suite: the same cases for every backend, built from user YAML. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComponentError, ComponentRequestError } from '../../../src/components/errors.js';
import type { SecretStore } from '../../../src/components/secretstores/store.js';
import { buildComponent } from '../lock/build.js';
import type { SecretsMatrixEntry } from './matrix.js';

export function secretsConformance(entry: SecretsMatrixEntry): void {
  describe(`secretstores conformance: ${entry.type}`, () => {
    let store: SecretStore;
    let setup: ReturnType<SecretsMatrixEntry['setup']>;

    beforeAll(async () => {
      setup = entry.setup();
      store = buildComponent<SecretStore>(setup.yaml);
      await store.init();
    });
    afterAll(async () => {
      await store?.close();
      setup?.cleanup();
    });

    it('get returns each secret as name → value', async () => {
      for (const [name, secret] of Object.entries(setup.expected)) expect(await store.get({ key: name })).toEqual(secret);
    });

    it('a missing secret is a not-found error naming it', async () => {
      const e = await store.get({ key: 'no-such-secret' }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(ComponentError);
      expect((e as ComponentError).kind).toBe('not-found');
      expect((e as Error).message).toContain('no-such-secret');
    });

    it('an empty name is a bad request', async () => {
      await expect(store.get({ key: '' })).rejects.toBeInstanceOf(ComponentRequestError);
    });

    it('bulkGet returns every secret', async () => {
      expect(await store.bulkGet()).toEqual(setup.expected);
    });

    it('a returned secret is a copy: changing it does not change the store', async () => {
      const [name] = Object.keys(setup.expected);
      const got = await store.get({ key: name! });
      got[name!] = 'changed';
      expect(await store.get({ key: name! })).toEqual(setup.expected[name!]);
    });
  });
}
