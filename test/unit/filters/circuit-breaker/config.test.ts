import { describe, expect, it } from 'vitest';
import { parseCircuitBreakerConfig } from '../../../../src/filters/circuit-breaker/config.js';
import { builtinFilterRegistry } from '../../../../src/filters/index.js';

describe('circuit breaker config', () => {
  it('has opossum-style defaults', () => {
    expect(parseCircuitBreakerConfig({})).toEqual({
      disabled: false,
      scope: 'cluster',
      errorThresholdPercentage: 50,
      volumeThreshold: 20,
      resetTimeoutMs: 10_000,
      timeoutMs: 2000,
      rollingCountTimeoutMs: 10_000,
      rollingCountBuckets: 10,
    });
  });

  it('parses durations, route scope, timeout 0 and {disabled: true}', () => {
    const c = parseCircuitBreakerConfig({ scope: 'route', resetTimeout: '300ms', timeout: 0, rollingCountTimeout: '1s', volumeThreshold: 5, errorThresholdPercentage: 25 });
    expect(c).toMatchObject({ scope: 'route', resetTimeoutMs: 300, timeoutMs: 0, rollingCountTimeoutMs: 1000, volumeThreshold: 5, errorThresholdPercentage: 25 });
    expect(parseCircuitBreakerConfig({ disabled: true }).disabled).toBe(true);
  });

  it('rejects bad values naming the field', () => {
    expect(() => parseCircuitBreakerConfig({ errorThresholdPercentage: 150 })).toThrow(/errorThresholdPercentage/);
    expect(() => parseCircuitBreakerConfig({ scope: 'host' })).toThrow(/scope/);
    expect(() => parseCircuitBreakerConfig({ resetTimeout: 'soon' })).toThrow(/resetTimeout/);
    expect(() => parseCircuitBreakerConfig({ bogus: 1 })).toThrow(/bogus/);
  });

  it('is registered by name, alias and type URL', () => {
    const r = builtinFilterRegistry();
    const byName = r.get('capa.filters.http.circuit_breaker');
    expect(byName).toBeDefined();
    expect(r.get('circuit_breaker')).toBe(byName);
    expect(r.getByType('type.googleapis.com/capa.filters.http.circuit_breaker.v1.CircuitBreaker')).toBe(byName);
  });
});
