/**
 * The shared metrics registry and Istio's standard metrics.
 *
 * `IstioMetrics` defines Istio's metric and label names exactly (istio.io "Istio Standard
 * Metrics"), so dashboards and alerts written for Envoy sidecars work unchanged. The local
 * workload's labels come from NodeInfo; the peer's are "unknown" (no peer metadata exchange yet).
 *
 * Hot path (`recordHttp`, once per request): two Map lookups — by cluster, then by a short key of
 * the parts that vary (direction, code, flags, gRPC status) — and four field updates on
 * plain child objects (see labelled-metrics.ts). Label objects are built only on a cache miss.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { NodeInfo, TrafficDirection } from '../config/snapshot.js';
import type { StreamInfo } from '../proxy/stream-info.js';
import { type CounterChild, type HistogramChild, LabelledCounter, LabelledHistogram } from './labelled-metrics.js';
import { hostOfAuthority, type ServiceLabels, serviceFromCluster, serviceFromHost } from './istio-service.js';

/** A Registry with Node's process metrics (CPU, memory, event loop lag, handles, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];
export const ISTIO_SIZE_BUCKETS_BYTES: readonly number[] = [1, 10, 100, 1000, 10000, 100000, 1e6, 1e7, 1e8, 1e9];

/** Istio's HTTP/gRPC label names, in Istio's order. */
export const ISTIO_HTTP_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** Istio's TCP label names: the HTTP ones without response_code and grpc_response_status. */
export const ISTIO_TCP_LABELS = ISTIO_HTTP_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');

const UNKNOWN = 'unknown';
/** Distinct keys kept per cluster before that cluster's cache is dropped (Host-header fallback can fan out). */
const MAX_KEYS_PER_CLUSTER = 2048;

interface HttpChildren {
  readonly requests: CounterChild;
  readonly duration: HistogramChild;
  readonly requestBytes: HistogramChild;
  readonly responseBytes: HistogramChild;
}

interface TcpChildren {
  readonly opened: CounterChild;
  readonly closed: CounterChild;
  readonly sent: CounterChild;
  readonly received: CounterChild;
}

interface ClusterEntry {
  /** null: the cluster name names no service (Istio falls back to the Host header). */
  readonly service: ServiceLabels | null;
  readonly http: Map<string, HttpChildren>;
}

/** The 8 labels describing one side (workload, namespace, principal, app, version, canonical service/revision, cluster). */
type Side = readonly [string, string, string, string, string, string, string, string];

const UNKNOWN_SIDE: Side = [UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN];

function localSide(n: NodeInfo): Side {
  const u = (s: string): string => s || UNKNOWN;
  // source_app / source_version: Istio reads the `app` / `version` pod labels; the canonical
  // service / revision are derived from the same labels, and are all NodeInfo carries.
  return [u(n.workloadName), u(n.namespace), UNKNOWN, u(n.canonicalService), u(n.canonicalRevision), u(n.canonicalService), u(n.canonicalRevision), u(n.cluster)];
}

function sameNode(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.id === b.id &&
    a.cluster === b.cluster &&
    a.workloadName === b.workloadName &&
    a.namespace === b.namespace &&
    a.canonicalService === b.canonicalService &&
    a.canonicalRevision === b.canonicalRevision &&
    a.meshId === b.meshId
  );
}

const byRegistry = new WeakMap<Registry, IstioMetrics>();

// === impl IstioMetrics ===

export class IstioMetrics {
  readonly requestsTotal: LabelledCounter;
  readonly requestDuration: LabelledHistogram;
  readonly requestBytes: LabelledHistogram;
  readonly responseBytes: LabelledHistogram;
  readonly tcpSentBytes: LabelledCounter;
  readonly tcpReceivedBytes: LabelledCounter;
  readonly tcpOpened: LabelledCounter;
  readonly tcpClosed: LabelledCounter;

  private node: NodeInfo;
  private local: Side;
  private readonly clusters = new Map<string, ClusterEntry>();
  private readonly tcp = new Map<string, TcpChildren>();

  /** The one IstioMetrics of `registry` (created on first use). A changed NodeInfo relabels later samples. */
  static for(registry: Registry, node: NodeInfo): IstioMetrics {
    let m = byRegistry.get(registry);
    if (!m) {
      m = new IstioMetrics(registry, node);
      byRegistry.set(registry, m);
    } else if (!sameNode(m.node, node)) {
      m.setNode(node);
    }
    return m;
  }

  private constructor(registry: Registry, node: NodeInfo) {
    this.node = node;
    this.local = localSide(node);
    const h = ISTIO_HTTP_LABELS;
    const t = ISTIO_TCP_LABELS;
    this.requestsTotal = new LabelledCounter('istio_requests_total', 'Total number of requests handled by the proxy', h).registerIn(registry);
    this.requestDuration = new LabelledHistogram('istio_request_duration_milliseconds', 'Duration of requests in milliseconds', h, ISTIO_DURATION_BUCKETS_MS).registerIn(registry);
    this.requestBytes = new LabelledHistogram('istio_request_bytes', 'Size of HTTP request bodies in bytes', h, ISTIO_SIZE_BUCKETS_BYTES).registerIn(registry);
    this.responseBytes = new LabelledHistogram('istio_response_bytes', 'Size of HTTP response bodies in bytes', h, ISTIO_SIZE_BUCKETS_BYTES).registerIn(registry);
    this.tcpSentBytes = new LabelledCounter('istio_tcp_sent_bytes_total', 'Bytes sent to the downstream on TCP connections', t).registerIn(registry);
    this.tcpReceivedBytes = new LabelledCounter('istio_tcp_received_bytes_total', 'Bytes received from the downstream on TCP connections', t).registerIn(registry);
    this.tcpOpened = new LabelledCounter('istio_tcp_connections_opened_total', 'TCP connections opened', t).registerIn(registry);
    this.tcpClosed = new LabelledCounter('istio_tcp_connections_closed_total', 'TCP connections closed', t).registerIn(registry);
  }

