/**
 * HeaderMap: an ordered multimap of lower-cased header names, stored flat
 * ([name0, value0, name1, value1, ...]) as it came off the wire. Envoy lower-cases every header
 * name on HTTP/1 as well; we do the same, so lookups are a plain string compare.
 * A dozen headers fit in one small array; a linear scan beats a Map at that size.
 */
export class HeaderMap {
  /** Flat [name, value, ...]; names are lower-case. Exposed for the codecs only. */
  readonly kv: string[];

  constructor(kv: string[] = []) {
    this.kv = kv;
  }

  static from(obj: Record<string, string | readonly string[]>): HeaderMap {
    const kv: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      const name = k.toLowerCase();
      if (typeof v === 'string') kv.push(name, v);
      else for (const x of v) kv.push(name, x);
    }
    return new HeaderMap(kv);
  }

  get size(): number {
    return this.kv.length >> 1;
  }

  /** First value of `name` (lower-case), or undefined. */
  get(name: string): string | undefined {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) return kv[i + 1];
    return undefined;
  }

  has(name: string): boolean {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) return true;
    return false;
  }

  getAll(name: string): string[] {
    const out: string[] = [];
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) if (kv[i] === name) out.push(kv[i + 1]!);
    return out;
  }

  /** Replace every value of `name` with one value (name must be lower-case). */
  set(name: string, value: string): void {
    const kv = this.kv;
    let found = false;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i] !== name) continue;
      if (!found) {
        kv[i + 1] = value;
        found = true;
      } else {
        kv.splice(i, 2);
        i -= 2;
      }
    }
    if (!found) kv.push(name, value);
  }

  add(name: string, value: string): void {
    this.kv.push(name, value);
  }

  /** Remove every value of `name`; returns how many were removed. */
  remove(name: string): number {
    const kv = this.kv;
    let n = 0;
    for (let i = 0; i < kv.length; i += 2) {
      if (kv[i] === name) {
        kv.splice(i, 2);
        i -= 2;
        n++;
      }
    }
    return n;
  }

  forEach(fn: (name: string, value: string) => void): void {
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) fn(kv[i]!, kv[i + 1]!);
  }

  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    const kv = this.kv;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      o[k] = o[k] === undefined ? kv[i + 1]! : `${o[k]}, ${kv[i + 1]}`;
    }
    return o;
  }

  clone(): HeaderMap {
    return new HeaderMap(this.kv.slice());
  }
}
