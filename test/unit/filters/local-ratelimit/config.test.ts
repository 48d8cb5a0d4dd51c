import { describe, expect, it } from 'vitest';
import type { ZodError } from 'zod';
import { localRateLimitFactory, LOCAL_RATELIMIT_TYPE_URL } from '../../../../src/filters/local-ratelimit/index.js';
import { builtinFilterRegistry } from '../../../../src/filters/index.js';

const parse = (raw: unknown) => localRateLimitFactory.parseConfig(raw);

/** "path: message" for each problem zod reports. */
function problems(raw: unknown): string[] {
  try {
    parse(raw);
  } catch (e) {
    return (e as ZodError).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  }
  return [];
}

describe('local rate limit config', () => {
  it('is registered by name, aliases and type URL', () => {
    const reg = builtinFilterRegistry();
    expect(reg.get('envoy.filters.http.local_ratelimit')).toBe(localRateLimitFactory);
    expect(reg.get('capa.filters.http.ratelimit')).toBe(localRateLimitFactory);
    expect(reg.get('ratelimit')).toBe(localRateLimitFactory);
    expect(reg.getByType(LOCAL_RATELIMIT_TYPE_URL)).toBe(localRateLimitFactory);
  });

  it('reads the YAML-friendly form with defaults', () => {
    const c = parse({ requestsPerUnit: 100, unit: 'minute', burst: 20, by: 'header:X-User-Id', concurrency: { maxInFlight: 64 } });
    expect(c.rate).toEqual({ points: 100, windowMs: 60_000, burst: 20, burstWindowMs: 120_000 });
    expect(c.by).toEqual({ kind: 'header', name: 'x-user-id' });
    expect(c).toMatchObject({ scope: 'local', failOpen: true, maxInFlight: 64, statusCode: 429, responseHeaders: true, disabled: false });
    const d = parse({ requestsPerUnit: 10 });
    expect(d.rate).toEqual({ points: 10, windowMs: 1000, burst: 0, burstWindowMs: 1000 });
    expect(d.by).toEqual({ kind: 'global' });
    expect(d.maxInFlight).toBe(0);
    expect(Object.isFrozen(d)).toBe(true);
  });

  it('sizes the burst window so sustained overload stays within 10 % of the rate', () => {
    expect(parse({ requestsPerUnit: 100, burst: 20 }).rate?.burstWindowMs).toBe(2000);
    expect(parse({ requestsPerUnit: 10, burst: 20 }).rate?.burstWindowMs).toBe(20_000);
    expect(parse({ requestsPerUnit: 1000, burst: 1 }).rate?.burstWindowMs).toBe(1000);
    expect(parse({ requestsPerUnit: 1, unit: 'hour', burst: 1000 }).rate?.burstWindowMs).toBe(24 * 3_600_000);
  });

  it("maps Envoy's tokenBucket", () => {
    const c = parse({
      '@type': LOCAL_RATELIMIT_TYPE_URL,
      statPrefix: 'http_local_rate_limiter',
      tokenBucket: { maxTokens: 120, tokensPerFill: 100, fillInterval: '1s' },
    });
    expect(c.rate).toMatchObject({ points: 100, windowMs: 1000, burst: 20 });
    expect(parse({ tokenBucket: { maxTokens: 5, fillInterval: '250ms' } }).rate).toMatchObject({ points: 1, windowMs: 250, burst: 4 });
    // Envoy caps the bucket at maxTokens: tokensPerFill above it refills no more than maxTokens.
    expect(parse({ tokenBucket: { maxTokens: 5, tokensPerFill: 10, fillInterval: '2s' } }).rate).toMatchObject({ points: 5, windowMs: 2000, burst: 0 });
  });

  it('reads scope global with redis, a concurrency-only limit and a disabled override', () => {
    const g = parse({ requestsPerUnit: 5, scope: 'global', failOpen: false, redis: { keyPrefix: 'test:rl', timeout: '200ms' } });
    expect(g).toMatchObject({ scope: 'global', failOpen: false, redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'test:rl', timeoutMs: 200 } });
    const c = parse({ concurrency: { maxInFlight: 2 } });
    expect(c.rate).toBeNull();
    expect(c.maxInFlight).toBe(2);
    expect(localRateLimitFactory.parsePerRoute!({ disabled: true }).disabled).toBe(true);
  });

  it('names the field and the reason when the config is wrong', () => {
    expect(problems({})).toEqual(['requestsPerUnit: a rate limit needs requestsPerUnit (or tokenBucket) and/or concurrency: {maxInFlight}']);
    expect(problems({ requestsPerUnit: 0 })[0]).toMatch(/^requestsPerUnit: /);
    expect(problems({ requestsPerUnit: 10, unit: 'day' })[0]).toMatch(/^unit: /);
    expect(problems({ requestsPerUnit: 10, burst: -1 })[0]).toMatch(/^burst: /);
    expect(problems({ requestsPerUnit: 10, by: 'cookie:x' })).toEqual(["by: expected 'global', 'sourceIp', 'path', 'route' or 'header:<name>', got 'cookie:x'"]);
    expect(problems({ requestsPerUnit: 10, by: 'header:' })).toEqual(["by: 'header:' does not name a valid header"]);
    expect(problems({ requestsPerUnit: 10, rate: 5 })[0]).toMatch(/rate/);
    expect(problems({ requestsPerUnit: 10, tokenBucket: { maxTokens: 1, fillInterval: '1s' } })).toEqual([
      'requestsPerUnit: give either requestsPerUnit (with unit, burst) or tokenBucket, not both',
    ]);
    expect(problems({ tokenBucket: { maxTokens: 1, fillInterval: 'soon' } })[0]).toMatch(/^tokenBucket\.fillInterval: expected a duration/);
    expect(problems({ tokenBucket: { maxTokens: 0, fillInterval: '1s' } })[0]).toMatch(/^tokenBucket\.maxTokens: /);
    expect(problems({ tokenBucket: { maxTokens: 1, fillInterval: '10ms' } })).toEqual(['tokenBucket.fillInterval: must be at least 50ms']);
    expect(problems({ tokenBucket: { maxTokens: 1, fillInterval: '1500ms' }, scope: 'global' })[0]).toMatch(/^tokenBucket\.fillInterval: must be a whole number of seconds/);
    expect(problems({ tokenBucket: { maxTokens: 1, fillInterval: '1s' }, burst: 3 })[0]).toMatch(/^burst: burst does not apply to tokenBucket/);
    expect(problems({ requestsPerUnit: 10, redis: { url: 'redis://x:1' } })).toEqual(['redis: redis is only used with scope: global']);
    expect(problems({ requestsPerUnit: 10, scope: 'global', redis: { url: 'http://x' } })).toEqual(['redis.url: expected a redis:// or rediss:// URL']);
    expect(problems({ concurrency: { maxInFlight: 2 }, scope: 'global' })).toEqual(['scope: scope: global needs requestsPerUnit or tokenBucket']);
    expect(problems({ requestsPerUnit: 10, statusCode: 200 })[0]).toMatch(/^statusCode: /);
    expect(problems({ concurrency: { max: 2 } }).join('\n')).toMatch(/concurrency/);
  });
});
