/**
 * capa.filters.http.tracing.v1.Tracing: sampling ratio for root spans, propagation formats
 * (extract the first present, inject all), and one exporter (OTLP/HTTP protobuf or Zipkin v2
 * JSON) fed by a bounded batch queue.
 */
import { z } from 'zod';
import { durationMs } from '../../config/units.js';

export const PROPAGATIONS = ['w3c', 'b3', 'b3-single', 'b3-multi'] as const;
export type Propagation = (typeof PROPAGATIONS)[number];

const endpoint = (url: string) => z.strictObject({ endpoint: z.url().default(url), timeout: durationMs.optional() });

/** Exactly one of otlp / zipkin (an object rather than a union, so errors name the field). */
const exporterSchema = z
  .strictObject({
    otlp: endpoint('http://127.0.0.1:4318/v1/traces').optional(),
    zipkin: endpoint('http://127.0.0.1:9411/api/v2/spans').optional(),
  })
  .refine((e) => (e.otlp === undefined) !== (e.zipkin === undefined), { message: 'exporter needs exactly one of otlp or zipkin' });

export const tracingConfigSchema = z
  .strictObject({
    '@type': z.string().optional(),
    /** Share of root spans sampled, 0..1; a parent's sampled flag always wins. */
    sampling: z.number().min(0).max(1).default(1),
    propagation: z.array(z.enum(PROPAGATIONS)).min(1).default(['w3c', 'b3']),
    exporter: exporterSchema.default({ otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' } }),
    /** Defaults to the node's canonical service (the app id when unset). */
    serviceName: z.string().min(1).optional(),
    maxQueueSize: z.number().int().min(1).default(2048),
    maxExportBatchSize: z.number().int().min(1).default(512),
    batchTimeout: durationMs.default(1000),
  })
  .transform((c) => {
    const e = c.exporter;
    const exporter =
      e.otlp !== undefined
        ? { kind: 'otlp' as const, endpoint: e.otlp.endpoint, timeoutMs: e.otlp.timeout ?? 10_000 }
        : { kind: 'zipkin' as const, endpoint: e.zipkin!.endpoint, timeoutMs: e.zipkin!.timeout ?? 10_000 };
    return {
      sampling: c.sampling,
      propagation: [...new Set(c.propagation)],
      exporter,
      serviceName: c.serviceName ?? null,
      maxQueueSize: c.maxQueueSize,
      maxExportBatchSize: Math.min(c.maxExportBatchSize, c.maxQueueSize),
      batchTimeoutMs: c.batchTimeout,
    };
  });

export type TracingConfig = Readonly<z.output<typeof tracingConfigSchema>>;
