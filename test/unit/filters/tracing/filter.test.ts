import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, RandomIdGenerator, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Propagator, TracingFilter, shouldSample, type Propagation, type TracingShared } from '../../../../src/filters/tracing/index.js';
import type { HttpStream } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { newStreamInfo } from '../../../../src/proxy/stream-info.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

function stream(headers: Record<string, string> = {}): HttpStream {
  const info = newStreamInfo();
  info.requestId = 'rid-1';
  info.startTime = Date.now();
  return {
    info,
    requestHeaders: HeaderMap.from({ 'x-request-id': 'rid-1', ...headers }),
    method: 'GET',
    path: '/api/x?q=1',
    authority: 'svc.ns:8080',
    isGrpc: false,
    routeName: 'r',
    clusterName: 'c',
    sendLocalReply: () => {},
    continueRequest: () => {},
  };
}

function setup(opts: { sampling?: number; propagation?: Propagation[]; random?: () => number; maxQueueSize?: number } = {}) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const counts = { dropped: 0, sampled: 0 };
  const shared: TracingShared = {
    backend: { tracer: provider.getTracer('t'), maxQueueSize: opts.maxQueueSize ?? 100, queued: 0 },
    propagator: new Propagator(opts.propagation ?? ['w3c', 'b3']),
    sampling: opts.sampling ?? 1,
    kind: SpanKind.SERVER,
    nodeId: 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local',
    ids: new RandomIdGenerator(),
    random: opts.random ?? (() => 0.5),
    dropped: { inc: () => counts.dropped++ },
    sampled: { inc: () => counts.sampled++ },
  };
  const run = (s: HttpStream, status = 200) => {
    const f = new TracingFilter(shared);
    expect(f.onRequestHeaders(s)).toBe('continue');
    s.info.responseCode = status;
    f.onComplete(s);
    return s;
  };
  return { exporter, shared, counts, run };
}

describe('shouldSample', () => {
  const parent = (flags: number) => ({ traceId: TRACE, spanId: PARENT, traceFlags: flags });
  it('follows a parent sampled flag whatever the ratio', () => {
    expect(shouldSample(parent(TraceFlags.SAMPLED), 0, () => 0.99)).toBe(true);
    expect(shouldSample(parent(TraceFlags.NONE), 1, () => 0)).toBe(false);
  });
  it('applies the ratio to root spans', () => {
    expect(shouldSample(undefined, 0.1, () => 0.05)).toBe(true);
    expect(shouldSample(undefined, 0.1, () => 0.5)).toBe(false);
    expect(shouldSample(undefined, 0, () => 0)).toBe(false);
    expect(shouldSample(undefined, 1, () => 0.999)).toBe(true);
  });
});

