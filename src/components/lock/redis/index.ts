/**
 * `lock.redis`: a lock is the string key `<keyPrefix><resourceId>` holding the owner, with a
 * PX expiry (Dapr's layout). Acquiring is `SET NX PX`; when the key exists, a script re-checks
 * the owner so the current owner's tryLock succeeds again and resets the expiry. Unlock and
 * keepAlive are scripts that compare the owner first, so only the owner can release or extend:
 * every decision is one atomic step in Redis, so sidecars sharing the server never both hold a
 * resource.
 */
import { ComponentBackendError } from '../../errors.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import type { LockRequest, LockStore, UnlockRequest, UnlockStatus } from '../store.js';
import { checkLockRequest, checkUnlockRequest } from '../validate.js';
import { redisLockMetadata, type RedisLockMetadata } from './config.js';
import { RedisComponent, RedisConnection } from '../../redis/connection.js';

/** KEYS[1] lock; ARGV owner, ms. 1 = held by this owner now (expiry reset), 0 = another owner. */
const RELOCK = `
local cur = redis.call('GET', KEYS[1])
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;

/** KEYS[1] lock; ARGV owner, ms ('0' = unlock). 0 SUCCESS, 1 LOCK_DOES_NOT_EXIST, 2 LOCK_BELONGS_TO_OTHERS. */
const RELEASE_OR_EXTEND = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 1 end
if cur ~= ARGV[1] then return 2 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const STATUS: readonly UnlockStatus[] = ['SUCCESS', 'LOCK_DOES_NOT_EXIST', 'LOCK_BELONGS_TO_OTHERS'];

type Script = (key: string, owner: string, ms: string) => Promise<number>;

export class RedisLockStore extends RedisComponent implements LockStore {
  private readonly prefix: string;
  private readonly relock: Script;
  private readonly releaseOrExtend: Script;

  constructor(m: RedisLockMetadata, ctx: ComponentContext) {
    super(new RedisConnection(m, 'lock.redis', ctx));
    this.prefix = m.keyPrefix;
    const c = this.conn.client;
    c.defineCommand('capaLockRelock', { numberOfKeys: 1, lua: RELOCK });
    c.defineCommand('capaLockRelease', { numberOfKeys: 1, lua: RELEASE_OR_EXTEND });
    const cmds = c as unknown as { capaLockRelock: Script; capaLockRelease: Script };
    this.relock = cmds.capaLockRelock.bind(c);
    this.releaseOrExtend = cmds.capaLockRelease.bind(c);
  }

  async tryLock(req: LockRequest): Promise<boolean> {
    checkLockRequest(req);
    const key = this.prefix + req.resourceId;
    const ms = String(req.expiryInSeconds * 1000);
    const set = await this.conn.call(() => this.conn.client.set(key, req.lockOwner, 'PX', ms, 'NX'));
    if (set === 'OK') return true;
    return (await this.conn.call(() => this.relock(key, req.lockOwner, ms))) === 1;
  }

  async unlock(req: UnlockRequest): Promise<UnlockStatus> {
    checkUnlockRequest(req);
    return this.release(req, '0');
  }

  async keepAlive(req: LockRequest): Promise<UnlockStatus> {
    checkLockRequest(req);
    return this.release(req, String(req.expiryInSeconds * 1000));
  }

  private async release(req: UnlockRequest, ms: string): Promise<UnlockStatus> {
    const r = await this.conn.call(() => this.releaseOrExtend(this.prefix + req.resourceId, req.lockOwner, ms));
    const status = STATUS[r];
    if (!status) throw new ComponentBackendError(`Redis at ${this.conn.where}: unexpected lock script reply ${String(r)}`);
    return status;
  }
}

export const redisLock: ComponentDefinition<RedisLockStore, RedisLockMetadata> = {
  type: 'lock.redis',
  block: 'lock',
  version: 'v1',
  metadataSchema: redisLockMetadata,
  create: (m, ctx) => new RedisLockStore(m, ctx),
};
