import { Counter, Gauge, type Registry } from 'prom-client';

export interface CircuitMetrics {
  /** 0 closed, 1 open, 2 half-open. `route` is '' for cluster-scoped breakers. */
  readonly state: Gauge<'cluster' | 'route'>;
  readonly rejected: Counter<'cluster' | 'route'>;
}

const byRegistry = new WeakMap<Registry, CircuitMetrics>();

export function circuitMetrics(registry: Registry): CircuitMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      state: new Gauge({ name: 'capa_circuit_state', help: 'Circuit breaker state (0 closed, 1 open, 2 half-open)', labelNames: ['cluster', 'route'], registers: [registry] }),
      rejected: new Counter({ name: 'capa_circuit_rejected_total', help: 'Requests refused by an open circuit breaker', labelNames: ['cluster', 'route'], registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