describe('tracing filter', () => {
  it('continues a W3C trace, injects the new span as parent, keeps x-request-id and tracestate', () => {
    const { exporter, run } = setup();
    const s = run(stream({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=x' }), 503);
    const [span] = exporter.getFinishedSpans();
    expect(span).toBeDefined();
    expect(span!.spanContext().traceId).toBe(TRACE);
    expect(span!.parentSpanContext?.spanId).toBe(PARENT);
    expect(span!.name).toBe('svc.ns:8080/api/x');
    expect(span!.kind).toBe(SpanKind.SERVER);
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes).toMatchObject({ 'http.method': 'GET', 'http.status_code': 503, 'guid:x-request-id': 'rid-1', component: 'proxy', response_flags: '-', upstream_cluster: '-' });
    const h = s.requestHeaders;
    const sid = span!.spanContext().spanId;
    expect(h.get('traceparent')).toBe(`00-${TRACE}-${sid}-01`);
    expect(h.get('tracestate')).toBe('vendor=x');
    expect(h.get('b3')).toBe(`${TRACE}-${sid}-1`);
    expect(h.get('x-b3-traceid')).toBe(TRACE);
    expect(h.get('x-b3-spanid')).toBe(sid);
    expect(h.get('x-b3-sampled')).toBe('1');
    expect(h.get('x-request-id')).toBe('rid-1');
  });

  it('extracts B3 single header when no traceparent is present', () => {
    const { exporter, run } = setup();
    const s = run(stream({ b3: `${TRACE}-${PARENT}-1` }));
    const [span] = exporter.getFinishedSpans();
    expect(span!.parentSpanContext?.spanId).toBe(PARENT);
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    expect(s.requestHeaders.get('traceparent')).toBe(`00-${TRACE}-${span!.spanContext().spanId}-01`);
  });

  it('extracts B3 multi headers and drops the stale x-b3-parentspanid', () => {
    const { exporter, run } = setup({ propagation: ['b3-multi'] });
    const s = run(stream({ 'x-b3-traceid': TRACE, 'x-b3-spanid': PARENT, 'x-b3-parentspanid': '1111111111111111', 'x-b3-sampled': '1' }));
    const [span] = exporter.getFinishedSpans();
    expect(span!.parentSpanContext?.spanId).toBe(PARENT);
    const h = s.requestHeaders;
    expect(h.get('x-b3-spanid')).toBe(span!.spanContext().spanId);
    expect(h.has('x-b3-parentspanid')).toBe(false);
    expect(h.has('traceparent')).toBe(false);
    expect(h.has('b3')).toBe(false);
  });

  it('takes the first configured format present', () => {
    const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const { exporter, run } = setup({ propagation: ['b3', 'w3c'] });
    run(stream({ traceparent: `00-${TRACE}-${PARENT}-01`, b3: `${other}-${PARENT}-1` }));
    expect(exporter.getFinishedSpans()[0]!.spanContext().traceId).toBe(other);
  });

  it('records nothing for an unsampled parent but still propagates sampled=0 with a new span id', () => {
    const { exporter, counts, run } = setup({ sampling: 1 });
    const s = run(stream({ traceparent: `00-${TRACE}-${PARENT}-00` }));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(counts.sampled).toBe(0);
    const tp = s.requestHeaders.get('traceparent')!.split('-');
    expect(tp[1]).toBe(TRACE);
    expect(tp[2]).not.toBe(PARENT);
    expect(tp[3]).toBe('00');
    expect(s.requestHeaders.get('x-b3-sampled')).toBe('0');
  });

  it('samples a sampled parent even at ratio 0, and starts unsampled roots at ratio 0', () => {
    const { exporter, run } = setup({ sampling: 0 });
    run(stream({ traceparent: `00-${TRACE}-${PARENT}-01` }));
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    const s = run(stream());
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect(s.requestHeaders.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('adds one CLIENT child span per upstream try, with its host, timing and outcome', () => {
    const { exporter, shared } = setup();
    const s = stream();
    const f = new TracingFilter(shared);
    f.onRequestHeaders(s);
    // The router fills this in for sampled requests (the filter asked by setting it to []).
    expect(s.info.upstreamTries).toEqual([]);
    const t0 = Date.now();
    s.info.upstreamTries!.push(
      { host: '10.0.0.1:80', startTime: t0, durationMs: 5, status: 503, failure: '' },
      { host: '10.0.0.2:80', startTime: t0 + 30, durationMs: 2, status: 0, failure: 'CAPA_ERR_UPSTREAM_CONNECT' },
      { host: '10.0.0.3:80', startTime: t0 + 60, durationMs: 4, status: 200, failure: '' },
    );
    s.info.attempts = 3;
    s.info.upstreamCluster = 'backend';
    s.info.responseCode = 200;
    f.onComplete(s);
    const spans = exporter.getFinishedSpans();
    const server = spans.find((x) => x.attributes['upstream.attempts'] === 3)!;
    const tries = spans.filter((x) => x !== server);
    expect(tries.map((x) => x.attributes.upstream_address)).toEqual(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
    for (const t of tries) {
      expect(t.parentSpanContext?.spanId ?? (t as unknown as { parentSpanId?: string }).parentSpanId).toBe(server.spanContext().spanId);
      expect(t.spanContext().traceId).toBe(server.spanContext().traceId);
      expect(t.name).toBe('router backend egress');
    }
    expect(tries.map((x) => x.status.code)).toEqual([2, 2, 0]);
    expect(tries[1]!.attributes.error).toBe('CAPA_ERR_UPSTREAM_CONNECT');
  });

  it('does not ask the router to record tries for unsampled requests', () => {
    const { shared } = setup({ sampling: 0 });
    const s = stream();
    new TracingFilter(shared).onRequestHeaders(s);
    expect(s.info.upstreamTries).toBeNull();
  });

  it('drops and counts spans when the export queue is full', () => {
    const { exporter, shared, counts, run } = setup({ maxQueueSize: 1 });
    shared.backend.queued = 1;
    run(stream());
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(counts.dropped).toBe(1);
  });
});

describe('Propagator.inject', () => {
  it('writes exactly what the OpenTelemetry propagators write', async () => {
    const { ROOT_CONTEXT, trace, defaultTextMapSetter } = await import('@opentelemetry/api');
    const { W3CTraceContextPropagator, TraceState } = await import('@opentelemetry/core');
    const { B3Propagator, B3InjectEncoding } = await import('@opentelemetry/propagator-b3');
    for (const flags of [TraceFlags.SAMPLED, TraceFlags.NONE]) {
      const sc = { traceId: TRACE, spanId: PARENT, traceFlags: flags, traceState: new TraceState('a=1,b=2') };
      const h = new HeaderMap();
      new Propagator(['w3c', 'b3']).inject(h, sc);
      const want: Record<string, string> = {};
      const ctx = trace.setSpanContext(ROOT_CONTEXT, sc);
      new W3CTraceContextPropagator().inject(ctx, want, defaultTextMapSetter);
      new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }).inject(ctx, want, defaultTextMapSetter);
      new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }).inject(ctx, want, defaultTextMapSetter);
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, h.get(k.toLowerCase())]));
      expect(got).toEqual(want);
      expect(h.size).toBe(Object.keys(want).length);
    }
  });
});
