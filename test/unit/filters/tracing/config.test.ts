import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { tracingConfigSchema, tracingFactory } from '../../../../src/filters/tracing/index.js';
import { builtinFilterRegistry } from '../../../../src/filters/index.js';

function errorPaths(raw: unknown): string[] {
  try {
    tracingConfigSchema.parse(raw);
  } catch (e) {
    if (e instanceof ZodError) return e.issues.map((i) => i.path.join('.'));
    throw e;
  }
  return [];
}

describe('tracing config', () => {
  it('has defaults: sampling 1, w3c + b3, OTLP on 127.0.0.1:4318, queue 2048, 1s batches', () => {
    expect(tracingConfigSchema.parse({})).toEqual({
      sampling: 1,
      propagation: ['w3c', 'b3'],
      exporter: { kind: 'otlp', endpoint: 'http://127.0.0.1:4318/v1/traces', timeoutMs: 10_000 },
      serviceName: null,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      batchTimeoutMs: 1000,
    });
  });

  it('accepts a Zipkin exporter and durations', () => {
    const c = tracingConfigSchema.parse({ exporter: { zipkin: {} }, batchTimeout: '250ms', sampling: 0.01, propagation: ['b3-multi'], serviceName: 'svc' });
    expect(c.exporter).toEqual({ kind: 'zipkin', endpoint: 'http://127.0.0.1:9411/api/v2/spans', timeoutMs: 10_000 });
    expect(c.batchTimeoutMs).toBe(250);
    expect(c.propagation).toEqual(['b3-multi']);
  });

  it('names the failing field', () => {
    expect(errorPaths({ sampling: 1.5 })).toEqual(['sampling']);
    expect(errorPaths({ propagation: ['jaeger'] })).toEqual(['propagation.0']);
    expect(errorPaths({ exporter: { otlp: { endpoint: 'not a url' } } })).toEqual(['exporter.otlp.endpoint']);
    expect(errorPaths({ exporter: {} })).toEqual(['exporter']);
    expect(errorPaths({ exporter: { otlp: {}, zipkin: {} } })).toEqual(['exporter']);
    expect(errorPaths({ maxQueueSize: 0 })).toEqual(['maxQueueSize']);
    expect(errorPaths({ batchTimeout: 'soon' })).toEqual(['batchTimeout']);
    expect(errorPaths({ sample: 1 })).toEqual(['']);
  });

  it('is registered by name, alias and type URL', () => {
    const reg = builtinFilterRegistry();
    expect(reg.get('capa.filters.http.tracing')).toBe(tracingFactory);
    expect(reg.get('tracing')).toBe(tracingFactory);
    expect(tracingFactory.typeUrl).toBe('type.googleapis.com/capa.filters.http.tracing.v1.Tracing');
  });
});
