import { describe, expect, it } from 'vitest';
import { istioStatsFactory } from '../../../../src/filters/istio-stats/index.js';

describe('istio.stats config', () => {
  it('defaults everything', () => {
    expect(istioStatsFactory.parseConfig({})).toEqual({ disableHostHeaderFallback: false });
    expect(istioStatsFactory.parseConfig(undefined)).toEqual({ disableHostHeaderFallback: false });
  });
  it('accepts camelCase and Istio snake_case', () => {
    expect(istioStatsFactory.parseConfig({ disableHostHeaderFallback: true }).disableHostHeaderFallback).toBe(true);
    expect(istioStatsFactory.parseConfig({ disable_host_header_fallback: true }).disableHostHeaderFallback).toBe(true);
  });
  it('rejects unknown keys and wrong types, naming the field', () => {
    expect(() => istioStatsFactory.parseConfig({ reporter: 'x' })).toThrow(/reporter/);
    expect(() => istioStatsFactory.parseConfig({ disableHostHeaderFallback: 'yes' })).toThrow(/disableHostHeaderFallback/);
    expect(() => istioStatsFactory.parsePerRoute!({ disabled: true, extra: 1 })).toThrow(/extra/);
    expect(() => istioStatsFactory.parsePerRoute!({})).toThrow(/disabled/);
  });
});
