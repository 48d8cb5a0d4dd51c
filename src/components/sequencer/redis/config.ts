/** `sequencer.redis` metadata: the connection fields of `state.redis`, plus the counters' key prefix. */
import { z } from 'zod';
import { bool, int, text } from '../../../config/schema-common.js';

export const redisSequencerMetadata = z
  .strictObject({
    /** `host:port`. */
    redisHost: text.default('127.0.0.1:6379'),
    redisUsername: text.optional(),
    redisPassword: text.optional(),
    redisDB: int(0, 15, 'a Redis database number').default(0),
    /** Counter of key `k` is the Redis key `<keyPrefix>k`; the default keeps them apart from state keys. */
    keyPrefix: text.default('capa-sequencer|'),
    /** Per-command timeout in milliseconds. */
    timeoutMs: int(1, 600_000, 'milliseconds').default(5000),
    /** How long `init` waits for the first connection before reporting the component as failed. */
    connectTimeoutMs: int(1, 600_000, 'milliseconds').default(2000),
    enableTLS: bool.default(false),
  })
  .superRefine((m, ctx) => {
    if (!/^[^:\s]+:\d{1,5}$/.test(m.redisHost)) ctx.addIssue({ code: 'custom', message: `expected host:port, got ${JSON.stringify(m.redisHost)}`, path: ['redisHost'] });
  })
  .prefault({});

export type RedisSequencerMetadata = z.output<typeof redisSequencerMetadata>;
