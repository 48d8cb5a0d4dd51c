/**
 * The connection metadata every Redis-backed component takes, named as Dapr's Redis components
 * name it. A backend spreads these fields into its own strict schema (overriding a default, such
 * as sequencer.redis's keyPrefix, or adding its own fields) and applies `checkRedisHost`.
 */
import type { z } from 'zod';
import { bool, int, text } from '../../config/schema-common.js';

export const redisConnectionFields = {
  /** `host:port`. */
  redisHost: text.default('127.0.0.1:6379'),
  redisUsername: text.optional(),
  redisPassword: text.optional(),
  redisDB: int(0, 15, 'a Redis database number').default(0),
  /** Prepended to every key; '' = none. */
  keyPrefix: text.default(''),
  /** Per-command timeout in milliseconds. */
  timeoutMs: int(1, 600_000, 'milliseconds').default(5000),
  /** How long `init` waits for the first connection before reporting the component as failed. */
  connectTimeoutMs: int(1, 600_000, 'milliseconds').default(2000),
  enableTLS: bool.default(false),
};

export interface RedisConnectionMetadata {
  readonly redisHost: string;
  readonly redisUsername?: string | undefined;
  readonly redisPassword?: string | undefined;
  readonly redisDB: number;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly enableTLS: boolean;
}

/** A superRefine step: redisHost must be `host:port` (ioredis would otherwise fail only at connect). */
export function checkRedisHost(m: { redisHost: string }, ctx: z.RefinementCtx): void {
  if (!/^[^:\s]+:\d{1,5}$/.test(m.redisHost)) ctx.addIssue({ code: 'custom', message: `expected host:port, got ${JSON.stringify(m.redisHost)}`, path: ['redisHost'] });
}
