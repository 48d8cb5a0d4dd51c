/**
 * GetSecret / GetBulkSecret over the secrets building block. A missing secret is NOT_FOUND
 * naming it; an empty key is INVALID_ARGUMENT.
 */
import type { SecretStore } from '../../components/secretstores/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { invalid, wrap } from './errors.js';
import { findComponent, stringMap } from './stores.js';

export function secretHandlers(services: RuntimeServices) {
  const store = (name: string): SecretStore => findComponent<SecretStore>(services, 'secretstores', name);

  return {
    async GetSecret(req: { store_name: string; key: string; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      if (!req.key) throw invalid(`key is empty in secret store ${req.store_name}`);
      const data = await wrap(`failed getting secret with key ${req.key} from secret store ${req.store_name}`, () =>
        s.get({ key: req.key, metadata: stringMap(req.metadata) }),
      );
      return { data };
    },

    async GetBulkSecret(req: { store_name: string; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      const all = await wrap(`failed getting secrets from secret store ${req.store_name}`, () => s.bulkGet(stringMap(req.metadata)));
      return { data: Object.fromEntries(Object.entries(all).map(([name, secrets]) => [name, { secrets }])) };
    },
  };
}
