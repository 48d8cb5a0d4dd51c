/**
 * Tracing through real sidecars: spans arrive at a real OTLP/HTTP (protobuf) receiver started
 * here and decoded with the OpenTelemetry protos (test/fixtures/otlp/trace.proto), with the right
 * parent/child links across two hops (client → sidecar A OUTBOUND → sidecar B INBOUND →
 * upstream); a Zipkin v2 JSON receiver for one hop; sampling 0 exports nothing but still
 * propagates sampled=0; a full queue drops and counts.
 */
import http from 'node:http';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request } from '../../helpers/http.js';
import { admin } from '../../helpers/traffic.js';

const root = protobuf.loadSync(fileURLToPath(new URL('../../fixtures/otlp/trace.proto', import.meta.url)));
const ExportRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

interface GotSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  status: string;
  attrs: Record<string, unknown>;
}

interface Receiver {
  port: number;
  spans: GotSpan[];
  posts: number;
  close(): Promise<void>;
}

type Decode = (body: Buffer) => GotSpan[];

const hex = (b: unknown): string => (b === undefined || b === null ? '' : Buffer.from(b as Uint8Array).toString('hex'));

const decodeOtlp: Decode = (body) => {
  const msg = ExportRequest.toObject(ExportRequest.decode(body), { longs: Number, enums: String, defaults: true }) as any;
  const out: GotSpan[] = [];
  const attrs = (kvs: any[]) => Object.fromEntries(kvs.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.intValue ?? kv.value.boolValue ?? kv.value.doubleValue]));
  for (const rs of msg.resourceSpans) {
    const service = String(attrs(rs.resource?.attributes ?? [])['service.name']);
    for (const ss of rs.scopeSpans)
      for (const s of ss.spans)
        out.push({ service, traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name, kind: s.kind, status: s.status?.code ?? 'STATUS_CODE_UNSET', attrs: attrs(s.attributes) });
  }
  return out;
};

const decodeZipkin: Decode = (body) =>
  (JSON.parse(body.toString()) as any[]).map((s) => ({
    service: s.localEndpoint?.serviceName,
    traceId: s.traceId,
    spanId: s.id,
    parentSpanId: s.parentId ?? '',
    name: s.name,
    kind: s.kind,
    status: s.tags?.error !== undefined || s.tags?.['otel.status_code'] === 'ERROR' ? 'ERROR' : 'UNSET',
    attrs: s.tags ?? {},
  }));

async function startReceiver(path: string, decode: Decode): Promise<Receiver> {
  const sockets = new Set<net.Socket>();
  const r: Receiver = { port: 0, spans: [], posts: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== path) {
        res.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      r.posts++;
      r.spans.push(...decode(body));
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end(path.includes('v1/traces') ? Buffer.alloc(0) : '');
    });
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  r.port = (server.address() as net.AddressInfo).port;
  r.close = () =>
    new Promise<void>((ok) => {
      for (const s of sockets) s.destroy();
      server.close(() => ok());
    });
  return r;
}

