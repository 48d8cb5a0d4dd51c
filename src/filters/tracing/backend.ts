/**
 * One tracer provider per distinct exporter setup, shared by every listener (and every Snapshot)
 * that configures it, reference-counted and shut down (flushing its queue) with the last user.
 * Spans go through a BatchSpanProcessor; the queue length is tracked here so a full queue drops
 * the span before it reaches the processor, counted by the filter, and nothing ever waits.
 */
import type { ExportResult } from '@opentelemetry/core';
import type * as OtlpProto from '@opentelemetry/exporter-trace-otlp-proto';
import type * as Zipkin from '@opentelemetry/exporter-zipkin';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkTrace from '@opentelemetry/sdk-trace-base';
import type { BasicTracerProvider, ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { lazy } from '../../lazy.js';

// The SDK and exporters load when the first tracing filter is built (lazy.ts): ~6 MB otherwise.
export const sdkTrace = lazy<typeof SdkTrace>('@opentelemetry/sdk-trace-base');
const otlpProto = lazy<typeof OtlpProto>('@opentelemetry/exporter-trace-otlp-proto');
const zipkin = lazy<typeof Zipkin>('@opentelemetry/exporter-zipkin');
const resources = lazy<typeof Resources>('@opentelemetry/resources');
import type { Tracer } from '@opentelemetry/api';
import type { TracingConfig } from './config.js';

export interface TracingBackend {
  readonly tracer: Tracer;
  readonly maxQueueSize: number;
  /** Spans ended and waiting in the batch queue. */
  queued: number;
}

interface Entry {
  backend: TracingBackend;
  provider: BasicTracerProvider;
  refs: number;
}

const backends = new Map<string, Entry>();

/** Takes the spans out of the count as the batch processor hands them to the exporter. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly backend: TracingBackend,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.backend.queued = Math.max(0, this.backend.queued - spans.length);
    this.inner.export(spans, done);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function exporterFor(cfg: TracingConfig, serviceName: string): SpanExporter {
  const e = cfg.exporter;
  if (e.kind === 'zipkin') return new (zipkin().ZipkinExporter)({ url: e.endpoint, serviceName });
  return new (otlpProto().OTLPTraceExporter)({ url: e.endpoint, timeoutMillis: e.timeoutMs });
}

export interface BackendLease {
  readonly backend: TracingBackend;
  release(): void;
}

/** The shared backend for this exporter setup; `release()` once when done with it. */
export function acquireBackend(cfg: TracingConfig, serviceName: string): BackendLease {
  const key = JSON.stringify([cfg.exporter, serviceName, cfg.maxQueueSize, cfg.maxExportBatchSize, cfg.batchTimeoutMs]);
  let entry = backends.get(key);
  if (entry === undefined) {
    const backend: { tracer: Tracer | null; maxQueueSize: number; queued: number } = { tracer: null, maxQueueSize: cfg.maxQueueSize, queued: 0 };
    const processor = new (sdkTrace().BatchSpanProcessor)(new CountingExporter(exporterFor(cfg, serviceName), backend as TracingBackend), {
      maxQueueSize: cfg.maxQueueSize,
      maxExportBatchSize: cfg.maxExportBatchSize,
      scheduledDelayMillis: cfg.batchTimeoutMs,
      exportTimeoutMillis: cfg.exporter.timeoutMs,
    });
    const provider = new (sdkTrace().BasicTracerProvider)({
      resource: resources().resourceFromAttributes({ 'service.name': serviceName }),
      // Sampling is decided by the filter (unsampled requests never reach the SDK).
      sampler: new (sdkTrace().AlwaysOnSampler)(),
      spanProcessors: [processor],
    });
    backend.tracer = provider.getTracer('capa-runtime');
    entry = { backend: backend as TracingBackend, provider, refs: 0 };
    backends.set(key, entry);
  }
  entry.refs++;
  const e = entry;
  let released = false;
  return {
    backend: e.backend,
    release: () => {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      backends.delete(key);
      void e.provider.shutdown().catch(() => {});
    },
  };
}

/** Flush every live backend's queue (tests, graceful shutdown). */
export async function flushTracing(): Promise<void> {
  await Promise.all([...backends.values()].map((e) => e.provider.forceFlush().catch(() => {})));
}
