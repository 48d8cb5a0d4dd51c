import { describe, expect, it } from 'vitest';
import { CHUNK_END, ChunkedDecoder, LAST_CHUNK, encodeChunkHeader, lastChunkWithTrailers } from '../../../../src/proxy/http1/index.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';

interface Outcome {
  data: string;
  consumed: number;
  done: boolean;
  error: string;
  trailers: string[] | null;
}

/** Feeds `pieces` in order, like socket reads; stops feeding once done or failed. */
function feed(pieces: Buffer[]): Outcome {
  const out: Buffer[] = [];
  const d = new ChunkedDecoder((b) => out.push(Buffer.from(b)));
  let consumed = 0;
  for (const p of pieces) {
    const n = d.push(p, 0);
    expect(n).toBeGreaterThanOrEqual(0);
    expect(n).toBeLessThanOrEqual(p.length);
    consumed += n;
    if (d.done || d.error) break;
    expect(n).toBe(p.length);
  }
  return { data: Buffer.concat(out).toString('latin1'), consumed, done: d.done, error: d.error, trailers: d.trailers ? d.trailers.kv : null };
}

const VALID: Array<[string, string, string[] | null]> = [
  ['5\r\nhello\r\n0\r\n\r\n', 'hello', null],
  ['5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'hello world', null],
  ['0\r\n\r\n', '', null],
  ['A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n', '0123456789abcdefghij', null],
  ['000005\r\nhello\r\n0000\r\n\r\n', 'hello', null],
  ['5;ext\r\nhello\r\n0\r\n\r\n', 'hello', null],
  ['5;a=b;c="quoted \\" value";d\r\nhello\r\n0;last=1\r\n\r\n', 'hello', null],
  ['5\r\nhe\r\nl\r\n0\r\n\r\n', 'he\r\nl', null],
  ['3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:  abc \r\n\r\n', 'abc', ['expires', 'never', 'x-sum', 'abc']],
];

describe('ChunkedDecoder', () => {
  it.each(VALID)('decodes %j', (wire, data, trailers) => {
    const r = feed([Buffer.from(wire, 'latin1')]);
    expect(r).toEqual({ data, consumed: wire.length, done: true, error: '', trailers });
  });

  it('gives the same data for every split into two and three pieces', () => {
    for (const [wire, data] of VALID) {
      const buf = Buffer.from(wire, 'latin1');
      for (let a = 0; a <= buf.length; a++) {
        const r = feed([buf.subarray(0, a), buf.subarray(a)]);
        expect(r.data, `split at ${a} of ${JSON.stringify(wire)}`).toBe(data);
        expect(r.done).toBe(true);
        expect(r.consumed).toBe(buf.length);
        for (let b = a; b <= buf.length; b += 3) {
          const r3 = feed([buf.subarray(0, a), buf.subarray(a, b), buf.subarray(b)]);
          expect(r3.data).toBe(data);
          expect(r3.done).toBe(true);
        }
      }
    }
  });

  it('decodes a byte at a time', () => {
    for (const [wire, data] of VALID) {
      const buf = Buffer.from(wire, 'latin1');
      const pieces = [...buf].map((b) => Buffer.from([b]));
      expect(feed(pieces)).toMatchObject({ data, done: true, error: '' });
    }
  });

  it('hands out slices of the input, not copies', () => {
    const buf = Buffer.from('5\r\nhello\r\n0\r\n\r\n');
    const seen: Buffer[] = [];
    const d = new ChunkedDecoder((b) => seen.push(b));
    d.push(buf, 0);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.buffer).toBe(buf.buffer);
    expect(seen[0]!.byteOffset).toBe(buf.byteOffset + 3);
  });

  it('leaves pipelined bytes after the terminal chunk', () => {
    const body = '4\r\nwxyz\r\n0\r\n\r\n';
    const buf = Buffer.from('junk' + body + 'GET / HTTP/1.1\r\n');
    const d = new ChunkedDecoder(() => {});
    const n = d.push(buf, 4);
    expect(n).toBe(body.length);
    expect(d.done).toBe(true);
    expect(d.push(buf, 4 + n)).toBe(0);
  });

  it('leaves pipelined bytes after trailers', () => {
    const body = '0\r\nX: y\r\n\r\n';
    const d = new ChunkedDecoder(() => {});
    expect(d.push(Buffer.from(body + 'NEXT'), 0)).toBe(body.length);
    expect(d.trailers?.get('x')).toBe('y');
  });

  const BAD: Array<[string, RegExp]> = [
    ['0x5\r\nhello\r\n0\r\n\r\n', /chunk size/],
    ['-1\r\n', /chunk size/],
    ['+5\r\nhello\r\n', /chunk size/],
    [' 5\r\nhello\r\n', /chunk size/],
    ['5 \r\nhello\r\n', /chunk size/],
    ['fffffffffffffffff\r\n', /15 hex digits/],
    ['0000000000000005\r\nhello\r\n', /15 hex digits/],
    ['\r\n', /chunk size/],
    ['g\r\n', /chunk size/],
    ['5\nhello\r\n0\r\n\r\n', /chunk size/],
    ['5\rhello\r\n', /CRLF/],
    ['5\r\nhelloX\r\n0\r\n\r\n', /CRLF/],
    ['5\r\nhello\n0\r\n\r\n', /CRLF/],
    ['5\r\nhello\r0\r\n\r\n', /CRLF/],
    ['5\r\nhello\r\n0\r\n\n', /trailer|CRLF/],
    ['0\r\nX: y\n\r\n', /bare LF/],
    ['0\r\nX: y\rZ\r\n\r\n', /bare CR/],
    ['0\r\nX : y\r\n\r\n', /trailer/],
    ['0\r\nBad\x00: y\r\n\r\n', /trailer/],
    ['0\r\n y\r\n\r\n', /trailer/],
    ['5; a=b\r\nhello\r\n', /extension/],
    ['5;a =b\r\nhello\r\n', /extension/],
    ['5;a=\x01\r\nhello\r\n', /extension/],
    ['5;a="x\x00"\r\nhello\r\n', /extension/],
    ['5;a="x"y\r\nhello\r\n', /extension/],
    ['5;a\nhello\r\n', /LF in chunk extension/],
    ['5;' + 'x'.repeat(5000) + '\r\nhello\r\n', /4096/],
    ['0\r\nX: ' + 'y'.repeat(17000) + '\r\n\r\n', /16 KiB/],
    ['fffffffffffffff\r\n', /2\^53/],
  ];
  it.each(BAD)('rejects %j', (wire, reason) => {
    const d = new ChunkedDecoder(() => {});
    const buf = Buffer.from(wire, 'latin1');
    const n = d.push(buf, 0);
    expect(d.error).toMatch(reason);
    expect(d.done).toBe(false);
    // Trailer fields are validated once the section is complete, so n may reach the end.
    expect(n).toBeLessThanOrEqual(buf.length);
    expect(d.push(buf, 0)).toBe(0);
  });

  it('rejects a total size over 2^53-1 across chunks', () => {
    const d = new ChunkedDecoder(() => {});
    // 2^52 twice: each chunk alone is fine, the sum is not.
    d.push(Buffer.from('10000000000000\r\n'), 0);
    expect(d.error).toBe('');
    const d2 = new ChunkedDecoder(() => {});
    d2.push(Buffer.from('1fffffffffffff\r\n'), 0);
    expect(d2.error).toBe('');
  });

  it('encodes chunk framing', () => {
    expect(encodeChunkHeader(0)).toBe('0\r\n');
    expect(encodeChunkHeader(255)).toBe('ff\r\n');
    expect(encodeChunkHeader(4096)).toBe('1000\r\n');
    expect(CHUNK_END).toBe('\r\n');
    expect(LAST_CHUNK).toBe('0\r\n\r\n');
    const payload = 'x'.repeat(300);
    const wire = encodeChunkHeader(300) + payload + CHUNK_END + LAST_CHUNK;
    expect(feed([Buffer.from(wire)])).toMatchObject({ data: payload, done: true, consumed: wire.length });
  });

  it('lastChunkWithTrailers writes the fields `keep` accepts, leaves out ones that are not valid HTTP/1.1, and the decoder reads them back', () => {
    const t = new HeaderMap(['x-checksum', 'abc', 'content-length', '9', 'x-bad name', '1', 'x-split', 'a\r\nx-injected: 1', 'x-count', '2']);
    const wire = lastChunkWithTrailers(t, (n) => n !== 'content-length');
    expect(wire).toBe('0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n');
    expect(feed([Buffer.from('3\r\nabc\r\n' + wire)])).toMatchObject({ data: 'abc', done: true, trailers: ['x-checksum', 'abc', 'x-count', '2'] });
    expect(lastChunkWithTrailers(new HeaderMap(), () => true)).toBe(LAST_CHUNK);
  });
});
