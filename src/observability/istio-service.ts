/**
 * Istio's destination_service labels from a cluster name. Istio names its clusters
 * `outbound|80|v1|reviews.default.svc.cluster.local` / `inbound|9080||`; the service is the last
 * part (a FQDN). Any other name (standalone YAML's `backend`) is the service itself.
 */

export interface ServiceLabels {
  /** destination_service: the FQDN (or the plain cluster name). */
  readonly host: string;
  /** destination_service_name: first DNS label of a `*.svc.*` FQDN, else the host. */
  readonly name: string;
  /** destination_service_namespace: second DNS label of a `*.svc.*` FQDN, else '' (unknown). */
  readonly namespace: string;
}

/** Cluster names Istio uses that say nothing about the destination. */
const NO_SERVICE_CLUSTERS = new Set(['', 'PassthroughCluster', 'InboundPassthroughCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6', 'BlackHoleCluster']);

export function serviceFromHost(host: string): ServiceLabels {
  const labels = host.split('.');
  if (labels.length >= 3 && labels[2] === 'svc') return { host, name: labels[0]!, namespace: labels[1]! };
  return { host, name: host, namespace: '' };
}

/**
 * The service a cluster stands for, or null when the name carries none (then Istio falls back to
 * the Host header). A wildcard (`outbound|443||*.example.com`, the invocation's dynamic forward
 * proxy `invoke|*`) stands for many services, so the Host says which one.
 */
export function serviceFromCluster(cluster: string): ServiceLabels | null {
  if (NO_SERVICE_CLUSTERS.has(cluster)) return null;
  const bar = cluster.lastIndexOf('|');
  if (bar < 0) return serviceFromHost(cluster);
  const fqdn = cluster.slice(bar + 1);
  return fqdn && fqdn[0] !== '*' ? serviceFromHost(fqdn) : null;
}

/** The host part of an :authority / Host value (port and IPv6 brackets handled), '' when empty. */
export function hostOfAuthority(authority: string): string {
  if (!authority) return '';
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(0, end + 1) : authority;
  }
  const colon = authority.lastIndexOf(':');
  return (colon >= 0 ? authority.slice(0, colon) : authority).toLowerCase();
}
