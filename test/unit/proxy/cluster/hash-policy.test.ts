import { describe, expect, it } from 'vitest';
import type { HashPolicySpec } from '../../../../src/config/snapshot.js';
import { computeHash, cookieValue, hashString, queryParamValue } from '../../../../src/proxy/cluster/index.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';

function req(headers: Record<string, string>, path = '/', sourceIp = '10.1.2.3') {
  return { headers: HeaderMap.from(headers), path, sourceIp };
}

describe('hashString', () => {
  it('is deterministic, unsigned 32-bit and seed dependent', () => {
    const h = hashString('hello');
    expect(h).toBe(hashString('hello'));
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
    expect(hashString('hello', 1)).not.toBe(h);
    expect(hashString('hellp')).not.toBe(h);
    expect(hashString('')).toBe(0);
  });

  it('matches MurmurHash3 x86_32 for one-unit and two-unit strings', () => {
    // Murmur3_32 of the UTF-16LE bytes: "a" = 61 00, "ab" = 61 00 62 00 (reference values
    // computed from the little-endian byte form of the same blocks).
    expect(hashString('a')).toBe(murmurBytes([0x61, 0x00]));
    expect(hashString('ab')).toBe(murmurBytes([0x61, 0x00, 0x62, 0x00]));
    expect(hashString('abc')).toBe(murmurBytes([0x61, 0x00, 0x62, 0x00, 0x63, 0x00]));
  });
});

/** A straightforward byte-wise Murmur3_32 reference. */
function murmurBytes(bytes: number[], seed = 0): number {
  let h = seed >>> 0;
  const n = bytes.length;
  let i = 0;
  const mixK = (k: number) => Math.imul(((Math.imul(k, 0xcc9e2d51) << 15) | (Math.imul(k, 0xcc9e2d51) >>> 17)), 0x1b873593);
  for (; i + 4 <= n; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= mixK(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const rem = n - i;
  if (rem >= 3) k ^= bytes[i + 2]! << 16;
  if (rem >= 2) k ^= bytes[i + 1]! << 8;
  if (rem >= 1) {
    k ^= bytes[i]!;
    h ^= mixK(k);
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe('cookie and query parsing', () => {
  it('finds cookie values', () => {
    expect(cookieValue('a=1; session=xyz; b=2', 'session')).toBe('xyz');
    expect(cookieValue('a=1;session="q"', 'session')).toBe('q');
    expect(cookieValue('xsession=1; session2=2', 'session')).toBeUndefined();
    expect(cookieValue('', 'a')).toBeUndefined();
  });
  it('finds query parameters (raw)', () => {
    expect(queryParamValue('/p?a=1&user=bob%20x&c', 'user')).toBe('bob%20x');
    expect(queryParamValue('/p?a=1&c', 'c')).toBe('');
    expect(queryParamValue('/p?ab=1', 'a')).toBeUndefined();
    expect(queryParamValue('/p', 'a')).toBeUndefined();
    expect(queryParamValue('/p?a=1#x=2', 'x')).toBeUndefined();
  });
});

describe('computeHash', () => {
  const header: HashPolicySpec = { kind: 'header', name: 'X-User', terminal: false };
  const cookie: HashPolicySpec = { kind: 'cookie', name: 'sid', terminal: false };
  const source: HashPolicySpec = { kind: 'sourceIp', terminal: false };
  const query: HashPolicySpec = { kind: 'queryParameter', name: 'u', terminal: false };

  it('hashes a header value', () => {
    expect(computeHash([header], req({ 'x-user': 'alice' }))).toBe(hashString('alice'));
    expect(computeHash([header], req({}))).toBeUndefined();
  });
  it('hashes a cookie value', () => {
    expect(computeHash([cookie], req({ cookie: 'a=b; sid=42' }))).toBe(hashString('42'));
    expect(computeHash([cookie], req({ cookie: 'a=b' }))).toBeUndefined();
  });
  it('hashes the source IP', () => {
    expect(computeHash([source], req({}, '/', '192.168.0.9'))).toBe(hashString('192.168.0.9'));
    expect(computeHash([source], req({}, '/', ''))).toBeUndefined();
  });
  it('hashes a query parameter', () => {
    expect(computeHash([query], req({}, '/x?u=carol'))).toBe(hashString('carol'));
  });
  it('combines policies as rotl(hash, 1) ^ h', () => {
    const a = hashString('alice');
    const b = hashString('42');
    const expected = (((a << 1) | (a >>> 31)) ^ b) >>> 0;
    expect(computeHash([header, cookie], req({ 'x-user': 'alice', cookie: 'sid=42' }))).toBe(expected);
    // Missing values are skipped.
    expect(computeHash([header, query, cookie], req({ 'x-user': 'alice', cookie: 'sid=42' }))).toBe(expected);
  });
  it('stops at a terminal policy once a hash exists', () => {
    const term: HashPolicySpec = { kind: 'header', name: 'x-user', terminal: true };
    const r = req({ 'x-user': 'alice', cookie: 'sid=42' });
    expect(computeHash([term, cookie], r)).toBe(hashString('alice'));
    // A terminal policy with no value does not stop the chain.
    expect(computeHash([term, cookie], req({ cookie: 'sid=42' }))).toBe(hashString('42'));
  });
});
