/**
 * `lock.memory`: the embedded default. Locks live in the sidecar process, so they only exclude
 * callers of this one sidecar (use lock.redis across sidecars). Expired locks count as absent on
 * every call and are swept once a second. tryLock by the current owner succeeds again and resets
 * the expiry (as keepAlive would).
 */
import type { ComponentDefinition } from '../../registry.js';
import type { LockRequest, LockStore, UnlockRequest, UnlockStatus } from '../store.js';
import { checkLockRequest, checkUnlockRequest } from '../validate.js';
import { memoryLockMetadata, type MemoryLockMetadata } from './config.js';

interface Held {
  readonly owner: string;
  readonly expiresAt: number;
}

export class MemoryLockStore implements LockStore {
  private readonly locks = new Map<string, Held>();
  private sweeper: NodeJS.Timeout | null = null;

  async init(): Promise<void> {
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  async tryLock(req: LockRequest): Promise<boolean> {
    checkLockRequest(req);
    const cur = this.live(req.resourceId);
    if (cur && cur.owner !== req.lockOwner) return false;
    this.locks.set(req.resourceId, { owner: req.lockOwner, expiresAt: Date.now() + req.expiryInSeconds * 1000 });
    return true;
  }

  async unlock(req: UnlockRequest): Promise<UnlockStatus> {
    checkUnlockRequest(req);
    const status = this.ownership(req);
    if (status === 'SUCCESS') this.locks.delete(req.resourceId);
    return status;
  }

  async keepAlive(req: LockRequest): Promise<UnlockStatus> {
    checkLockRequest(req);
    const status = this.ownership(req);
    if (status === 'SUCCESS') this.locks.set(req.resourceId, { owner: req.lockOwner, expiresAt: Date.now() + req.expiryInSeconds * 1000 });
    return status;
  }

  private ownership(req: UnlockRequest): UnlockStatus {
    const cur = this.live(req.resourceId);
    if (!cur) return 'LOCK_DOES_NOT_EXIST';
    return cur.owner === req.lockOwner ? 'SUCCESS' : 'LOCK_BELONGS_TO_OTHERS';
  }

  private live(id: string): Held | undefined {
    const cur = this.locks.get(id);
    if (cur && cur.expiresAt <= Date.now()) {
      this.locks.delete(id);
      return undefined;
    }
    return cur;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, h] of this.locks) if (h.expiresAt <= now) this.locks.delete(id);
  }
}

export const memoryLock: ComponentDefinition<MemoryLockStore, MemoryLockMetadata> = {
  type: 'lock.memory',
  block: 'lock',
  version: 'v1',
  metadataSchema: memoryLockMetadata,
  create: () => new MemoryLockStore(),
};
