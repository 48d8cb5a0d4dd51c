/**
 * The distributed lock building block (Dapr's `lock` alpha API, Layotto's TryLock / Unlock /
 * LockKeepAlive). A lock is held by one owner until it unlocks or the expiry passes; only the
 * owner can unlock or extend it. Two sidecars on the same backend never both hold one resource.
 */
import type { Component } from '../registry.js';

export interface LockRequest {
  readonly resourceId: string;
  readonly lockOwner: string;
  /** > 0. */
  readonly expiryInSeconds: number;
}

export interface UnlockRequest {
  readonly resourceId: string;
  readonly lockOwner: string;
}

/** Dapr's `UnlockResponse.Status` names (0..3 on the wire; INTERNAL_ERROR is a thrown error here). */
export type UnlockStatus = 'SUCCESS' | 'LOCK_DOES_NOT_EXIST' | 'LOCK_BELONGS_TO_OTHERS';

export interface LockStore extends Component {
  /** true: acquired (or already held by this owner: the expiry is reset); false: held by another. */
  tryLock(req: LockRequest): Promise<boolean>;
  unlock(req: UnlockRequest): Promise<UnlockStatus>;
  /** Extends the owner's lock to `expiryInSeconds` from now. */
  keepAlive(req: LockRequest): Promise<UnlockStatus>;
}
