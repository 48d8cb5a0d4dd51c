/**
 * `pubsub.redis` metadata, named as Dapr's Redis Streams pub/sub names it (redisHost,
 * redisPassword, redisDB, consumerID, processingTimeout, redeliverInterval, maxLenApprox,
 * concurrency), plus keyPrefix and the timeouts every Redis component has.
 */
import { z } from 'zod';
import { int, text } from '../../../config/schema-common.js';
import { checkRedisHost, redisConnectionFields } from '../../redis/metadata.js';
import { duration } from '../common.js';

export const redisPubSubMetadata = z
  .strictObject({
    ...redisConnectionFields,
    /** When set, the consumer group of every subscription (instead of the one the runtime passes, the app id). */
    consumerID: text.optional(),
    /** How long a delivered message may stay unanswered (or wait after RETRY) before it is delivered again. */
    processingTimeout: duration.default(60_000),
    /** How often a subscription looks for such messages. */
    redeliverInterval: duration.default(60_000),
    /** Trims each topic's stream to about this many entries on publish (0: no trimming). */
    maxLenApprox: int(0, Number.MAX_SAFE_INTEGER, 'an entry count').default(0),
    /** Messages one subscription has in its handler at once. */
    concurrency: int(1, 10_000, 'a count').default(10),
    /** Prepended to each topic to make its stream key; '' = the topic itself, as Dapr does. */
    keyPrefix: text.default(''),
  })
  .superRefine((m, ctx) => {
    checkRedisHost(m, ctx);
    if (m.redeliverInterval === 0) ctx.addIssue({ code: 'custom', message: 'must be more than 0 (messages would never be redelivered)', path: ['redeliverInterval'] });
  })
  .prefault({});

export type RedisPubSubMetadata = z.output<typeof redisPubSubMetadata>;
