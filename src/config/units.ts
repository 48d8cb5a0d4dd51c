/**
 * Human units in the YAML: durations ("250ms", "10s", "1.5s", "1m", "1h", "1m30s") become
 * milliseconds and sizes ("64KiB", "1MiB", 1024) become bytes. Envoy's JSON form of a
 * Duration ("1.5s") is one of the accepted spellings, so pasted Envoy config reads the same.
 */
import { z } from 'zod';

export const DURATION_HINT = 'expected a duration such as "250ms" or "10s"';
export const SIZE_HINT = 'expected a size such as "64KiB", "1MiB" or a number of bytes';

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)/y;

/** Milliseconds in a duration string; throws on anything else. Fractions round to the nearest ms. */
export function parseDuration(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new Error(`${DURATION_HINT}, got ${JSON.stringify(text)}`);
  return ms;
}

/** Like parseDuration, but undefined instead of throwing. */
export function tryParseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (s === '0') return 0;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  let at = 0;
  while (at < s.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (DURATION_UNITS[m[2]!] ?? 0);
    at = DURATION_PART.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  ki: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/** Bytes in a size ("64KiB", "1MiB", "1.5KiB", "100kB", 1024); throws on anything else. */
export function parseSize(value: string | number): number {
  const n = tryParseSize(value);
  if (n === undefined) throw new Error(`${SIZE_HINT}, got ${JSON.stringify(value)}`);
  return n;
}

/** Like parseSize, but undefined instead of throwing. */
export function tryParseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (!m) return undefined;
  const mult = SIZE_UNITS[m[2]!.toLowerCase()];
  if (mult === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * mult);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** zod: a duration string → milliseconds. */
export const durationMs = z.unknown().transform((v, ctx): number => {
  const ms = typeof v === 'string' ? tryParseDuration(v) : undefined;
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `${DURATION_HINT}, got ${describe(v)}` });
    return z.NEVER;
  }
  return ms;
});

/** zod: a size string or a byte count → bytes. */
export const sizeBytes = z.unknown().transform((v, ctx): number => {
  const n = typeof v === 'string' || typeof v === 'number' ? tryParseSize(v) : undefined;
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `${SIZE_HINT}, got ${describe(v)}` });
    return z.NEVER;
  }
  return n;
});

/** Short description of a bad input value for messages. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
