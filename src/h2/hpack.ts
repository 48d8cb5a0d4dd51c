/**
 * HPACK (RFC 7541) for our own HTTP/2 connections: a full decoder (static and dynamic table,
 * Huffman strings, table size updates) and a small encoder that never indexes — literals with a
 * static-table name where one exists, plain octets, no Huffman — which every peer must accept and
 * which keeps no per-connection encoder state.
 *
 * Header names and values are handled as latin1 strings, so one character is one octet: table
 * sizes count octets as the RFC does, and no byte sequence is lost in a round trip.
 */

/** RFC 7541 Appendix A. Index 1 is STATIC[0]. */
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/**
 * RFC 7541 Appendix B, as code lengths per symbol (0–255, then EOS = 256). The HPACK Huffman
 * code is canonical — codes are handed out in order of (length, symbol) — so the lengths alone
 * determine every code (see huffmanCodes), which keeps the table short enough to check by eye.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** The canonical codes for HUFFMAN_LENGTHS: [code, length] per symbol. */
export function huffmanCodes(): [number, number][] {
  const order = HUFFMAN_LENGTHS.map((len, sym) => [len, sym] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const codes: [number, number][] = new Array(HUFFMAN_LENGTHS.length);
  let code = 0;
  let prev = order[0]![0];
  order.forEach(([len, sym], i) => {
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    codes[sym] = [code, len];
  });
  return codes;
}

/**
 * The decoding tree as a flat array: node n's children are TREE[2n] (bit 0) and TREE[2n+1]
 * (bit 1); a value ≥ 0 is the next node, a value < 0 is the leaf -(symbol + 1), 0 at the root's
 * slots means "no code" (cannot happen for a complete code, kept for safety).
 */
const CODES = huffmanCodes();

const TREE: Int32Array = (() => {
  const codes = CODES;
  const tree = new Int32Array(2 * 512).fill(0);
  let nodes = 1;
  codes.forEach(([code, len], sym) => {
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) % 2;
      const slot = 2 * n + bit;
      if (i === 0) tree[slot] = -(sym + 1);
      else {
        if (tree[slot]! <= 0) tree[slot] = nodes++;
        n = tree[slot]!;
      }
    }
  });
  return tree;
})();

export class HpackError extends Error {
  readonly code = 'HPACK_DECODE';
}

/** Huffman-decodes `buf[start, end)` to a latin1 string. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  let out = '';
  let node = 0;
  let depth = 0; // bits since the last symbol: the padding check needs it
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >> b) & 1;
      const next = TREE[2 * node + bit]!;
      depth++;
      allOnes = allOnes && bit === 1;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) throw new HpackError('Huffman string contains EOS');
        out += String.fromCharCode(sym);
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError('invalid Huffman code');
      } else node = next;
    }
  }
  // RFC 7541 §5.2: padding is the most significant bits of EOS (all ones), shorter than 8 bits.
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return out;
}

/** Huffman-encodes a latin1 string (tests and future encoders; our encoder sends plain octets). */
export function huffmanEncode(s: string): Buffer {
  const codes = CODES;
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const [code, len] = codes[s.charCodeAt(i) & 0xff]!;
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** b) % 2);
      if (++bits === 8) {
        bytes.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) bytes.push(((acc << (8 - bits)) | (0xff >> bits)) & 0xff);
  return Buffer.from(bytes);
}

const entrySize = (name: string, value: string): number => 32 + name.length + value.length;

/**
 * One connection's decoder. `decode` returns the header list flat — [name0, value0, name1, …] —
 * in arrival order; a malformed block throws HpackError, after which the connection must end
 * (the shared table may be out of step: RFC 7540 COMPRESSION_ERROR).
 */
export class HpackDecoder {
  /** Newest first at the end: dynamic index 1 is dyn[dyn.length - 1]. */
  private readonly dyn: [string, string][] = [];
  private size = 0;
  private maxSize: number;

  /** `maxTableSize`: SETTINGS_HEADER_TABLE_SIZE as we announced it (default 4096). */
  constructor(private readonly maxTableSize = 4096) {
    this.maxSize = maxTableSize;
  }

