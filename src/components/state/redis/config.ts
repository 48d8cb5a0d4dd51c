/** `state.redis` metadata, named as Dapr's Redis state store names it (keyPrefix also prefixes the etag counter). */
import { z } from 'zod';
import { checkRedisHost, redisConnectionFields } from '../../redis/metadata.js';

export const redisStateMetadata = z.strictObject({ ...redisConnectionFields }).superRefine(checkRedisHost).prefault({});

export type RedisStateMetadata = z.output<typeof redisStateMetadata>;
