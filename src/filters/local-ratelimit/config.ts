/**
 * envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, YAML-friendly, plus a
 * max-in-flight concurrency limit. The same schema parses the listener config and per-route
 * overrides (an override replaces the listener's config for that route; `{disabled: true}`
 * switches the filter off there).
 *
 * ```yaml
 * requestsPerUnit: 100      # or Envoy's tokenBucket: {maxTokens, tokensPerFill, fillInterval: 1s}
 * unit: second              # second | minute | hour
 * burst: 20                 # extra requests above the rate (default 0)
 * by: header:x-user-id      # global (default) | header:<name> | sourceIp | path | route
 * scope: local              # local (this sidecar) | global (shared over Redis)
 * failOpen: true            # backend (Redis) unavailable: let traffic through (false: 503)
 * redis: { url: redis://127.0.0.1:6379, keyPrefix: capa:rl, timeout: 500ms }   # scope global
 * concurrency: { maxInFlight: 64 }    # 503 + x-capa-overloaded: true when full
 * statusCode: 429
 * ```
 *
 * ## Semantics (what the numbers mean)
 *
 * rate-limiter-flexible counts in fixed windows, so the limit is built from two of them with its
 * `BurstyRateLimiter` — the closest construct it has to a token bucket of capacity
 * `requestsPerUnit + burst` refilled at `requestsPerUnit` per unit:
 *
 * - **Rate.** At most `requestsPerUnit` requests per window of one `unit` per key. A key's window
 *   opens with its first request (Envoy's fill timer: the bucket is full at the start of every
 *   interval) and the next one opens with the first request after it ended. Over T units of
 *   steady overload, `requestsPerUnit × ceil(T)` requests pass; across a window boundary up to
 *   2 × `requestsPerUnit` may pass within one unit, as with Envoy's `tokensPerFill == maxTokens`.
 * - **Burst.** When a window's budget is spent, up to `burst` more requests may pass, drawn from a
 *   second allowance that refills once per *burst window*. A real token bucket regains its burst
 *   only while traffic stays under the rate; a fixed allowance regains it on a clock, so the burst
 *   window is made long enough that sustained overload gets at most 10 % above the rate:
 *   `burstWindow = unit × max(1, ceil(10 × burst / requestsPerUnit))` (capped at 24 h).
 *   After an idle period a client gets `requestsPerUnit + burst` at once, as from a full bucket.
 * - **Envoy's tokenBucket** maps to `requestsPerUnit = tokensPerFill`, `unit = fillInterval`,
 *   `burst = maxTokens − tokensPerFill` (0 when maxTokens ≤ tokensPerFill; then the rate is
 *   maxTokens per interval, as Envoy caps the bucket).
 * - **Keys.** `by` picks the bucket: one for everything (`global`), or one per header value,
 *   source IP, path (without the query) or route name. Requests without the header share one
 *   bucket. A per-route override gives each route it applies to its own buckets (also when it
 *   comes from a virtual host). Values are cut at 256 characters.
 * - **Scope.** `local`: counters in this process; with `concurrency > 1` the workers ask the
 *   primary over IPC (RateLimiterCluster), so the limit is not multiplied — see
 *   `setupRateLimiterPrimary()`. `global`: counters in Redis (RateLimiterRedis), shared by every
 *   sidecar with the same `redis.keyPrefix`, listener name and limit; windows are whole seconds.
 *   A failing backend (Redis down, primary not answering) never counts as "limited": with
 *   `failOpen: true` the request passes, with `false` it gets a 503 (`x-capa-ratelimit: unavailable`).
 * - **Concurrency.** `maxInFlight` requests of the listener (or route with an override) at once
 *   in this process — divided by the worker count when the primary tells it (`CAPA_WORKER_COUNT`).
 *   The slot is taken before the rate check and released when the stream completes.
 *
 * Counters survive a configuration reload when the limit is unchanged (limiters are keyed by
 * listener + a hash of the limit).
 */
