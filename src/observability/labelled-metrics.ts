/**
 * Counters and histograms with a fixed label set whose children are plain objects, for the
 * per-request path.
 *
 * prom-client's own `counter.labels(...)` child re-hashes the whole label object on every `inc`
 * / `observe` (25 labels for Istio's metrics), which costs more than the rest of the request's
 * bookkeeping. These keep one child object per label set, so an update is a field add; the
 * exposition is produced at scrape time through prom-client's Registry (`registerMetric` only
 * needs `name`, `help`, `type`, `aggregator` and `get()`), so default labels, content type and
 * the cluster AggregatorRegistry behave exactly as for prom-client's metrics.
 */
import type { Metric, Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

/** One exposed sample, in the shape prom-client's Registry formats (see prom-client's histogram). */
export interface Sample {
  value: number;
  labels: Readonly<Record<string, string | number>>;
  metricName?: string;
  sharedLabels?: Labels;
}

/** What `get()` returns: prom-client's MetricObjectWithValues (its types are not exported). */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Sample[];
}

export class CounterChild {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(v = 1): void {
    this.value += v;
  }
}

export class HistogramChild {
  sum = 0;
  count = 0;
  /** Non-cumulative count per bucket (same index as the bounds); the +Inf bucket is `count`. */
  readonly counts: Float64Array;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]! += 1;
        break;
      }
    }
    this.sum += v;
    this.count += 1;
  }
}

function toLabels(names: readonly string[], values: readonly string[]): Labels {
  if (values.length !== names.length) throw new Error(`expected ${names.length} label values, got ${values.length}`);
  const out: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[i]!;
  return Object.freeze(out);
}

abstract class LabelledMetric<C> {
  readonly aggregator = 'sum' as const;
  protected readonly children = new Map<string, C>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The child for these label values (in `labelNames` order), created on first use. Not for the hot path. */
  child(values: readonly string[]): C {
    const key = values.join('\u0001');
    let c = this.children.get(key);
    if (!c) {
      c = this.make(toLabels(this.labelNames, values));
      this.children.set(key, c);
    }
    return c;
  }

  /**
   * Zero every series (Registry.resetMetrics). Children are kept, not dropped: callers cache them,
   * and a dropped child would go on counting where no scrape sees it.
   */
  reset(): void {
    for (const c of this.children.values()) this.zero(c);
  }

  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  protected abstract make(labels: Labels): C;
  protected abstract zero(child: C): void;
}

export class LabelledCounter extends LabelledMetric<CounterChild> {
  readonly type = 'counter' as const;

  protected make(labels: Labels): CounterChild {
    return new CounterChild(labels);
  }

  protected zero(c: CounterChild): void {
    c.value = 0;
  }

  async get(): Promise<MetricSnapshot> {
    const values: Sample[] = [];
    for (const c of this.children.values()) values.push({ value: c.value, labels: c.labels });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class LabelledHistogram extends LabelledMetric<HistogramChild> {
  readonly type = 'histogram' as const;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    }
  }

  protected make(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this.buckets);
  }

  protected zero(c: HistogramChild): void {
    c.counts.fill(0);
    c.sum = 0;
    c.count = 0;
  }

  async get(): Promise<MetricSnapshot> {
    const bucketName = `${this.name}_bucket`;
    const values: Sample[] = [];
    // `sharedLabels` is how prom-client's own histogram hands over the child's labels: the
    // registry formats each shared object once (cached by identity).
    for (const c of this.children.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += c.counts[i]!;
        values.push({ metricName: bucketName, labels: { le: this.buckets[i]! }, sharedLabels: c.labels, value: acc });
      }
      values.push({ metricName: bucketName, labels: { le: '+Inf' }, sharedLabels: c.labels, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: {}, sharedLabels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: {}, sharedLabels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
