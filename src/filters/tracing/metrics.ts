import { Counter, type Registry } from 'prom-client';

export interface TracingMetrics {
  readonly dropped: Counter<'listener'>;
  readonly sampled: Counter<'listener'>;
}

const byRegistry = new WeakMap<Registry, TracingMetrics>();

/** One set per registry: spans dropped because the export queue was full, spans recorded. */
export function tracingMetrics(registry: Registry): TracingMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      dropped: new Counter({ name: 'capa_tracing_spans_dropped_total', help: 'Sampled spans dropped because the export queue was full', labelNames: ['listener'], registers: [registry] }),
      sampled: new Counter({ name: 'capa_tracing_spans_sampled_total', help: 'Spans recorded and queued for export', labelNames: ['listener'], registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
