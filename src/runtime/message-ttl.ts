/**
 * Per-message time-to-live, as Dapr implements it for backends without a native TTL
 * (components-contrib `pubsub/envelope.go` ApplyMetadata / HasExpired,
 * `metadata/utils.go` TryGetTTL):
 * - the publisher's metadata `ttlInSeconds` (a positive integer) becomes the CloudEvent
 *   extension attribute `expiration`, an RFC 3339 time, when the runtime wraps the event (also
 *   over a CloudEvent the app made itself, replacing its `expiration`);
 * - the subscriber side drops an event whose `expiration` is past instead of delivering it; an
 *   `expiration` that is not an RFC 3339 time never expires (Go's time.Parse fails there too).
 *
 * Dapr writes whole seconds (Go's `time.RFC3339`, truncated); this writes milliseconds, which is
 * RFC 3339 too and which Go's parser reads, so a 1 s TTL is 1 s rather than 0–1 s.
 *
 * Raw payloads (`rawPayload=true`) have no envelope: Dapr then leaves the TTL to backends with a
 * native one. Here the expiration travels in the message's metadata (key `expiration`, which every
 * backend stores beside the bytes), and delivery honours it the same way.
 */

export const TTL_KEY = 'ttlInSeconds';
export const EXPIRATION_KEY = 'expiration';

/** The latest time RFC 3339 can write (4-digit years); a longer TTL is capped there (Dapr caps at Go's max duration). */
const MAX_EXPIRATION_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const INTEGER = /^[+-]?\d+$/;
/** RFC 3339 date-time: `T` separator, optional fraction, `Z` or a numeric offset. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** `ttlInSeconds` as a number of seconds; throws (Dapr's wording, naming the value) unless it is a positive integer. */
export function parseTtlSeconds(value: string): number {
  if (!INTEGER.test(value)) throw new Error(`${TTL_KEY} value must be a valid integer: actual is '${value}'`);
  const n = Number(value);
  if (n <= 0) throw new Error(`${TTL_KEY} value must be higher than zero: actual is ${value}`);
  return n;
}

/** The `expiration` attribute for a message published now with this `ttlInSeconds` value (throws as parseTtlSeconds). */
export function expirationFor(ttlInSeconds: string, now = Date.now()): string {
  const seconds = parseTtlSeconds(ttlInSeconds);
  return new Date(Math.min(now + seconds * 1000, MAX_EXPIRATION_MS)).toISOString();
}

/**
 * Whether an `expiration` value is in the past. Only called when an event carries one: the
 * delivery path of events without it never parses a date.
 */
export function hasExpired(expiration: unknown, now = Date.now()): boolean {
  if (typeof expiration !== 'string' || !RFC3339.test(expiration)) return false;
  const at = Date.parse(expiration);
  return !Number.isNaN(at) && at < now;
}