import { z } from 'zod';
import { durationMs } from '../../config/units.js';

export type RateLimitUnit = 'second' | 'minute' | 'hour';
export const UNIT_MS: Readonly<Record<RateLimitUnit, number>> = { second: 1000, minute: 60_000, hour: 3_600_000 };

/** How the burst window is chosen (see the header comment). */
export const BURST_OVERSHOOT_FACTOR = 10;
export const MAX_BURST_WINDOW_MS = 24 * 3_600_000;

export type KeySpec =
  | { readonly kind: 'global' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'sourceIp' }
  | { readonly kind: 'path' }
  | { readonly kind: 'route' };

export interface RateSettings {
  /** Requests per window. */
  readonly points: number;
  readonly windowMs: number;
  /** Extra requests per burst window (0: none). */
  readonly burst: number;
  readonly burstWindowMs: number;
}

export interface LocalRateLimitConfig {
  /** Off for this route (per-route `{disabled: true}`). */
  readonly disabled: boolean;
  /** null: only the concurrency limit. */
  readonly rate: RateSettings | null;
  readonly by: KeySpec;
  readonly scope: 'local' | 'global';
  readonly failOpen: boolean;
  readonly redis: { readonly url: string; readonly keyPrefix: string; readonly timeoutMs: number };
  /** 0: no concurrency limit. */
  readonly maxInFlight: number;
  readonly statusCode: number;
  /** Add ratelimit-limit/-remaining/-reset to responses that passed. */
  readonly responseHeaders: boolean;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_KEY_PREFIX = 'capa:rl';

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BY_HINT = "expected 'global', 'sourceIp', 'path', 'route' or 'header:<name>'";

const bySchema = z.string().transform((v, ctx): KeySpec => {
  if (v === 'global' || v === 'sourceIp' || v === 'path' || v === 'route') return { kind: v };
  if (v.startsWith('header:')) {
    const name = v.slice('header:'.length).trim();
    if (HEADER_NAME.test(name)) return { kind: 'header', name: name.toLowerCase() };
    ctx.addIssue({ code: 'custom', message: `'${v}' does not name a valid header` });
    return z.NEVER;
  }
  ctx.addIssue({ code: 'custom', message: `${BY_HINT}, got '${v}'` });
  return z.NEVER;
});

const positiveInt = z.number().int().min(1);

const tokenBucketSchema = z.strictObject({
  maxTokens: positiveInt,
  tokensPerFill: positiveInt.default(1),
  fillInterval: durationMs,
});

const redisSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .default(DEFAULT_REDIS_URL),
  keyPrefix: z.string().min(1).default(DEFAULT_KEY_PREFIX),
  /** Per-command timeout; a slow Redis counts as unavailable (failOpen decides). */
  timeout: durationMs.optional(),
});

const fields = z.strictObject({
  '@type': z.string().optional(),
  /** Envoy's stat_prefix; accepted so pasted Envoy config parses, metrics use the listener name. */
  statPrefix: z.string().optional(),
  /** Per-route only in practice; the compile step usually drops `{disabled: true}` itself. */
  disabled: z.boolean().optional(),
  requestsPerUnit: positiveInt.optional(),
  unit: z.enum(['second', 'minute', 'hour']).optional(),
  burst: z.number().int().min(0).optional(),
  tokenBucket: tokenBucketSchema.optional(),
  by: bySchema.optional(),
  scope: z.enum(['local', 'global']).default('local'),
  failOpen: z.boolean().default(true),
  redis: redisSchema.optional(),
  concurrency: z.strictObject({ maxInFlight: positiveInt }).optional(),
  statusCode: z.number().int().min(400).max(599).default(429),
  responseHeaders: z.boolean().default(true),
});

type Fields = z.output<typeof fields>;

