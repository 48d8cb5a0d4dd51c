/**
 * Layotto's distributed lock RPCs (TryLock, Unlock, LockKeepAlive) over the lock building block,
 * with Layotto's validation messages (pkg/messages) and its status enum:
 * SUCCESS / LOCK_UNEXIST / LOCK_BELONG_TO_OTHERS. A failing backend is an error status
 * (UNAVAILABLE), never a made-up INTERNAL_ERROR status with an OK call.
 */
import type { LockStore, UnlockStatus } from '../../components/lock/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { invalid, wrap } from './errors.js';
import { findComponent } from './stores.js';

interface LockPB {
  store_name: string;
  resource_id: string;
  lock_owner: string;
  expire?: number;
}

const STATUS: Record<UnlockStatus, string> = {
  SUCCESS: 'SUCCESS',
  LOCK_DOES_NOT_EXIST: 'LOCK_UNEXIST',
  LOCK_BELONGS_TO_OTHERS: 'LOCK_BELONG_TO_OTHERS',
};

function validate(req: LockPB, withExpiry: boolean): void {
  if (!req.resource_id) throw invalid(`ResourceId is empty in lock store ${req.store_name}`);
  if (!req.lock_owner) throw invalid(`LockOwner is empty in lock store ${req.store_name}`);
  if (withExpiry && !((req.expire ?? 0) > 0)) throw invalid(`Expire is not positive in lock store ${req.store_name}`);
}

export function lockHandlers(services: RuntimeServices) {
  const store = (req: LockPB): LockStore => findComponent<LockStore>(services, 'lock', req.store_name);

  return {
    async TryLock(req: LockPB) {
      const s = store(req);
      validate(req, true);
      const success = await wrap(`failed to lock ${req.resource_id} in lock store ${req.store_name}`, () =>
        s.tryLock({ resourceId: req.resource_id, lockOwner: req.lock_owner, expiryInSeconds: req.expire! }),
      );
      return { success };
    },

    async Unlock(req: LockPB) {
      const s = store(req);
      validate(req, false);
      const status = await wrap(`failed to unlock ${req.resource_id} in lock store ${req.store_name}`, () =>
        s.unlock({ resourceId: req.resource_id, lockOwner: req.lock_owner }),
      );
      return { status: STATUS[status] };
    },

    async LockKeepAlive(req: LockPB) {
      const s = store(req);
      validate(req, true);
      const status = await wrap(`failed to extend lock ${req.resource_id} in lock store ${req.store_name}`, () =>
        s.keepAlive({ resourceId: req.resource_id, lockOwner: req.lock_owner, expiryInSeconds: req.expire! }),
      );
      return { status: STATUS[status] };
    },
  };
}
