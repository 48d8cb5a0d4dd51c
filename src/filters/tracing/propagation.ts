/**
 * Trace context in and out of a HeaderMap: W3C traceparent/tracestate and B3 (single `b3`
 * header and multi `x-b3-*`). Extraction takes the first configured format present on the
 * request; injection writes every configured format, replacing what came in.
 */
import { ROOT_CONTEXT, TraceFlags, trace, type Context, type SpanContext, type TextMapGetter, type TextMapPropagator } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import type { HeaderMap } from '../../proxy/headers.js';
import type { Propagation } from './config.js';

const getter: TextMapGetter<HeaderMap> = {
  get: (h, key) => h.get(key.toLowerCase()),
  keys: (h) => {
    const out: string[] = [];
    for (let i = 0; i < h.kv.length; i += 2) out.push(h.kv[i]!);
    return out;
  },
};

const w3c = new W3CTraceContextPropagator();
/** Extracts either B3 encoding (single header first). */
const b3Extract = new B3Propagator();
/** Markers for the encodings injected (inject() writes the headers itself). */
const b3Single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });
const b3Multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });

interface Format {
  present(h: HeaderMap): boolean;
  extractor: TextMapPropagator;
  injectors: readonly TextMapPropagator[];
  /** Headers of this format that injection does not rewrite and that would be stale. */
  stale: readonly string[];
}

const hasB3 = (h: HeaderMap): boolean => h.has('b3') || h.has('x-b3-traceid');

const FORMATS: Record<Propagation, Format> = {
  w3c: { present: (h) => h.has('traceparent'), extractor: w3c, injectors: [w3c], stale: [] },
  b3: { present: hasB3, extractor: b3Extract, injectors: [b3Single, b3Multi], stale: ['x-b3-parentspanid'] },
  'b3-single': { present: hasB3, extractor: b3Extract, injectors: [b3Single], stale: [] },
  'b3-multi': { present: hasB3, extractor: b3Extract, injectors: [b3Multi], stale: ['x-b3-parentspanid'] },
};

export class Propagator {
  private readonly formats: readonly Format[];
  private readonly stale: readonly string[];
  private readonly w3c: boolean;
  private readonly b3Single: boolean;
  private readonly b3Multi: boolean;

  constructor(names: readonly Propagation[]) {
    this.formats = names.map((n) => FORMATS[n]);
    const injectors = new Set(this.formats.flatMap((f) => f.injectors));
    this.w3c = injectors.has(w3c);
    this.b3Single = injectors.has(b3Single);
    this.b3Multi = injectors.has(b3Multi);
    this.stale = [...new Set(this.formats.flatMap((f) => f.stale))];
  }

  /** The parent span context of the first configured format present and valid, or undefined. */
  extract(h: HeaderMap): SpanContext | undefined {
    for (const f of this.formats) {
      if (!f.present(h)) continue;
      const sc = trace.getSpanContext(f.extractor.extract(ROOT_CONTEXT, h, getter));
      if (sc !== undefined && trace.isSpanContextValid(sc)) return sc;
    }
    return undefined;
  }

  /** Context carrying `sc` as the (remote) parent, for Tracer.startSpan. */
  static parentContext(sc: SpanContext | undefined): Context {
    return sc === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, sc);
  }

  /**
   * Write `sc` into `h` in every configured format. Written by hand (the same strings the OTel
   * propagators produce, which the unit tests check): this runs on every request, sampled or not.
   */
  inject(h: HeaderMap, sc: SpanContext): void {
    for (const name of this.stale) h.remove(name);
    const sampled = (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
    if (this.w3c) {
      h.set('traceparent', `00-${sc.traceId}-${sc.spanId}-${sampled ? '01' : '00'}`);
      if (sc.traceState !== undefined) {
        const ts = sc.traceState.serialize();
        if (ts !== '') h.set('tracestate', ts);
      }
    }
    if (this.b3Single) h.set('b3', `${sc.traceId}-${sc.spanId}-${sampled ? '1' : '0'}`);
    if (this.b3Multi) {
      h.set('x-b3-traceid', sc.traceId);
      h.set('x-b3-spanid', sc.spanId);
      h.set('x-b3-sampled', sampled ? '1' : '0');
    }
  }
}
