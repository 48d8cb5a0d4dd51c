/**
 * HPACK (src/h2/hpack.ts) against RFC 7541's own examples (Appendix C) and round trips; the
 * real clients (grpc-js, nghttp2's h2load, node:http2) exercise it in the runtime gRPC suites.
 */
import { describe, expect, it } from 'vitest';
import { HpackDecoder, encodeHeaders, huffmanCodes, huffmanDecode, huffmanEncode } from '../../../src/h2/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (flat: string[]): [string, string][] => flat.flatMap((_, i) => (i % 2 === 0 ? [[flat[i]!, flat[i + 1]!] as [string, string]] : []));

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('is a complete prefix code: lengths satisfy Kraft equality and codes match spot checks from the RFC', () => {
    const codes = huffmanCodes();
    expect(codes).toHaveLength(257);
    expect(codes.reduce((s, [, len]) => s + 2 ** -len, 0)).toBeCloseTo(1, 12);
    expect(codes[48]).toEqual([0x0, 5]); // '0'
    expect(codes[97]).toEqual([0x3, 5]); // 'a'
    expect(codes[32]).toEqual([0x14, 6]); // ' '
    expect(codes[256]).toEqual([0x3fffffff, 30]); // EOS
  });

  it('decodes the RFC example "www.example.com" and "no-cache", and round-trips every octet', () => {
    const www = hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff');
    expect(huffmanDecode(www, 0, www.length)).toBe('www.example.com');
    expect(huffmanEncode('www.example.com')).toEqual(www);
    const nc = hex('a8eb 1064 9cbf');
    expect(huffmanDecode(nc, 0, nc.length)).toBe('no-cache');
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const enc = huffmanEncode(all);
    expect(huffmanDecode(enc, 0, enc.length)).toBe(all);
  });

  it('rejects padding that is not all ones or longer than 7 bits', () => {
    expect(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe'), 0, 12)).toThrow(/padding/);
    expect(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff ff'), 0, 13)).toThrow(/padding|EOS/);
  });
});

describe('HpackDecoder', () => {
  it('decodes the RFC C.3 request sequence (no Huffman) with the dynamic table carried across blocks', () => {
    const d = new HpackDecoder();
    expect(pairs(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')))).toEqual([
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'],
    ]);
    expect(pairs(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')))).toEqual([
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
    ]);
    expect(pairs(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')))).toEqual([
      [':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value'],
    ]);
  });

  it('decodes the RFC C.4 request sequence (Huffman)', () => {
    const d = new HpackDecoder();
    expect(pairs(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')))[3]).toEqual([':authority', 'www.example.com']);
    expect(pairs(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf')))[4]).toEqual(['cache-control', 'no-cache']);
    expect(pairs(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')))[4]).toEqual(['custom-key', 'custom-value']);
  });

  it('evicts by size and honours a table size update, refusing one above the announced maximum', () => {
    const d = new HpackDecoder(64);
    // custom-key: custom-value is 32+10+12 = 54 octets; a second one evicts the first.
    d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'));
    expect(pairs(d.decode(hex('be')))).toEqual([['custom-key', 'custom-value']]);
    d.decode(hex('4003 6162 6303 7879 7a')); // abc: xyz (38 octets) evicts it
    expect(pairs(d.decode(hex('be')))).toEqual([['abc', 'xyz']]);
    expect(() => d.decode(hex('bf'))).toThrow(/beyond the table/);
    expect(pairs(d.decode(hex('20 82')))).toEqual([[':method', 'GET']]); // size 0 empties it
    expect(() => d.decode(hex('be'))).toThrow(/beyond the table/);
    expect(() => d.decode(hex('3f 22'))).toThrow(/exceeds/); // 31 + 34 = 65 > 64
    expect(() => d.decode(hex('82 20'))).toThrow(/after a header field/);
  });

  it('rejects index 0, truncated strings and oversized integers', () => {
    const d = new HpackDecoder();
    expect(() => d.decode(hex('80'))).toThrow(/index 0/);
    expect(() => d.decode(hex('400a 6375'))).toThrow(/truncated/);
    expect(() => d.decode(hex('ff ff ff ff ff ff 7f'))).toThrow(/too large/);
  });
});

describe('encodeHeaders', () => {
  it('uses one byte for a full static match, the static name index otherwise, and decodes back', () => {
    const block = encodeHeaders([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']]);
    expect(block[0]).toBe(0x88);
    expect(block[1]).toBe(0x0f); // literal without indexing, name index 31 (4-bit prefix 15 + 16)
    expect(pairs(new HpackDecoder().decode(block))).toEqual([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']]);
    const long = 'x'.repeat(300);
    expect(pairs(new HpackDecoder().decode(encodeHeaders([['x-long', long]])))).toEqual([['x-long', long]]);
  });
});
