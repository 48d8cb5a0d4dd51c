import { Counter, type Registry } from 'prom-client';

export interface FaultMetrics {
  readonly delays: Counter<'listener'>;
  readonly aborts: Counter<'listener'>;
}

const byRegistry = new WeakMap<Registry, FaultMetrics>();

/** Envoy's fault.delays_injected / fault.aborts_injected, one pair per registry. */
export function faultMetrics(registry: Registry): FaultMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      delays: new Counter({ name: 'capa_fault_delays_injected_total', help: 'Requests delayed by the fault filter', labelNames: ['listener'], registers: [registry] }),
      aborts: new Counter({ name: 'capa_fault_aborts_injected_total', help: 'Requests aborted by the fault filter', labelNames: ['listener'], registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
