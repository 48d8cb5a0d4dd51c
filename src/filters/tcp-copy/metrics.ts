import { Counter, type Registry } from 'prom-client';

export type TcpCopyDecision = 'sampled' | 'skipped' | 'budget_exhausted';

export interface TcpCopyMetrics {
  readonly connections: Counter<'decision'>;
  readonly bytes: Counter;
  readonly droppedPackets: Counter;
}

const byRegistry = new WeakMap<Registry, TcpCopyMetrics>();

/** tcp-copy's counters, created once per registry. */
export function tcpCopyMetrics(registry: Registry): TcpCopyMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      connections: new Counter({
        name: 'capa_tcpcopy_connections_total',
        help: 'Connections seen by tcp-copy while enabled, by decision (sampled, skipped, budget_exhausted)',
        labelNames: ['decision'],
        registers: [registry],
      }),
      bytes: new Counter({ name: 'capa_tcpcopy_bytes_total', help: 'Payload bytes of copied connections written to pcap files', registers: [registry] }),
      droppedPackets: new Counter({
        name: 'capa_tcpcopy_dropped_packets_total',
        help: 'Packets of copied connections dropped because the pcap write queue was full',
        registers: [registry],
      }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}