function rateOf(c: Fields): RateSettings | null {
  let points: number;
  let windowMs: number;
  let burst: number;
  if (c.tokenBucket) {
    const t = c.tokenBucket;
    points = Math.min(t.maxTokens, t.tokensPerFill);
    windowMs = t.fillInterval;
    burst = Math.max(0, t.maxTokens - t.tokensPerFill);
  } else if (c.requestsPerUnit !== undefined) {
    points = c.requestsPerUnit;
    windowMs = UNIT_MS[c.unit ?? 'second'];
    burst = c.burst ?? 0;
  } else return null;
  const factor = Math.max(1, Math.ceil((BURST_OVERSHOOT_FACTOR * burst) / points));
  const burstWindowMs = Math.max(windowMs, Math.min(windowMs * factor, MAX_BURST_WINDOW_MS));
  return { points, windowMs, burst, burstWindowMs };
}

export const localRateLimitConfigSchema = fields
  .superRefine((c, ctx) => {
    if (c.disabled === true) return;
    const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (c.tokenBucket) {
      if (c.requestsPerUnit !== undefined) issue(['requestsPerUnit'], 'give either requestsPerUnit (with unit, burst) or tokenBucket, not both');
      if (c.unit !== undefined) issue(['unit'], 'unit does not apply to tokenBucket (use tokenBucket.fillInterval)');
      if (c.burst !== undefined) issue(['burst'], 'burst does not apply to tokenBucket (use tokenBucket.maxTokens above tokensPerFill)');
      if (c.tokenBucket.fillInterval < 50) issue(['tokenBucket', 'fillInterval'], 'must be at least 50ms');
      if (c.scope === 'global' && c.tokenBucket.fillInterval % 1000 !== 0) {
        issue(['tokenBucket', 'fillInterval'], 'must be a whole number of seconds with scope: global (Redis expiry)');
      }
    } else if (c.requestsPerUnit === undefined) {
      if (c.unit !== undefined) issue(['requestsPerUnit'], 'unit is given but requestsPerUnit is missing');
      if (c.burst !== undefined) issue(['requestsPerUnit'], 'burst is given but requestsPerUnit is missing');
      if (c.concurrency === undefined) issue(['requestsPerUnit'], 'a rate limit needs requestsPerUnit (or tokenBucket) and/or concurrency: {maxInFlight}');
    }
    const hasRate = c.tokenBucket !== undefined || c.requestsPerUnit !== undefined;
    if (c.scope === 'global' && !hasRate) issue(['scope'], 'scope: global needs requestsPerUnit or tokenBucket');
    if (c.redis !== undefined && c.scope !== 'global') issue(['redis'], 'redis is only used with scope: global');
    if (c.by !== undefined && !hasRate) issue(['by'], 'by needs requestsPerUnit or tokenBucket');
  })
  .transform((c): LocalRateLimitConfig => ({
    disabled: c.disabled === true,
    rate: c.disabled === true ? null : rateOf(c),
    by: c.by ?? { kind: 'global' },
    scope: c.scope,
    failOpen: c.failOpen,
    redis: {
      url: c.redis?.url ?? DEFAULT_REDIS_URL,
      keyPrefix: c.redis?.keyPrefix ?? DEFAULT_KEY_PREFIX,
      timeoutMs: c.redis?.timeout ?? 500,
    },
    maxInFlight: c.concurrency?.maxInFlight ?? 0,
    statusCode: c.statusCode,
    responseHeaders: c.responseHeaders,
  }));

export function parseLocalRateLimitConfig(raw: unknown): LocalRateLimitConfig {
  const c = localRateLimitConfigSchema.parse(raw ?? {});
  return Object.freeze({ ...c, redis: Object.freeze(c.redis), rate: c.rate && Object.freeze(c.rate) });
}

/** Response headers (IETF draft RateLimit header fields, the names Envoy's filter uses lower-cased). */
export const RATELIMIT_HEADERS = {
  limit: 'ratelimit-limit',
  remaining: 'ratelimit-remaining',
  reset: 'ratelimit-reset',
  retryAfter: 'retry-after',
  overloaded: 'x-capa-overloaded',
} as const;
