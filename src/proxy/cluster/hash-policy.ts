/**
 * Route hash policies (Envoy RouteAction.hash_policy) → one 32-bit hash for RING_HASH / MAGLEV.
 *
 * Envoy hashes with 64-bit xxHash; a JS number cannot hold 64 bits exactly, so we use
 * MurmurHash3 (x86, 32-bit) over the string's UTF-16 code units (two units per 32-bit block, no
 * encoding step, no allocation). Values are therefore consistent between capa-runtime
 * instances, not with Envoy's.
 *
 * Combination follows Envoy's HashPolicyImpl::generateHash: each policy that yields a value
 * is mixed in as `hash = rotl(hash, 1) ^ h`; when a policy is `terminal` and a hash exists by
 * then (from it or an earlier policy), the remaining policies are skipped.
 */
import type { HashPolicySpec } from '../../config/snapshot.js';

export interface HashableRequest {
  readonly headers: { get(name: string): string | undefined };
  readonly sourceIp: string;
  /** Path with query string, as received. */
  readonly path: string;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3 x86_32 of the UTF-16 code units of `s`; unsigned 32-bit result. */
export function hashString(s: string, seed = 0): number {
  let h = seed | 0;
  const len = s.length;
  const blocks = len & ~1;
  let k: number;
  for (let i = 0; i < blocks; i += 2) {
    k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (len & 1) {
    k = s.charCodeAt(len - 1);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Murmur3's 32-bit finaliser: a cheap bijective mix of an integer (used for Maglev retries). */
export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Value of cookie `name` in a Cookie header ("a=1; b=2"), or undefined. */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  const len = header.length;
  while (start < len) {
    let end = header.indexOf(';', start);
    if (end < 0) end = len;
    while (start < end && header.charCodeAt(start) === 32) start++;
    const eq = header.indexOf('=', start);
    if (eq > 0 && eq < end && eq - start === name.length && header.startsWith(name, start)) {
      let vEnd = end;
      while (vEnd > eq + 1 && header.charCodeAt(vEnd - 1) === 32) vEnd--;
      let v = header.slice(eq + 1, vEnd);
      if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}

/** Raw (not percent-decoded, as Envoy) value of query parameter `name` in `path`, or undefined. */
export function queryParamValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  let start = q + 1;
  let stop = path.indexOf('#', start);
  if (stop < 0) stop = path.length;
  while (start < stop) {
    let end = path.indexOf('&', start);
    if (end < 0 || end > stop) end = stop;
    const eq = path.indexOf('=', start);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (keyEnd - start === name.length && path.startsWith(name, start)) {
      return keyEnd === end ? '' : path.slice(eq + 1, end);
    }
    start = end + 1;
  }
  return undefined;
}

function evaluate(p: HashPolicySpec, req: HashableRequest): string | undefined {
  switch (p.kind) {
    case 'header':
      return req.headers.get(p.name.toLowerCase());
    case 'cookie': {
      const c = req.headers.get('cookie');
      return c === undefined ? undefined : cookieValue(c, p.name);
    }
    case 'sourceIp':
      return req.sourceIp === '' ? undefined : req.sourceIp;
    case 'queryParameter':
      return queryParamValue(req.path, p.name);
  }
}

/** The request hash for RING_HASH / MAGLEV, or undefined when no policy produced a value. */
export function computeHash(policies: readonly HashPolicySpec[], req: HashableRequest): number | undefined {
  let hash: number | undefined;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i]!;
    const v = evaluate(p, req);
    if (v !== undefined) {
      const h = hashString(v);
      hash = hash === undefined ? h : (((hash << 1) | (hash >>> 31)) ^ h) >>> 0;
    }
    if (p.terminal && hash !== undefined) break;
  }
  return hash;
}
