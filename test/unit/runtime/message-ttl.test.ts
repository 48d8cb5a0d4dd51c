/** ttlInSeconds → the CloudEvent `expiration` attribute, and when an expiration has passed. */
import { describe, expect, it } from 'vitest';
import { expirationFor, hasExpired, parseTtlSeconds } from '../../../src/runtime/message-ttl.js';

describe('message TTL', () => {
  it('ttlInSeconds must be a positive integer; the error names the value (Dapr\'s wording)', () => {
    expect(parseTtlSeconds('1')).toBe(1);
    expect(parseTtlSeconds('86400')).toBe(86400);
    expect(() => parseTtlSeconds('abc')).toThrow("ttlInSeconds value must be a valid integer: actual is 'abc'");
    expect(() => parseTtlSeconds('1.5')).toThrow(/valid integer: actual is '1.5'/);
    expect(() => parseTtlSeconds(' 5')).toThrow(/valid integer/);
    expect(() => parseTtlSeconds('0')).toThrow('ttlInSeconds value must be higher than zero: actual is 0');
    expect(() => parseTtlSeconds('-3')).toThrow(/higher than zero: actual is -3/);
  });

  it('the expiration is an RFC 3339 UTC time ttlInSeconds from now (milliseconds), capped at year 9999', () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    expect(expirationFor('10', now)).toBe('2026-01-02T03:04:15.678Z');
    expect(expirationFor('1'.repeat(40), now)).toBe('9999-12-31T23:59:59.999Z');
  });

  it('expired when the RFC 3339 time (any offset, any fraction) is past; anything unparsable never expires', () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    expect(hasExpired('2026-01-01T11:59:59Z', now)).toBe(true);
    expect(hasExpired('2026-01-01T11:59:59.999999999Z', now)).toBe(true);
    expect(hasExpired('2026-01-01T12:00:01Z', now)).toBe(false);
    expect(hasExpired('2026-01-01T13:30:00+02:00', now)).toBe(true); // 11:30Z
    expect(hasExpired('2026-01-01T10:30:00-02:00', now)).toBe(false); // 12:30Z
    for (const v of ['Jan 1 2020', '2020-01-01', '2020-01-01 00:00:00Z', '2020-13-01T00:00:00Z', '', 1, null, {}]) expect(hasExpired(v, now), String(v)).toBe(false);
  });
});
