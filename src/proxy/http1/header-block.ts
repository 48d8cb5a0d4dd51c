/**
 * The field-line scanner both head parsers (and the chunked trailers) share. It walks the Latin-1
 * string of a head once with charCodeAt, fills a flat HeaderMap array, and recognises the headers
 * that decide framing and connection handling while it goes, so the parsers never look again.
 *
 * Strictness (RFC 9112 §5, llhttp without lenient flags): CRLF line endings only, no obs-fold, no
 * whitespace between name and colon, names are tokens, values are HTAB / SP / VCHAR / obs-text.
 */
import { CR, HTAB, LF, SP, MAX_BODY, TOKEN, describeByte, equalsLower, lowerAscii } from './syntax.js';

/** What one header section said about framing and the connection. Created per head. */
export class HeaderBlock {
  /** Flat [name, value, ...], names lower-cased, values with OWS trimmed. */
  readonly kv: string[] = [];
  contentLength = -1;
  /** Number of Transfer-Encoding field lines. */
  teLines = 0;
  /** Number of `chunked` codings seen (more than one is an error). */
  teChunked = 0;
  /** The last coding of the (combined) Transfer-Encoding list is `chunked`. */
  teChunkedLast = false;
  /** Some coding other than chunked / gzip / deflate / compress (or with parameters). */
  teUnknown = false;
  readonly connectionTokens: string[] = [];
  connClose = false;
  connKeepAlive = false;
  connUpgrade = false;
  hostCount = 0;
  host = '';
  upgrade = '';
  expectContinue = false;
}

/** Codings we can forward inside chunked framing without understanding them. */
function isKnownCoding(c: string): boolean {
  switch (c) {
    case 'gzip':
    case 'x-gzip':
    case 'deflate':
    case 'compress':
    case 'x-compress':
      return true;
    default:
      return false;
  }
}

/**
 * Scans the field lines in `s` from `i` to `end` (`end` is just past the CRLF of the last line).
 * With `specials`, framing headers are interpreted into `hb`. Returns '' or the error reason.
 */
export function scanHeaderBlock(s: string, i: number, end: number, hb: HeaderBlock, specials: boolean): string {
  const kv = hb.kv;
  while (i < end) {
    let c = s.charCodeAt(i);
    if (c === SP || c === HTAB) return 'obs-fold (a header line starting with whitespace) is not allowed';
    const ns = i;
    let upper = false;
    let t = TOKEN[c]!; // undefined (NaN index) ends the loop like 0
    while (t > 0) {
      if (t === 2) upper = true;
      t = TOKEN[(c = s.charCodeAt(++i))]!;
    }
    if (c !== 58 /* : */) {
      if (c === SP || c === HTAB) return i === ns ? 'obs-fold is not allowed' : 'whitespace between header name and colon';
      if (c === LF) return 'bare LF line ending in header section';
      if (c === CR) return s.charCodeAt(i + 1) === LF ? 'header line without a colon' : 'bare CR line ending in header section';
      return `invalid character ${describeByte(c)} in header name`;
    }
    if (i === ns) return 'empty header name';
    const nameEnd = i;
    c = s.charCodeAt(++i);
    while (c === SP || c === HTAB) c = s.charCodeAt(++i);
    const vs = i;
    // VCHAR / SP / obs-text run fast; HTAB is rare.
    while ((c >= 32 && c !== 127) || c === HTAB) c = s.charCodeAt(++i);
    if (c !== CR) {
      if (c === LF) return 'bare LF line ending in header section';
      return `invalid character ${describeByte(c)} in header value`;
    }
    if (s.charCodeAt(i + 1) !== LF) return 'bare CR in header value';
    let ve = i;
    while (ve > vs && ((c = s.charCodeAt(ve - 1)) === SP || c === HTAB)) ve--;
    let name = s.slice(ns, nameEnd);
    if (upper) name = name.toLowerCase();
    const value = s.slice(vs, ve);
    kv.push(name, value);
    if (specials) {
      const err = special(name, value, i, s, hb);
      if (err !== '') return err;
    }
    i += 2;
  }
  return '';
}

