/**
 * Pub/sub counters, as Dapr's `dapr_component_pubsub_egress_count` / `_ingress_count` count them,
 * under this project's names:
 *   capa_pubsub_egress_total{component, topic, success}   publishes ("true" once the backend stored it)
 *   capa_pubsub_ingress_total{component, topic, status}   messages the sidecar took from the backend:
 *     success   the app took it
 *     retry     the app failed it, asked for it again or was unreachable: the backend redelivers
 *     drop      the app dropped it, or its last delivery failed: dead-lettered or discarded
 *     expired   its TTL (`expiration`) had passed: not delivered
 *     unrouted  no routing rule matched and the subscription has no default path: not delivered
 * The label values of a subscription are bound once, so counting a message is one increment.
 */
import { Counter, type Registry } from 'prom-client';

export type IngressStatus = 'success' | 'retry' | 'drop' | 'expired' | 'unrouted';

export interface PubSubMetrics {
  readonly egress: Counter<'component' | 'topic' | 'success'>;
  readonly ingress: Counter<'component' | 'topic' | 'status'>;
}

/** One subscription's ingress counters, by status. */
export type IngressCounters = Readonly<Record<IngressStatus, { inc(): void }>>;

const byRegistry = new WeakMap<Registry, PubSubMetrics>();

/** One set per registry (a reload makes a new pub/sub runtime, not new metrics). */
export function pubsubMetrics(registry: Registry): PubSubMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      egress: new Counter({ name: 'capa_pubsub_egress_total', help: 'Messages published, by pubsub component, topic and whether the backend stored them', labelNames: ['component', 'topic', 'success'], registers: [registry] }),
      ingress: new Counter({ name: 'capa_pubsub_ingress_total', help: 'Messages taken from the backend for the app, by pubsub component, topic and outcome (success, retry, drop, expired, unrouted)', labelNames: ['component', 'topic', 'status'], registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

export function ingressCounters(m: PubSubMetrics, component: string, topic: string): IngressCounters {
  const at = (status: IngressStatus): { inc(): void } => m.ingress.labels({ component, topic, status });
  return { success: at('success'), retry: at('retry'), drop: at('drop'), expired: at('expired'), unrouted: at('unrouted') };
}

/** Counts nothing: a runtime built without a registry (unit tests). */
const NONE = { inc(): void {} };
export const NO_INGRESS_COUNTERS: IngressCounters = { success: NONE, retry: NONE, drop: NONE, expired: NONE, unrouted: NONE };
