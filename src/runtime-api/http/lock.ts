/**
 * Dapr's distributed lock API (alpha):
 *   POST /v1.0-alpha1/lock/{store}    {resourceId, lockOwner, expiryInSeconds} → 200 {success}
 *   POST /v1.0-alpha1/unlock/{store}  {resourceId, lockOwner}                  → 200 {status}
 * `status` is Dapr's UnlockResponse.Status: 0 SUCCESS, 1 LOCK_DOES_NOT_EXIST,
 * 2 LOCK_BELONGS_TO_OTHERS (3 INTERNAL_ERROR is a 500 ERR_UNLOCK here, with the reason).
 */
import type { LockStore, UnlockStatus } from '../../components/lock/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { DaprHttpError, componentFailure, malformed, findComponent } from './errors.js';
import { json, type Reply } from './io.js';

const UNLOCK_CODES: Record<UnlockStatus, number> = { SUCCESS: 0, LOCK_DOES_NOT_EXIST: 1, LOCK_BELONGS_TO_OTHERS: 2 };

export async function tryLock(services: RuntimeServices, storeName: string, body: unknown): Promise<Reply> {
  const store = findLockStore(services, storeName);
  const b = object(body);
  const resourceId = nonEmpty(b.resourceId, 'ResourceId', storeName);
  const lockOwner = nonEmpty(b.lockOwner, 'LockOwner', storeName);
  const expiry = b.expiryInSeconds;
  if (typeof expiry !== 'number' || !Number.isInteger(expiry) || expiry <= 0) {
    throw new DaprHttpError('ERR_MALFORMED_REQUEST', `ExpiryInSeconds is not positive in lock store ${storeName}: expiryInSeconds must be an integer > 0, got ${JSON.stringify(expiry)}`);
  }
  try {
    return json(200, { success: await store.tryLock({ resourceId, lockOwner, expiryInSeconds: expiry }) });
  } catch (e) {
    throw componentFailure('ERR_TRY_LOCK', `failed to try acquiring lock ${resourceId} in lock store ${storeName}`, e);
  }
}

export async function unlock(services: RuntimeServices, storeName: string, body: unknown): Promise<Reply> {
  const store = findLockStore(services, storeName);
  const b = object(body);
  const resourceId = nonEmpty(b.resourceId, 'ResourceId', storeName);
  const lockOwner = nonEmpty(b.lockOwner, 'LockOwner', storeName);
  try {
    return json(200, { status: UNLOCK_CODES[await store.unlock({ resourceId, lockOwner })] });
  } catch (e) {
    throw componentFailure('ERR_UNLOCK', `failed to release lock ${resourceId} in lock store ${storeName}`, e);
  }
}

function findLockStore(services: RuntimeServices, name: string): LockStore {
  return findComponent(services.components.view<LockStore>('lock'), name, {
    label: 'lock store',
    notConfigured: ['ERR_LOCK_STORE_NOT_CONFIGURED', 'lock store is not configured'],
    notFound: 'ERR_LOCK_STORE_NOT_FOUND',
    notFoundMessage: (n) => `lock store ${n} not found`,
    notReady: 'ERR_LOCK_STORE_NOT_FOUND',
  });
}

function object(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw malformed('expected a JSON object');
  return body as Record<string, unknown>;
}

/** Dapr's messages: "ResourceId is empty in lock store x" (ERR_MALFORMED_REQUEST, 400). */
function nonEmpty(v: unknown, field: 'ResourceId' | 'LockOwner', store: string): string {
  if (typeof v === 'string' && v !== '') return v;
  const json = field === 'ResourceId' ? 'resourceId' : 'lockOwner';
  throw new DaprHttpError('ERR_MALFORMED_REQUEST', `${field} is empty in lock store ${store}: ${json} must be a non-empty string`);
}
