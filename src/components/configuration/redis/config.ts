/** `configuration.redis` metadata, named as Dapr's Redis configuration store names it. */
import { z } from 'zod';
import { int } from '../../../config/schema-common.js';
import { checkRedisHost, redisConnectionFields } from '../../redis/metadata.js';

export const redisConfigurationMetadata = z
  .strictObject({
    ...redisConnectionFields,
    /**
     * keyspace: Redis keyspace notifications (enabled at init when the server has them off);
     * falls back to polling when the server refuses CONFIG. poll: never touch the server's
     * configuration, poll the watched keys every pollIntervalMs.
     */
    subscribeMode: z.enum(['keyspace', 'poll']).default('keyspace'),
    pollIntervalMs: int(50, 60_000, 'milliseconds').default(500),
  })
  .superRefine(checkRedisHost)
  .prefault({});

export type RedisConfigurationMetadata = z.output<typeof redisConfigurationMetadata>;
