/**
 * Request checks shared by every lock backend, so a bad request gets the same typed error
 * (naming the field and the reason) whichever store serves it.
 */
import { ComponentRequestError } from '../errors.js';
import type { LockRequest, UnlockRequest } from './store.js';

/** 30 days: far above any sane lease (owners renew with keepAlive), and safe for Redis PX. */
export const MAX_LOCK_EXPIRY_SECONDS = 30 * 24 * 3600;

export function checkUnlockRequest(req: UnlockRequest): void {
  if (typeof req.resourceId !== 'string' || req.resourceId === '') throw new ComponentRequestError('resourceId is empty');
  if (typeof req.lockOwner !== 'string' || req.lockOwner === '') throw new ComponentRequestError('lockOwner is empty');
}

export function checkLockRequest(req: LockRequest): void {
  checkUnlockRequest(req);
  const e = req.expiryInSeconds;
  if (typeof e !== 'number' || !Number.isInteger(e) || e <= 0 || e > MAX_LOCK_EXPIRY_SECONDS) {
    throw new ComponentRequestError(`expiryInSeconds must be an integer from 1 to ${MAX_LOCK_EXPIRY_SECONDS}, got ${String(e)}`);
  }
}
