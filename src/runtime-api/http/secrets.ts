/**
 * Dapr's secrets API:
 *   GET /v1.0/secrets/{store}/{name}[?metadata.k=v] → 200 {key: value, ...}
 *   GET /v1.0/secrets/{store}/bulk                  → 200 {name: {key: value}, ...}
 * As Dapr: an unknown store is 401 ERR_SECRET_STORE_NOT_FOUND, a missing secret 500 ERR_SECRET_GET
 * (the message says it was not found).
 */
import type { SecretStore } from '../../components/secretstores/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { componentFailure, findComponent } from './errors.js';
import { json, queryMetadata, type Reply } from './io.js';

const DAPR_STATUS = { 'not-found': 500 } as const;

export async function getSecret(services: RuntimeServices, storeName: string, key: string, query: URLSearchParams): Promise<Reply> {
  const store = findSecretStore(services, storeName);
  try {
    return json(200, await store.get({ key, metadata: queryMetadata(query) }));
  } catch (e) {
    throw componentFailure('ERR_SECRET_GET', `failed getting secret with key ${key} from secret store ${storeName}`, e, DAPR_STATUS);
  }
}

export async function bulkGetSecrets(services: RuntimeServices, storeName: string, query: URLSearchParams): Promise<Reply> {
  const store = findSecretStore(services, storeName);
  try {
    return json(200, await store.bulkGet(queryMetadata(query)));
  } catch (e) {
    throw componentFailure('ERR_SECRET_GET', `failed getting secrets from secret store ${storeName}`, e, DAPR_STATUS);
  }
}

function findSecretStore(services: RuntimeServices, name: string): SecretStore {
  return findComponent(services.components.view<SecretStore>('secretstores'), name, {
    label: 'secret store',
    notConfigured: ['ERR_SECRET_STORES_NOT_CONFIGURED', 'secret store is not configured'],
    notFound: 'ERR_SECRET_STORE_NOT_FOUND',
    notFoundMessage: (n) => `failed finding secret store with key ${n}`,
    notReady: 'ERR_SECRET_GET',
  });
}
