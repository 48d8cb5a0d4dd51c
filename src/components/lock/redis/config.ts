/** `lock.redis` metadata, named as Dapr's Redis lock component names it. */
import { z } from 'zod';
import { checkRedisHost, redisConnectionFields } from '../../redis/metadata.js';

export const redisLockMetadata = z.strictObject({ ...redisConnectionFields }).superRefine(checkRedisHost).prefault({});
export type RedisLockMetadata = z.output<typeof redisLockMetadata>;
