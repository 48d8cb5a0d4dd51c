/** /clusters in Envoy's text format (`name::host:port::stat::value`) and its JSON (admin.v3.Clusters). */
import type { ClusterStatus, HostStatus } from './types.js';

function hostAddr(h: HostStatus): string {
  return h.address.includes(':') ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`;
}

function healthFlags(h: HostStatus): string {
  return h.healthFlags || (h.healthy ? 'healthy' : '/failed_active_hc');
}

function rqSuccess(h: HostStatus): number {
  return Math.max(0, h.stats.rqTotal - h.stats.rqError - h.stats.rqActive);
}

export function clustersText(clusters: readonly ClusterStatus[]): string {
  const out: string[] = [];
  for (const c of clusters) {
    out.push(`${c.name}::observability_name::${c.name}`);
    for (const h of c.hosts) {
      const p = `${c.name}::${hostAddr(h)}::`;
      const s = h.stats;
      // Stats in Envoy's (alphabetical) order, then the host's attributes.
      out.push(
        `${p}cx_active::${s.cxActive}`,
        `${p}cx_connect_fail::${s.cxConnectFail}`,
        `${p}cx_total::${s.cxTotal}`,
        `${p}rq_active::${s.rqActive}`,
        `${p}rq_error::${s.rqError}`,
        `${p}rq_success::${rqSuccess(h)}`,
        `${p}rq_timeout::${s.rqTimeout}`,
        `${p}rq_total::${s.rqTotal}`,
        `${p}hostname::`,
        `${p}health_flags::${healthFlags(h)}`,
        `${p}weight::${h.weight}`,
        `${p}region::`,
        `${p}zone::`,
        `${p}sub_zone::`,
        `${p}canary::false`,
        `${p}priority::0`,
        `${p}success_rate::-1`,
        `${p}local_origin_success_rate::-1`,
      );
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export function clustersJson(clusters: readonly ClusterStatus[]): string {
  const counter = (name: string, value: number): Record<string, string> => ({ name, value: String(value) });
  const gauge = (name: string, value: number): Record<string, string> => ({ type: 'GAUGE', name, value: String(value) });
  const cluster_statuses = clusters.map((c) => ({
    name: c.name,
    observability_name: c.name,
    // Not in Envoy's message; useful and ignored by Envoy tooling.
    type: c.type,
    lb_policy: c.lbPolicy,
    host_statuses: c.hosts.map((h) => ({
      address: { socket_address: { address: h.address, port_value: h.port } },
      stats: [
        counter('cx_connect_fail', h.stats.cxConnectFail),
        counter('cx_total', h.stats.cxTotal),
        counter('rq_error', h.stats.rqError),
        counter('rq_success', rqSuccess(h)),
        counter('rq_timeout', h.stats.rqTimeout),
        counter('rq_total', h.stats.rqTotal),
        gauge('cx_active', h.stats.cxActive),
        gauge('rq_active', h.stats.rqActive),
      ],
      health_status: { eds_health_status: h.healthy ? 'HEALTHY' : 'UNHEALTHY', ...(h.healthy ? {} : { failed_active_health_check: true }) },
      health_flags: healthFlags(h),
      weight: h.weight,
    })),
  }));
  return `${JSON.stringify({ cluster_statuses }, null, 2)}\n`;
}
