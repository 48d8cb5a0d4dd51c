/** A small Prometheus text-format reader for assertions on /stats/prometheus. */

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export function parseProm(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of every series of `name` whose labels include `match`. */
export function sumOf(text: string, name: string, match: Readonly<Record<string, string>> = {}): number {
  return parseProm(text)
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** The series of `name` whose labels include `match` (for failure messages). */
export function seriesOf(text: string, name: string, match: Readonly<Record<string, string>> = {}): PromSample[] {
  return parseProm(text).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}