async function waitSpans(r: Receiver, pred: (s: GotSpan) => boolean, n: number, timeoutMs = 5000): Promise<GotSpan[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = r.spans.filter(pred);
    if (got.length >= n || Date.now() > end) return got;
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

const route = (cluster: string) => `
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: ${cluster} }`;

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

describe('tracing filter through real sidecars', () => {
  let otlp: Receiver;
  let zipkin: Receiver;
  let up: Upstream;
  /** Accepts connections and never answers: the exporter's first batch stays in flight. */
  let hang: net.Server;
  const hung = new Set<net.Socket>();
  let a: Running;
  let b: Running;

  beforeAll(async () => {
    otlp = await startReceiver('/v1/traces', decodeOtlp);
    zipkin = await startReceiver('/api/v2/spans', decodeZipkin);
    up = await startUpstream('up');
    hang = net.createServer((sock) => {
      hung.add(sock);
      sock.on('close', () => hung.delete(sock));
    });
    await new Promise<void>((ok) => hang.listen(0, '127.0.0.1', () => ok()));
    const hangPort = (hang.address() as net.AddressInfo).port;
    // A port nobody listens on: connections are refused (503, flag UF).
    const probe = net.createServer();
    await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', () => ok()));
    const deadPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((ok) => probe.close(() => ok()));
    const otlpExporter = `{ otlp: { endpoint: "http://127.0.0.1:${otlp.port}/v1/traces" } }`;
    b = await startSidecar(`
node: { id: node-b, canonicalService: svc-b }
listeners:
  - name: inbound
    address: 127.0.0.1
    port: 0
    trafficDirection: INBOUND
    httpFilters:
      - name: tracing
        config: { exporter: ${otlpExporter}, batchTimeout: 50ms }
      - name: envoy.filters.http.router
${route('app')}
  - name: zipkin
    address: 127.0.0.1
    port: 0
    trafficDirection: INBOUND
    httpFilters:
      - name: capa.filters.http.tracing
        config: { exporter: { zipkin: { endpoint: "http://127.0.0.1:${zipkin.port}/api/v2/spans" } }, batchTimeout: 50ms, serviceName: svc-zipkin }
      - name: envoy.filters.http.router
${route('app')}
  - name: broken
    address: 127.0.0.1
    port: 0
    trafficDirection: INBOUND
    httpFilters:
      - name: tracing
        config: { exporter: ${otlpExporter}, batchTimeout: 50ms }
      - name: envoy.filters.http.router
${route('dead')}
clusters:
  - name: app
    endpoints: ["127.0.0.1:${up.port}"]
  - name: dead
    endpoints: ["127.0.0.1:${deadPort}"]
`);
    a = await startSidecar(`
node: { id: node-a, canonicalService: svc-a }
listeners:
  - name: outbound
    address: 127.0.0.1
    port: 0
    trafficDirection: OUTBOUND
    httpFilters:
      - name: tracing
        config: { exporter: ${otlpExporter}, batchTimeout: 50ms }
      - name: envoy.filters.http.router
${route('b')}
  - name: unsampled
    address: 127.0.0.1
    port: 0
    trafficDirection: OUTBOUND
    httpFilters:
      - name: tracing
        config: { exporter: ${otlpExporter}, batchTimeout: 50ms, sampling: 0, serviceName: svc-unsampled }
      - name: envoy.filters.http.router
${route('app')}
  - name: tiny
    address: 127.0.0.1
    port: 0
    trafficDirection: OUTBOUND
    httpFilters:
      - name: tracing
        config: { exporter: { otlp: { endpoint: "http://127.0.0.1:${hangPort}/v1/traces" } }, batchTimeout: 10ms, maxQueueSize: 1, serviceName: svc-tiny }
      - name: envoy.filters.http.router
${route('app')}
clusters:
  - name: b
    endpoints: ["127.0.0.1:${b.port('inbound')}"]
  - name: app
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await up?.close();
    await otlp?.close();
    await zipkin?.close();
    for (const sock of hung) sock.destroy();
    hang?.close();
  });

  it('links A (CLIENT) → B (SERVER) → upstream in one trace over OTLP/HTTP protobuf', async () => {
    const before = up.seen.length;
    const r = await request(a.port('outbound'), { path: '/orders/1?x=2', headers: { host: 'orders.shop:8080', 'x-request-id': 'req-42' } });
    expect(r.status).toBe(200);
    const seen = up.seen.slice(before);
    expect(seen).toHaveLength(1);
    const tp = TP.exec(String(seen[0]!.headers.traceparent));
    expect(tp).not.toBeNull();
    expect(seen[0]!.headers['x-request-id']).toBe('req-42');

    const [sa] = await waitSpans(otlp, (s) => s.service === 'svc-a' && s.attrs['guid:x-request-id'] === 'req-42', 1);
    const [sb] = await waitSpans(otlp, (s) => s.service === 'svc-b' && s.attrs['guid:x-request-id'] === 'req-42', 1);
    expect(sa).toBeDefined();
    expect(sb).toBeDefined();
    expect(sa!.kind).toBe('SPAN_KIND_CLIENT');
    expect(sb!.kind).toBe('SPAN_KIND_SERVER');
    expect(sa!.parentSpanId).toBe('');
    expect(sb!.parentSpanId).toBe(sa!.spanId);
    expect(sb!.traceId).toBe(sa!.traceId);
    expect(tp![1]).toBe(sa!.traceId);
    expect(tp![2]).toBe(sb!.spanId);
    expect(tp![3]).toBe('01');
    // B3 too, in both encodings, pointing at B's span.
    expect(seen[0]!.headers.b3).toBe(`${sa!.traceId}-${sb!.spanId}-1`);
    expect(seen[0]!.headers['x-b3-spanid']).toBe(sb!.spanId);
    expect(sa!.name).toBe('orders.shop:8080/orders/1');
    expect(sa!.attrs).toMatchObject({ node_id: 'node-a', upstream_cluster: 'b', 'http.method': 'GET', 'http.status_code': 200, component: 'proxy', response_flags: '-' });
    expect(sb!.attrs).toMatchObject({ node_id: 'node-b', upstream_cluster: 'app', 'http.status_code': 200 });
    expect(Number(sb!.attrs.response_size)).toBeGreaterThan(0);
  });

  it('continues the trace of a client that sent a traceparent', async () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    const r = await request(a.port('outbound'), { path: '/p', headers: { traceparent: `00-${trace}-${parent}-01`, 'x-request-id': 'req-43' } });
    expect(r.status).toBe(200);
    const [sa] = await waitSpans(otlp, (s) => s.service === 'svc-a' && s.attrs['guid:x-request-id'] === 'req-43', 1);
    expect(sa!.traceId).toBe(trace);
    expect(sa!.parentSpanId).toBe(parent);
  });

  it('marks a 5xx span as error, with the response flags', async () => {
    const r = await request(b.port('broken'), { path: '/down', headers: { 'x-request-id': 'req-500' } });
    expect(r.status).toBe(503);
    const [sb] = await waitSpans(otlp, (s) => s.attrs['guid:x-request-id'] === 'req-500', 1);
    expect(sb!.status).toBe('STATUS_CODE_ERROR');
    expect(sb!.attrs).toMatchObject({ 'http.status_code': 503, upstream_cluster: 'dead' });
    expect(String(sb!.attrs.response_flags)).toContain('UF');
  });

  it('exports Zipkin v2 JSON for one hop', async () => {
    const before = up.seen.length;
    const r = await request(b.port('zipkin'), { path: '/z', headers: { 'x-request-id': 'req-z', b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1' } });
    expect(r.status).toBe(200);
    const [s] = await waitSpans(zipkin, (x) => x.attrs['guid:x-request-id'] === 'req-z', 1);
    expect(s).toBeDefined();
    expect(s!.service).toBe('svc-zipkin');
    expect(s!.kind).toBe('SERVER');
    expect(s!.traceId).toBe('80f198ee56343ba864fe8b2a57d3eff7');
    expect(s!.parentSpanId).toBe('e457b5a2e4d86bd1');
    expect(s!.attrs['http.status_code']).toBe('200');
    expect(up.seen[before]!.headers.traceparent).toBe(`00-80f198ee56343ba864fe8b2a57d3eff7-${s!.spanId}-01`);
  });

  it('sampling 0 exports nothing and still propagates sampled=0', async () => {
    const before = up.seen.length;
    for (let i = 0; i < 5; i++) expect((await request(a.port('unsampled'), { path: '/u', headers: { 'x-request-id': `req-u${i}` } })).status).toBe(200);
    const seen = up.seen.slice(before);
    expect(seen).toHaveLength(5);
    for (const x of seen) {
      const tp = TP.exec(String(x.headers.traceparent));
      expect(tp?.[3]).toBe('00');
      expect(x.headers['x-b3-sampled']).toBe('0');
    }
    await new Promise((ok) => setTimeout(ok, 300));
    expect(otlp.spans.filter((s) => s.service === 'svc-unsampled')).toHaveLength(0);
  });

  it('drops and counts spans when the export queue is full, without slowing requests', async () => {
    // A receiver that never answers and a queue of 1: spans pile up and are dropped, counted,
    // and requests are not slowed meanwhile.
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      expect((await request(a.port('tiny'), { path: '/t' })).status).toBe(200);
      await new Promise((ok) => setTimeout(ok, 30));
    }
    expect(performance.now() - t0).toBeLessThan(1000);
    const prom = (await admin(a.sidecar.adminPort, '/stats/prometheus')).body;
    // Each sampled request ends its span plus one child per upstream try, so the one-slot queue
    // is full after the first request: every later request is dropped and counted.
    const dropped = Number(/capa_tracing_spans_dropped_total\{listener="tiny"\} (\d+)/.exec(prom)?.[1]);
    const sampled = Number(/capa_tracing_spans_sampled_total\{listener="tiny"\} (\d+)/.exec(prom)?.[1]);
    expect(dropped + sampled).toBe(4);
    expect(dropped).toBeGreaterThanOrEqual(2);
  });
});