/** Interprets one framing-relevant header; `crAt` is where its raw value ended (for TE). */
function special(name: string, value: string, crAt: number, s: string, hb: HeaderBlock): string {
  switch (name.length) {
    case 4:
      if (name === 'host') {
        if (++hb.hostCount > 1) return 'more than one Host header';
        hb.host = value;
      }
      return '';
    case 6:
      if (name === 'expect' && equalsLower(value, '100-continue')) hb.expectContinue = true;
      return '';
    case 7:
      if (name === 'upgrade') hb.upgrade = value;
      return '';
    case 10:
      if (name === 'connection') connection(value, hb);
      return '';
    case 14:
      if (name !== 'content-length') return '';
      // llhttp refuses `5<HTAB>`; so do we.
      return trailingTab(s, crAt) ? 'HTAB after the Content-Length value' : contentLength(value, hb);
    case 17:
      if (name !== 'transfer-encoding') return '';
      // llhttp reads `chunked<HTAB>` as not chunked; refuse that ambiguity outright.
      return transferEncoding(value, trailingTab(s, crAt), hb);
    default:
      return '';
  }
}

/** Whether the OWS before the CR at `crAt` contains an HTAB. */
function trailingTab(s: string, crAt: number): boolean {
  for (let j = crAt - 1; ; j--) {
    const c = s.charCodeAt(j);
    if (c === HTAB) return true;
    if (c !== SP) return false;
  }
}

function contentLength(v: string, hb: HeaderBlock): string {
  if (hb.contentLength !== -1) return 'duplicate Content-Length header';
  if (v.length === 0) return 'empty Content-Length header';
  if (v.length > 16) return `Content-Length too large: ${v.slice(0, 32)}`;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return `Content-Length is not a non-negative decimal integer: ${JSON.stringify(v)}`;
    n = n * 10 + d;
  }
  if (n > MAX_BODY) return `Content-Length too large: ${v}`;
  hb.contentLength = n;
  return '';
}

function connection(v: string, hb: HeaderBlock): void {
  let i = 0;
  const n = v.length;
  while (i <= n) {
    let j = v.indexOf(',', i);
    if (j === -1) j = n;
    let a = i;
    let b = j;
    while (a < b && (v.charCodeAt(a) === SP || v.charCodeAt(a) === HTAB)) a++;
    while (b > a && (v.charCodeAt(b - 1) === SP || v.charCodeAt(b - 1) === HTAB)) b--;
    if (b > a) {
      const t = lowerAscii(v.slice(a, b));
      hb.connectionTokens.push(t);
      if (t === 'close') hb.connClose = true;
      else if (t === 'keep-alive') hb.connKeepAlive = true;
      else if (t === 'upgrade') hb.connUpgrade = true;
    }
    i = j + 1;
  }
}

function transferEncoding(v: string, trailingTab: boolean, hb: HeaderBlock): string {
  hb.teLines++;
  if (trailingTab || v.indexOf('\t') !== -1) return 'HTAB inside Transfer-Encoding value';
  const n = v.length;
  let i = 0;
  while (i <= n) {
    let j = v.indexOf(',', i);
    if (j === -1) j = n;
    let a = i;
    let b = j;
    while (a < b && v.charCodeAt(a) === SP) a++;
    while (b > a && v.charCodeAt(b - 1) === SP) b--;
    if (a === b) return 'empty element in Transfer-Encoding';
    const coding = lowerAscii(v.slice(a, b));
    if (coding === 'chunked') {
      if (++hb.teChunked > 1) return 'Transfer-Encoding applies chunked more than once';
      hb.teChunkedLast = true;
    } else {
      hb.teChunkedLast = false;
      if (!isKnownCoding(coding)) hb.teUnknown = true;
    }
    i = j + 1;
  }
  return '';
}