  decode(buf: Buffer, start = 0, end = buf.length): string[] {
    const out: string[] = [];
    let p = start;
    let first = true;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let v = buf[p++]! & mask;
      if (v < mask) return v;
      let m = 0;
      for (;;) {
        if (p >= end) throw new HpackError('truncated integer');
        const b = buf[p++]!;
        v += (b & 0x7f) * 2 ** m;
        m += 7;
        if (v > 0x7fffffff) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return v;
      }
    };
    const str = (): string => {
      if (p >= end) throw new HpackError('truncated string');
      const huffman = (buf[p]! & 0x80) !== 0;
      const len = int(7);
      if (p + len > end) throw new HpackError('truncated string');
      const s = huffman ? huffmanDecode(buf, p, p + len) : buf.toString('latin1', p, p + len);
      p += len;
      return s;
    };
    while (p < end) {
      const b = buf[p]!;
      if (b & 0x80) {
        const [n, v] = this.entry(int(7));
        out.push(n, v);
      } else if (b & 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        const value = str();
        out.push(name, value);
        this.add(name, value);
      } else if (b & 0x20) {
        // §4.2: size updates only at the start of a block.
        if (!first) throw new HpackError('dynamic table size update after a header field');
        const size = int(5);
        if (size > this.maxTableSize) throw new HpackError(`dynamic table size update to ${size} exceeds the ${this.maxTableSize} announced`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // 0000xxxx without indexing, 0001xxxx never indexed: the same for a decoder.
        const idx = int(4);
        const name = idx === 0 ? str() : this.entry(idx)[0];
        out.push(name, str());
      }
      first = false;
    }
    return out;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const d = this.dyn[this.dyn.length - (index - STATIC.length)];
    if (!d) throw new HpackError(`index ${index} is beyond the table`);
    return d;
  }

  private add(name: string, value: string): void {
    const size = entrySize(name, value);
    this.evict(size);
    // §4.4: an entry bigger than the table empties it and is not added.
    if (size <= this.maxSize) {
      this.dyn.push([name, value]);
      this.size += size;
    }
  }

  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.dyn.length) {
      const [n, v] = this.dyn[drop++]!;
      this.size -= entrySize(n, v);
    }
    if (drop) this.dyn.splice(0, drop);
  }
}

const STATIC_NAME = new Map<string, number>();
/** name → value → index, for the few names the static table lists with values. */
const STATIC_PAIR = new Map<string, Map<string, number>>();
STATIC.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (!v) return;
  let values = STATIC_PAIR.get(n);
  if (!values) STATIC_PAIR.set(n, (values = new Map()));
  values.set(v, i + 1);
});

/**
 * The encoder writes into one scratch buffer and copies the block out: no per-header arrays or
 * key strings, so encoding a head leaves one small Buffer behind (encodeHeaders runs
 * synchronously and is not reentrant).
 */
let scratch = Buffer.allocUnsafe(16 * 1024);
let pos = 0;

function ensure(n: number): void {
  if (pos + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, pos + n));
  scratch.copy(bigger, 0, 0, pos);
  scratch = bigger;
}

function putInt(value: number, prefixBits: number, firstByte: number): void {
  ensure(8);
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    scratch[pos++] = firstByte | value;
    return;
  }
  scratch[pos++] = firstByte | mask;
  let v = value - mask;
  while (v >= 128) {
    scratch[pos++] = (v % 128) + 128;
    v = Math.floor(v / 128);
  }
  scratch[pos++] = v;
}

function putString(s: string): void {
  putInt(s.length, 7, 0);
  ensure(s.length);
  // latin1: one octet per character (names and values are octets, see the top of this file).
  pos += scratch.write(s, pos, 'latin1');
}

/**
 * Encodes a header list (pairs, names lowercase) statelessly: a full static match is one byte,
 * otherwise a literal without indexing, with the static name index when there is one.
 */
export function encodeHeaders(headers: Iterable<readonly [string, string]>): Buffer {
  pos = 0;
  for (const [name, value] of headers) {
    const pair = STATIC_PAIR.get(name)?.get(value);
    if (pair !== undefined) {
      putInt(pair, 7, 0x80);
      continue;
    }
    const idx = STATIC_NAME.get(name);
    if (idx !== undefined) putInt(idx, 4, 0x00);
    else {
      putInt(0, 4, 0x00);
      putString(name);
    }
    putString(value);
  }
  const out = Buffer.allocUnsafe(pos);
  scratch.copy(out, 0, 0, pos);
  return out;
}
