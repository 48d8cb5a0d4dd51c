/**
 * Tracing (capa.filters.http.tracing): one span per request, as every Istio sidecar hop makes —
 * kind SERVER on INBOUND listeners, CLIENT on OUTBOUND — named `<authority><path>`, child of the
 * trace context the request carried, and injected back into the request headers so the upstream
 * sees this span as its parent. Sampling: the parent's sampled flag wins; root spans are sampled
 * at the configured ratio. Unsampled requests get a non-recording span (fresh span id, flag 0)
 * and never touch the SDK.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Span, type SpanContext } from '@opentelemetry/api';
import type { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import type { HttpFilter, HttpStream } from '../types.js';
import type { TracingBackend } from './backend.js';
import { Propagator } from './propagation.js';

export interface TracingShared {
  readonly backend: TracingBackend;
  readonly propagator: Propagator;
  readonly sampling: number;
  readonly kind: SpanKind;
  readonly nodeId: string;
  readonly ids: Pick<RandomIdGenerator, 'generateTraceId' | 'generateSpanId'>;
  readonly random: () => number;
  readonly dropped: { inc(): void };
  readonly sampled: { inc(): void };
}

/** Root-span decision; `parent` decides when there is one. */
export function shouldSample(parent: SpanContext | undefined, ratio: number, random: () => number): boolean {
  if (parent !== undefined) return (parent.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
  return ratio >= 1 || (ratio > 0 && random() < ratio);
}

function operationName(s: HttpStream): string {
  const q = s.path.indexOf('?');
  return s.authority + (q < 0 ? s.path : s.path.slice(0, q));
}

export class TracingFilter implements HttpFilter {
  private span: Span | null = null;

  constructor(private readonly shared: TracingShared) {}

  onRequestHeaders(s: HttpStream): 'continue' {
    const sh = this.shared;
    const parent = sh.propagator.extract(s.requestHeaders);
    let span: Span;
    if (shouldSample(parent, sh.sampling, sh.random)) {
      span = sh.backend.tracer.startSpan(
        operationName(s),
        {
          kind: sh.kind,
          startTime: s.info.startTime > 0 ? s.info.startTime : undefined,
          attributes: {
            node_id: sh.nodeId,
            component: 'proxy',
            'guid:x-request-id': s.info.requestId || (s.requestHeaders.get('x-request-id') ?? ''),
            'http.method': s.method,
            'http.url': `http://${s.authority}${s.path}`,
            'http.protocol': s.info.protocol,
            user_agent: s.info.userAgent || '-',
          },
        },
        Propagator.parentContext(parent),
      );
    } else {
      span = trace.wrapSpanContext({
        traceId: parent?.traceId ?? sh.ids.generateTraceId(),
        spanId: sh.ids.generateSpanId(),
        traceFlags: TraceFlags.NONE,
        traceState: parent?.traceState,
      });
    }
    this.span = span;
    // Sampled: ask the router to record each upstream try for the child spans.
    if (span.isRecording()) s.info.upstreamTries = [];
    sh.propagator.inject(s.requestHeaders, span.spanContext());
    return 'continue';
  }

  onComplete(s: HttpStream): void {
    const span = this.span;
    if (span === null || !span.isRecording()) return;
    this.span = null;
    const info = s.info;
    const status = info.responseCode;
    span.setAttributes({
      'http.status_code': status,
      response_flags: info.responseFlags || '-',
      request_size: info.bytesReceived,
      response_size: info.bytesSent,
      upstream_cluster: info.upstreamCluster || '-',
      'upstream_cluster.name': info.upstreamCluster || '-',
      'peer.address': info.downstreamRemoteAddress,
    });
    if (info.attempts > 1) span.setAttribute('upstream.attempts', info.attempts);
    if (status >= 500 || status === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: info.responseCodeDetails || undefined });
    const b = this.shared.backend;
    if (b.queued >= b.maxQueueSize) {
      // Export queue full: the span is not ended (so never queued) and is counted as dropped.
      this.shared.dropped.inc();
      return;
    }
    b.queued++;
    this.shared.sampled.inc();
    const tries = info.upstreamTries;
    if (tries !== null && tries.length > 0) {
      // One CLIENT child span per upstream try, with its real timing, host and outcome.
      const ctx = trace.setSpan(ROOT_CONTEXT, span);
      const name = `router ${info.upstreamCluster || '-'} egress`;
      b.queued += tries.length;
      for (let i = 0; i < tries.length; i++) {
        const t = tries[i]!;
        const child = this.shared.backend.tracer.startSpan(
          name,
          {
            kind: SpanKind.CLIENT,
            startTime: t.startTime,
            attributes: { upstream_address: t.host, upstream_cluster: info.upstreamCluster || '-', 'http.status_code': t.status, attempt: i + 1, ...(t.failure ? { error: t.failure } : {}) },
          },
          ctx,
        );
        if (t.failure !== '' || t.status >= 500) child.setStatus({ code: SpanStatusCode.ERROR, message: t.failure || undefined });
        child.end(t.startTime + t.durationMs);
      }
    }
    span.end(info.durationMs > 0 && info.startTime > 0 ? info.startTime + info.durationMs : undefined);
  }
}