  private setNode(node: NodeInfo): void {
    this.node = node;
    this.local = localSide(node);
    this.clusters.clear();
    this.tcp.clear();
  }

  /**
   * Record one completed HTTP exchange. `isGrpc` sets request_protocol="grpc" (default: a gRPC
   * status is known); `hostHeaderFallback` uses :authority as destination_service when the
   * cluster names no service (Istio's default; PluginConfig.disable_host_header_fallback turns it off).
   */
  recordHttp(info: StreamInfo, isGrpc: boolean = info.grpcStatus >= 0, hostHeaderFallback = true): void {
    const cluster = info.upstreamCluster;
    let entry = this.clusters.get(cluster);
    if (entry === undefined) {
      entry = { service: serviceFromCluster(cluster), http: new Map() };
      this.clusters.set(cluster, entry);
    }
    const fallback = entry.service === null && hostHeaderFallback;
    const key =
      info.direction +
      '|' +
      info.responseCode +
      '|' +
      info.responseFlags +
      '|' +
      (isGrpc ? info.grpcStatus : 'h') +
      (fallback ? '|' + info.authority : '');
    let c = entry.http.get(key);
    if (c === undefined) c = this.missHttp(entry, key, info, isGrpc, fallback);
    c.requests.value += 1;
    c.duration.observe(info.durationMs);
    c.requestBytes.observe(info.bytesReceived);
    c.responseBytes.observe(info.bytesSent);
  }

  /** A TCP connection was accepted and proxied to `cluster`. */
  recordTcpOpen(dir: TrafficDirection, cluster: string): void {
    this.tcpChildren(dir, cluster).opened.value += 1;
  }

  /** A TCP connection closed; `sent` went to the downstream, `received` came from it. */
  recordTcpClose(dir: TrafficDirection, cluster: string, sent: number, received: number): void {
    const c = this.tcpChildren(dir, cluster);
    c.closed.value += 1;
    c.sent.value += sent;
    c.received.value += received;
  }

  // === cache misses ===

  private missHttp(entry: ClusterEntry, key: string, info: StreamInfo, isGrpc: boolean, fallback: boolean): HttpChildren {
    if (entry.http.size >= MAX_KEYS_PER_CLUSTER) entry.http.clear();
    const host = fallback ? hostOfAuthority(info.authority) : '';
    const service = entry.service ?? (host ? serviceFromHost(host) : null);
    const v = this.commonLabels(info.direction, service);
    const grpcStatus = isGrpc && info.grpcStatus >= 0 ? String(info.grpcStatus) : '';
    // Insert request_protocol, response_code, grpc_response_status, response_flags, connection_security_policy.
    const values = [
      ...v.head,
      isGrpc ? 'grpc' : 'http',
      String(info.responseCode),
      grpcStatus,
      info.responseFlags || '-',
      v.securityPolicy,
    ];
    const c: HttpChildren = {
      requests: this.requestsTotal.child(values),
      duration: this.requestDuration.child(values),
      requestBytes: this.requestBytes.child(values),
      responseBytes: this.responseBytes.child(values),
    };
    entry.http.set(key, c);
    return c;
  }

  private tcpChildren(dir: TrafficDirection, cluster: string): TcpChildren {
    const key = dir + '|' + cluster;
    let c = this.tcp.get(key);
    if (c === undefined) {
      const v = this.commonLabels(dir, serviceFromCluster(cluster));
      const values = [...v.head, 'tcp', '-', v.securityPolicy];
      c = {
        opened: this.tcpOpened.child(values),
        closed: this.tcpClosed.child(values),
        sent: this.tcpSentBytes.child(values),
        received: this.tcpReceivedBytes.child(values),
      };
      this.tcp.set(key, c);
    }
    return c;
  }

  /** reporter .. destination_cluster (the first 20 labels) and connection_security_policy. */
  private commonLabels(dir: TrafficDirection, service: ServiceLabels | null): { head: string[]; securityPolicy: string } {
    const inbound = dir === 'INBOUND';
    const src = inbound ? UNKNOWN_SIDE : this.local;
    const dst = inbound ? this.local : UNKNOWN_SIDE;
    const svcHost = service?.host || UNKNOWN;
    // Inbound: the service is ours, so what the cluster name does not say comes from the node.
    const svcName = service?.name || (inbound ? this.node.canonicalService : '') || UNKNOWN;
    const svcNs = service?.namespace || (inbound ? this.node.namespace : '') || UNKNOWN;
    const head = [
      inbound ? 'destination' : 'source',
      ...src,
      ...dst.slice(0, 5),
      svcHost,
      svcName,
      svcNs,
      dst[5],
      dst[6],
      dst[7],
    ];
    // Without mTLS termination the destination sees plain text; the source cannot know.
    return { head, securityPolicy: inbound ? 'none' : UNKNOWN };
  }
}
