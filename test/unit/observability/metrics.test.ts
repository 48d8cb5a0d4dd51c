import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { NodeInfo } from '../../../src/config/snapshot.js';
import { createMetricsRegistry, ISTIO_HTTP_LABELS, ISTIO_TCP_LABELS, IstioMetrics } from '../../../src/observability/metrics.js';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/stream-info.js';

const NODE: NodeInfo = {
  id: 'sidecar~10.0.0.7~reviews-v1-abc.default~default.svc.cluster.local',
  cluster: 'Kubernetes',
  workloadName: 'reviews-v1',
  namespace: 'default',
  canonicalService: 'reviews',
  canonicalRevision: 'v1',
  meshId: 'cluster.local',
};

function info(over: Partial<StreamInfo>): StreamInfo {
  return Object.assign(newStreamInfo(), { responseCode: 200, durationMs: 7, bytesReceived: 10, bytesSent: 300 }, over);
}

/** Parse `name{a="b",...} value` lines of one metric into label objects and values. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const OUT_CLUSTER = 'outbound|9080||ratings.default.svc.cluster.local';

describe('IstioMetrics', () => {
  it('records outbound requests with reporter=source and Istio labels', async () => {
    const reg = new Registry();
    const m = IstioMetrics.for(reg, NODE);
    m.recordHttp(info({ direction: 'OUTBOUND', upstreamCluster: OUT_CLUSTER }));
    m.recordHttp(info({ direction: 'OUTBOUND', upstreamCluster: OUT_CLUSTER, durationMs: 30 }));
    const text = await reg.metrics();
    const reqs = samples(text, 'istio_requests_total');
    expect(reqs).toHaveLength(1);
    const l = reqs[0]!.labels;
    expect(Object.keys(l)).toEqual([...ISTIO_HTTP_LABELS]);
    expect(reqs[0]!.value).toBe(2);
    expect(l).toMatchObject({
      reporter: 'source',
      source_workload: 'reviews-v1',
      source_workload_namespace: 'default',
      source_principal: 'unknown',
      source_app: 'reviews',
      source_version: 'v1',
      source_canonical_service: 'reviews',
      source_canonical_revision: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'unknown',
      destination_workload_namespace: 'unknown',
      destination_service: 'ratings.default.svc.cluster.local',
      destination_service_name: 'ratings',
      destination_service_namespace: 'default',
      destination_canonical_service: 'unknown',
      destination_cluster: 'unknown',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
    // duration histogram: 7 and 30 → le=10 has 1, le=50 has 2, count 2, sum 37
    const buckets = samples(text, 'istio_request_duration_milliseconds_bucket');
    expect(buckets.find((b) => b.labels.le === '5')!.value).toBe(0);
    expect(buckets.find((b) => b.labels.le === '10')!.value).toBe(1);
    expect(buckets.find((b) => b.labels.le === '50')!.value).toBe(2);
    expect(buckets.find((b) => b.labels.le === '3600000')!.value).toBe(2);
    expect(buckets.find((b) => b.labels.le === '+Inf')!.value).toBe(2);
    expect(buckets.map((b) => b.labels.le)).toEqual([
      '0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf',
    ]);
    expect(samples(text, 'istio_request_duration_milliseconds_sum')[0]!.value).toBe(37);
    expect(samples(text, 'istio_request_duration_milliseconds_count')[0]!.value).toBe(2);
    const resp = samples(text, 'istio_response_bytes_bucket');
    expect(resp.map((b) => b.labels.le)).toEqual(['1', '10', '100', '1000', '10000', '100000', '1000000', '10000000', '100000000', '1000000000', '+Inf']);
    expect(resp.find((b) => b.labels.le === '1000')!.value).toBe(2);
    expect(resp.find((b) => b.labels.le === '100')!.value).toBe(0);
    expect(samples(text, 'istio_request_bytes_sum')[0]!.value).toBe(20);
    expect(text).toContain('# TYPE istio_requests_total counter');
    expect(text).toContain('# TYPE istio_request_duration_milliseconds histogram');
  });

  it('records inbound requests with reporter=destination, gRPC status, flags and Host fallback', async () => {
    const reg = new Registry();
    const m = IstioMetrics.for(reg, NODE);
    m.recordHttp(info({ direction: 'INBOUND', upstreamCluster: 'inbound|9080||', authority: 'reviews.default.svc.cluster.local:9080', grpcStatus: 14, responseCode: 200 }));
    m.recordHttp(info({ direction: 'INBOUND', upstreamCluster: 'inbound|9080||', authority: 'reviews:9080', responseCode: 503, responseFlags: 'UF,URX' }));
    m.recordHttp(info({ direction: 'INBOUND', upstreamCluster: 'inbound|9080||', authority: 'reviews:9080' }), false, false);
    const reqs = samples(await reg.metrics(), 'istio_requests_total');
    expect(reqs).toHaveLength(3);
    const grpc = reqs.find((r) => r.labels.request_protocol === 'grpc')!;
    expect(grpc.labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'unknown',
      destination_workload: 'reviews-v1',
      destination_workload_namespace: 'default',
      destination_app: 'reviews',
      destination_version: 'v1',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v1',
      destination_cluster: 'Kubernetes',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      grpc_response_status: '14',
      connection_security_policy: 'none',
    });
    const uf = reqs.find((r) => r.labels.response_code === '503')!;
    expect(uf.labels).toMatchObject({ response_flags: 'UF,URX', destination_service: 'reviews', destination_service_name: 'reviews', destination_service_namespace: 'default' });
    const noFallback = reqs.find((r) => r.labels.response_code === '200' && r.labels.request_protocol === 'http')!;
    expect(noFallback.labels).toMatchObject({ destination_service: 'unknown', destination_service_name: 'reviews' });
  });

  it('keeps label sets apart in its cache', async () => {
    const reg = new Registry();
    const m = IstioMetrics.for(reg, NODE);
    const combos: Partial<StreamInfo>[] = [
      { direction: 'OUTBOUND', upstreamCluster: 'a', responseCode: 200 },
      { direction: 'OUTBOUND', upstreamCluster: 'a', responseCode: 404 },
      { direction: 'OUTBOUND', upstreamCluster: 'b', responseCode: 200 },
      { direction: 'INBOUND', upstreamCluster: 'a', responseCode: 200 },
      { direction: 'OUTBOUND', upstreamCluster: 'a', responseCode: 200, responseFlags: 'UT' },
      { direction: 'UNSPECIFIED', upstreamCluster: 'outbound|80||c.ns.svc.cluster.local', responseCode: 200 },
    ];
    combos.forEach((c, i) => {
      for (let n = 0; n <= i; n++) m.recordHttp(info(c));
    });
    const reqs = samples(await reg.metrics(), 'istio_requests_total');
    expect(reqs).toHaveLength(combos.length);
    const find = (p: Record<string, string>): number => {
      const hit = reqs.filter((r) => Object.entries(p).every(([k, v]) => r.labels[k] === v));
      expect(hit).toHaveLength(1);
      return hit[0]!.value;
    };
    expect(find({ reporter: 'source', destination_service: 'a', response_code: '200', response_flags: '-' })).toBe(1);
    expect(find({ reporter: 'source', destination_service: 'a', response_code: '404' })).toBe(2);
    expect(find({ reporter: 'source', destination_service: 'b' })).toBe(3);
    expect(find({ reporter: 'destination', destination_service: 'a' })).toBe(4);
    expect(find({ response_flags: 'UT' })).toBe(5);
    expect(find({ reporter: 'source', destination_service: 'c.ns.svc.cluster.local', destination_service_name: 'c', destination_service_namespace: 'ns' })).toBe(6);
  });

  it('records TCP connections with the TCP label set', async () => {
    const reg = new Registry();
    const m = IstioMetrics.for(reg, NODE);
    m.recordTcpOpen('OUTBOUND', 'outbound|6379||redis.db.svc.cluster.local');
    m.recordTcpOpen('OUTBOUND', 'outbound|6379||redis.db.svc.cluster.local');
    m.recordTcpClose('OUTBOUND', 'outbound|6379||redis.db.svc.cluster.local', 100, 40);
    m.recordTcpClose('OUTBOUND', 'outbound|6379||redis.db.svc.cluster.local', 1, 2);
    m.recordTcpOpen('INBOUND', 'inbound|5432||');
    const text = await reg.metrics();
    const opened = samples(text, 'istio_tcp_connections_opened_total');
    expect(opened).toHaveLength(2);
    const out = opened.find((o) => o.labels.reporter === 'source')!;
    expect(Object.keys(out.labels)).toEqual([...ISTIO_TCP_LABELS]);
    expect(out.value).toBe(2);
    expect(out.labels).toMatchObject({ request_protocol: 'tcp', response_flags: '-', destination_service: 'redis.db.svc.cluster.local', destination_service_name: 'redis', destination_service_namespace: 'db' });
    expect(out.labels).not.toHaveProperty('response_code');
    expect(samples(text, 'istio_tcp_connections_closed_total')[0]!.value).toBe(2);
    expect(samples(text, 'istio_tcp_sent_bytes_total')[0]!.value).toBe(101);
    expect(samples(text, 'istio_tcp_received_bytes_total')[0]!.value).toBe(42);
  });

  it('is one instance per registry, relabelled when the node changes', async () => {
    const reg = new Registry();
    const a = IstioMetrics.for(reg, NODE);
    expect(IstioMetrics.for(reg, { ...NODE })).toBe(a);
    expect(IstioMetrics.for(new Registry(), NODE)).not.toBe(a);
    a.recordHttp(info({ direction: 'OUTBOUND', upstreamCluster: 'x' }));
    IstioMetrics.for(reg, { ...NODE, workloadName: 'reviews-v2' }).recordHttp(info({ direction: 'OUTBOUND', upstreamCluster: 'x' }));
    const reqs = samples(await reg.metrics(), 'istio_requests_total');
    expect(reqs.map((r) => r.labels.source_workload).sort()).toEqual(['reviews-v1', 'reviews-v2']);
  });

  it('keeps counting after Registry.resetMetrics()', async () => {
    const reg = new Registry();
    const m = IstioMetrics.for(reg, NODE);
    m.recordHttp(info({ upstreamCluster: 'x' }));
    m.recordHttp(info({ upstreamCluster: 'x' }));
    reg.resetMetrics();
    expect(samples(await reg.metrics(), 'istio_requests_total')[0]!.value).toBe(0);
    expect(samples(await reg.metrics(), 'istio_request_bytes_count')[0]!.value).toBe(0);
    m.recordHttp(info({ upstreamCluster: 'x' }));
    expect(samples(await reg.metrics(), 'istio_requests_total')[0]!.value).toBe(1);
  });

  // Istio's own name `istio_request_duration_milliseconds` draws promtool's one base-unit lint
  // (Envoy's exposition draws the same); nothing else of ours may, and the text must parse.
  const KNOWN_ISTIO_LINT = 'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"';

  function record(m: IstioMetrics): void {
    m.recordHttp(info({ direction: 'OUTBOUND', upstreamCluster: OUT_CLUSTER }));
    m.recordHttp(info({ direction: 'INBOUND', upstreamCluster: 'inbound|80||', authority: 'we"ird\\host\nx', grpcStatus: 0 }));
    m.recordTcpOpen('OUTBOUND', 'tcp-backend');
    m.recordTcpClose('OUTBOUND', 'tcp-backend', 5, 6);
  }

  it('passes promtool check metrics (only the base-unit lint of Istio\'s mandated name)', async () => {
    const reg = new Registry();
    record(IstioMetrics.for(reg, NODE));
    const r = promtool(await reg.metrics());
    expect(r.out.trim().split('\n')).toEqual([KNOWN_ISTIO_LINT]);
    expect(r.status).toBe(3); // 3 = lint findings; 1 would be a parse error
  });

  it('parses with process metrics too, and no istio_* lint besides the base unit', async () => {
    const reg = createMetricsRegistry();
    record(IstioMetrics.for(reg, NODE));
    const text = await reg.metrics();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    const r = promtool(text);
    expect(r.status).not.toBe(1);
    expect(r.out).not.toMatch(/error/i);
    const ours = r.out.split('\n').filter((l) => l.startsWith('istio_'));
    expect(ours).toEqual([KNOWN_ISTIO_LINT]);
  });
});
