import { SpanKind } from '@opentelemetry/api';
import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { acquireBackend, sdkTrace } from './backend.js';
import { tracingConfigSchema, type TracingConfig } from './config.js';
import { TracingFilter, type TracingShared } from './filter.js';
import { tracingMetrics } from './metrics.js';
import { Propagator } from './propagation.js';

export const TRACING_FILTER_NAME = 'capa.filters.http.tracing';
export const TRACING_TYPE_URL = 'type.googleapis.com/capa.filters.http.tracing.v1.Tracing';

/** Takes no per-route config (only the generic `{disabled: true}`). */
export const tracingFactory: HttpFilterFactory<TracingConfig> = {
  name: TRACING_FILTER_NAME,
  typeUrl: TRACING_TYPE_URL,
  aliases: ['tracing'],
  parseConfig: (raw) => Object.freeze(tracingConfigSchema.parse(raw ?? {})),

  build(config: TracingConfig, ctx: FilterContext): BuiltFilter {
    const serviceName = config.serviceName ?? (ctx.node.canonicalService || 'capa-runtime');
    const lease = acquireBackend(config, serviceName);
    const m = tracingMetrics(ctx.registry);
    const shared: TracingShared = {
      backend: lease.backend,
      propagator: new Propagator(config.propagation),
      sampling: config.sampling,
      kind: ctx.direction === 'OUTBOUND' ? SpanKind.CLIENT : SpanKind.SERVER,
      nodeId: ctx.node.id,
      ids: new (sdkTrace().RandomIdGenerator)(),
      random: Math.random,
      dropped: m.dropped.labels(ctx.listenerName),
      sampled: m.sampled.labels(ctx.listenerName),
    };
    const create = (): HttpFilter => new TracingFilter(shared);
    return { forRoute: () => create, close: () => lease.release() };
  },
};
