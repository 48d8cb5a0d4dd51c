import { describe, expect, it } from 'vitest';
import { faultFactory } from '../../../../src/filters/fault/index.js';

describe('fault filter config', () => {
  it('accepts YAML-friendly and Envoy forms', () => {
    const a = faultFactory.parseConfig({ delay: { fixed: '100ms', percent: 10 }, abort: { httpStatus: 503, percent: 1 } });
    expect(a.delay).toEqual({ fixedMs: 100, percent: 10, fromHeader: false });
    expect(a.abort).toEqual({ httpStatus: 503, grpcStatus: 0, percent: 1, fromHeader: false });
    const b = faultFactory.parseConfig({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
      delay: { fixedDelay: '2s', percentage: { numerator: 5, denominator: 'TEN_THOUSAND' } },
      abort: { grpcStatus: 14, percentage: { numerator: 50 } },
    });
    expect(b.delay?.fixedMs).toBe(2000);
    expect(b.delay?.percent).toBeCloseTo(0.05);
    expect(b.abort?.grpcStatus).toBe(14);
    expect(b.abort?.percent).toBe(50);
  });

  it('names the field and the reason when the config is wrong', () => {
    expect(() => faultFactory.parseConfig({ delay: { fixed: 'soon' } })).toThrow(/duration/);
    expect(() => faultFactory.parseConfig({ abort: { percent: 10 } })).toThrow(/httpStatus, grpcStatus or headerAbort/);
    expect(() => faultFactory.parseConfig({ abort: { httpStatus: 503, percent: 150 } })).toThrow(/100/);
    expect(() => faultFactory.parseConfig({ delays: {} })).toThrow(/delays/);
  });
});
