/**
 * Character classes of RFC 9110/9112 as 256-entry lookup tables, and the small helpers the head
 * parsers, the chunked decoder and the serializers share. Tables beat regexes on the hot path.
 */

function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) t[c] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/**
 * tchar (RFC 9110 §5.6.2): header names, methods, transfer codings, chunk extension names.
 * Non-zero for a tchar; 2 marks the upper-case letters so the name scan learns whether to lower-case.
 */
export const TOKEN = table("!#$%&'*+-.^_`|~", ALNUM);
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 2;

/**
 * Characters of an authority (host, port, userinfo without '@') as llhttp accepts them:
 * unreserved / sub-delims / ':' / '%' plus '[' ']' for IPv6 literals.
 */
export const AUTHORITY = table("-._~!$&'()*+,;=:%[]", ALNUM);

/** qdtext of a quoted-string (RFC 9110 §5.6.4): HTAB, SP, 0x21, 0x23-0x5b, 0x5d-0x7e, obs-text. */
export const QDTEXT = table('\t !', [
  [0x23, 0x5b],
  [0x5d, 0x7e],
  [0x80, 0xff],
]);

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;

/** Largest Content-Length / chunked body we accept: 2^53 - 1, so sizes stay exact in a double. */
export const MAX_BODY = Number.MAX_SAFE_INTEGER;

/** A C0 control other than HTAB, or DEL: never allowed in a field value or reason phrase. */
export function isBadValueChar(c: number): boolean {
  return c < 32 ? c !== HTAB : c === 127;
}

/** True when every character of `s` is a tchar (and `s` is not empty). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!(TOKEN[s.charCodeAt(i)]! > 0)) return false;
  return true;
}

/** `b` is lower-case ASCII; compares `a` to it ignoring ASCII case. */
export function equalsLower(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let c = a.charCodeAt(i);
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== b.charCodeAt(i)) return false;
  }
  return true;
}

/** Lower-cases only when needed (most header values on the wire are already lower-case). */
export function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/** Describes a byte for an error reason: `0x0d (CR)`, `'x'`. */
export function describeByte(c: number): string {
  if (Number.isNaN(c)) return 'end of input';
  if (c === CR) return 'CR';
  if (c === LF) return 'LF';
  if (c === 0) return 'NUL';
  if (c === SP) return 'SP';
  if (c === HTAB) return 'HTAB';
  if (c > 32 && c < 127) return `'${String.fromCharCode(c)}'`;
  return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/** Latin-1 view of bytes: one char per byte, so string indices are byte offsets. */
interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
}

export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Buffer).latin1Slice(start, end);
}

/**
 * Checks line endings in a head that is not complete yet, so bare LF / bare CR is reported at once
 * instead of waiting for a CRLFCRLF that never comes. Returns '' when fine so far.
 */
export function checkPartialLineEndings(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === LF) {
      if (i === start || buf[i - 1] !== CR) return 'bare LF line ending (CRLF required)';
    } else if (c === CR) {
      if (i + 1 < end && buf[i + 1] !== LF) return 'bare CR line ending (CRLF required)';
    }
  }
  return '';
}
