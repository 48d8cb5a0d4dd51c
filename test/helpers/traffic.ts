/**
 * Helpers for routing / load-balancing tests: requests from a chosen loopback source address,
 * running many requests with bounded concurrency and tallying a response attribute, and reading
 * istio_requests_total from the admin server's /stats/prometheus.
 */
import { request, waitFor, type Reply, type RequestOptions } from './http.js';

/** Like request(), with an optional local (source) address such as 127.0.0.2. */
export function requestFrom(port: number, localAddress: string, opts: RequestOptions = {}): Promise<Reply> {
  return request(port, { ...opts, localAddress });
}

/** Run `n` calls of `fn(i)` with at most `concurrency` in flight; results in call order. */
export async function runMany<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, () => worker()));
  return out;
}

/** Count occurrences of each key. */
export function tally(keys: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** GET a path on the admin server. */
export function admin(adminPort: number, path: string): Promise<Reply> {
  return request(adminPort, { path });
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Samples of one metric family in Prometheus text format. */
export function parseSamples(text: string, metric: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const brace = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    let valuePart = line.slice(metric.length).trim();
    if (brace === metric.length && close > brace) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      const body = line.slice(brace + 1, close);
      let m: RegExpExecArray | null;
      while ((m = re.exec(body)) !== null) labels[m[1]!] = m[2]!;
      valuePart = line.slice(close + 1).trim();
    }
    out.push({ labels, value: Number(valuePart.split(/\s+/)[0]) });
  }
  return out;
}

/** istio_requests_total samples from the admin server. */
export async function requestsTotal(adminPort: number): Promise<Sample[]> {
  const r = await admin(adminPort, '/stats/prometheus');
  if (r.status !== 200) throw new Error(`/stats/prometheus answered ${r.status}`);
  return parseSamples(r.body, 'istio_requests_total');
}

/** Sum of istio_requests_total over the samples whose labels pass `pred`. */
export async function countRequests(adminPort: number, pred: (labels: Record<string, string>) => boolean): Promise<number> {
  let n = 0;
  for (const s of await requestsTotal(adminPort)) if (pred(s.labels)) n += s.value;
  return n;
}

/** True when a response_flags label value contains `flag` (Envoy joins several with ','). */
export function hasFlag(labels: Record<string, string>, flag: string): boolean {
  return (labels.response_flags ?? '').split(',').includes(flag);
}

/** Wait until the count for `pred` reached at least `atLeast`; returns the count. */
export async function waitForCount(adminPort: number, pred: (labels: Record<string, string>) => boolean, atLeast: number, timeoutMs = 3000): Promise<number> {
  let n = 0;
  try {
    await waitFor(async () => (n = await countRequests(adminPort, pred)) >= atLeast, timeoutMs, 25);
  } catch {
    /* the caller's assertion reports the count */
  }
  return n;
}
