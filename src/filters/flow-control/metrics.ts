import { Counter, type Registry } from 'prom-client';

export type FlowDecision = 'passed' | 'limited' | 'rejected';
export const FLOW_DECISIONS: readonly FlowDecision[] = ['passed', 'limited', 'rejected'];
export const FLOW_METRIC = 'capa_flowcontrol_requests_total';

const byRegistry = new WeakMap<Registry, Counter<'policy' | 'decision'>>();

/**
 * `capa_flowcontrol_requests_total{policy,decision}`: requests a policy applied to. passed: went
 * on through the chain; limited: over the rate (429); rejected: concurrency full (503) or a
 * fault abort. One counter per registry, so counts run on across reloads.
 */
export function flowControlMetric(registry: Registry): Counter<'policy' | 'decision'> {
  let m = byRegistry.get(registry);
  if (!m) {
    m = new Counter({ name: FLOW_METRIC, help: 'Requests matched by a flow-control policy, by decision', labelNames: ['policy', 'decision'], registers: [registry] });
    byRegistry.set(registry, m);
  }
  return m;
}

/** Per-policy label children, made once when the filter is built. */
export interface PolicyCounters {
  readonly passed: { inc(): void };
  readonly limited: { inc(): void };
  readonly rejected: { inc(): void };
}

export function policyCounters(m: Counter<'policy' | 'decision'>, policy: string): PolicyCounters {
  return { passed: m.labels(policy, 'passed'), limited: m.labels(policy, 'limited'), rejected: m.labels(policy, 'rejected') };
}
