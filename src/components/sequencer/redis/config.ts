/** `sequencer.redis` metadata: the connection fields of `state.redis`, with the counters' own key prefix. */
import { z } from 'zod';
import { text } from '../../../config/schema-common.js';
import { checkRedisHost, redisConnectionFields } from '../../redis/metadata.js';

export const redisSequencerMetadata = z
  .strictObject({
    ...redisConnectionFields,
    /** Counter of key `k` is the Redis key `<keyPrefix>k`; the default keeps them apart from state keys. */
    keyPrefix: text.default('capa-sequencer|'),
  })
  .superRefine(checkRedisHost)
  .prefault({});

export type RedisSequencerMetadata = z.output<typeof redisSequencerMetadata>;
