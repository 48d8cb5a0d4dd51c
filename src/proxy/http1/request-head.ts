/**
 * Request head parser for the HTTP/1.1 hot path: request line + field lines, as strict as llhttp
 * (no lenient flags) against smuggling and malformed input, and stricter where llhttp is loose
 * (HTTP/1.0 + Transfer-Encoding, duplicate Host, bare CR, oversized Content-Length, odd targets).
 *
 * Cost model: one Buffer.indexOf for the end of the head, one Latin-1 conversion, one charCodeAt
 * pass over the string with lookup tables; no regexes, no closures, no per-header allocation
 * beyond the two strings that go into the HeaderMap.
 */
import { HeaderMap } from '../headers.js';
import { HeaderBlock, scanHeaderBlock } from './header-block.js';
import { INCOMPLETE, type HeadResult, type RequestHeadErrorCode } from './head-result.js';
import { AUTHORITY, CR, LF, SP, TOKEN, checkPartialLineEndings, describeByte, latin1 } from './syntax.js';

export interface RequestHead {
  method: string;
  target: string;
  versionMinor: 0 | 1;
  /** Names lower-cased, values with OWS trimmed, in wire order. */
  headers: HeaderMap;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** HTTP/1.1: unless `Connection: close`; HTTP/1.0: only with `Connection: keep-alive`. */
  keepAlive: boolean;
  /** The Upgrade value when Connection has the `upgrade` token and Upgrade is present; else ''. */
  upgrade: string;
  expectContinue: boolean;
  /** Host header value, '' when none. */
  host: string;
  /** Lower-cased tokens of the Connection header(s): the extra hop-by-hop headers to strip. */
  connectionTokens: string[];
}

export type RequestHeadResult = HeadResult<RequestHead, RequestHeadErrorCode>;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

function bad(reason: string): RequestHeadResult {
  return { kind: 'error', code: 'CAPA_ERR_BAD_REQUEST', reason };
}

function tooLarge(limit: number): RequestHeadResult {
  return { kind: 'error', code: 'CAPA_ERR_HEADERS_TOO_LARGE', reason: `request head exceeds ${limit} bytes` };
}

/**
 * Parses the request head that starts at `buf[start]`. `consumed` counts from `start` and includes
 * skipped leading CRLFs and the final CRLFCRLF; bytes after it (body, pipelined requests) are left.
 */
export function parseRequestHead(buf: Buffer, start: number, maxHeadBytes: number): RequestHeadResult {
  const len = buf.length;
  let p = start;
  // RFC 9112 §2.2: ignore at least one empty line before the request line.
  while (p + 1 < len && buf[p] === CR && buf[p + 1] === LF) p += 2;
  const e = buf.indexOf(CRLFCRLF, p);
  if (e === -1) {
    const avail = len - start;
    if (avail > maxHeadBytes) return tooLarge(maxHeadBytes);
    const why = checkPartialLineEndings(buf, p, len);
    return why === '' ? INCOMPLETE : bad(why);
  }
  const consumed = e + 4 - start;
  if (consumed > maxHeadBytes) return tooLarge(maxHeadBytes);
  // The string runs through the CRLF that ends the last field line (or the request line).
  const s = latin1(buf, p, e + 2);
  const end = s.length;

  // --- request line: method SP request-target SP HTTP-version CRLF
  let i = 0;
  let c = s.charCodeAt(0);
  while (TOKEN[c]! > 0) c = s.charCodeAt(++i);
  if (c !== SP || i === 0) {
    if (c === LF) return bad('bare LF in the request line');
    if (c === CR) return bad(s.charCodeAt(i + 1) !== LF ? 'bare CR in the request line' : i === 0 ? 'empty request line' : 'request line has no request-target');
    return bad(i === 0 ? `request line starts with ${describeByte(c)}: method is not a token` : `invalid character ${describeByte(c)} in method`);
  }
  const method = s.slice(0, i);
  const ts = ++i;
  c = s.charCodeAt(i);
  while (c > 32 && c < 127) c = s.charCodeAt(++i);
  if (i === ts) return bad(c === SP ? 'more than one SP before the request-target' : 'empty request-target');
  if (c !== SP) {
    if (c === LF) return bad('bare LF in the request line');
    if (c === CR) return bad(s.charCodeAt(i + 1) === LF ? 'request line has no HTTP version' : 'bare CR in the request line');
    return bad(`invalid character ${describeByte(c)} in request-target`);
  }
  const target = s.slice(ts, i);
  i++;
  if (!s.startsWith('HTTP/1.', i) || s.charCodeAt(i + 8) !== CR || s.charCodeAt(i + 9) !== LF) {
    const v = s.slice(i, Math.min(end, i + 12)).replace(/[^\x21-\x7e]/g, '?');
    if (s.charCodeAt(i + 8) === LF) return bad('bare LF after the request line');
    return bad(`unsupported or malformed HTTP version "${v}"`);
  }
  const minorCh = s.charCodeAt(i + 7);
  if (minorCh !== 48 && minorCh !== 49) return bad(`unsupported HTTP version "HTTP/1.${String.fromCharCode(minorCh)}"`);
  const versionMinor: 0 | 1 = minorCh === 49 ? 1 : 0;
  i += 10;

  const connect = method === 'CONNECT';
  if (connect || target.charCodeAt(0) !== 47 /* / */) {
    const why = checkTarget(method, target, connect);
    if (why !== '') return bad(why);
  }
  if (method === 'PRI') return bad('PRI method (HTTP/2 connection preface) on an HTTP/1.1 connection');

  // --- field lines
  const hb = new HeaderBlock();
  const why = scanHeaderBlock(s, i, end, hb, true);
  if (why !== '') return bad(why);

  // --- framing (RFC 9112 §6.1-6.3)
  let chunked = false;
  if (hb.teLines > 0) {
    if (hb.contentLength !== -1) return bad('Transfer-Encoding together with Content-Length');
    if (versionMinor === 0) return bad('Transfer-Encoding in an HTTP/1.0 request');
    if (!hb.teChunkedLast) return bad('Transfer-Encoding whose final coding is not chunked');
    if (hb.teUnknown) return { kind: 'error', code: 'CAPA_ERR_NOT_IMPLEMENTED', reason: 'unsupported transfer coding in Transfer-Encoding' };
    chunked = true;
  }
  if (hb.hostCount === 0 && versionMinor === 1) return bad('HTTP/1.1 request without a Host header');

  const head: RequestHead = {
    method,
    target,
    versionMinor,
    headers: new HeaderMap(hb.kv),
    contentLength: hb.contentLength,
    chunked,
    keepAlive: versionMinor === 1 ? !hb.connClose : hb.connKeepAlive && !hb.connClose,
    // `Upgrade: h2c` (RFC 7540 §3.2) is not honoured, as in Envoy: the request goes on as HTTP/1.1
    // with Upgrade, Connection and HTTP2-Settings dropped (h2c clients use prior knowledge).
    upgrade: hb.connUpgrade && !isH2c(hb.upgrade) ? hb.upgrade : '',
    expectContinue: hb.expectContinue,
    host: hb.host,
    connectionTokens: hb.connectionTokens,
  };
  return { kind: 'ok', head, consumed };
}

/**
 * The request-target forms other than a plain origin-form path (RFC 9112 §3.2): authority-form
 * only for CONNECT, asterisk-form only for OPTIONS, absolute-form `scheme://authority[/?...]`.
 * Everything llhttp's URL parser refuses is refused here too. Returns '' or the reason.
 */
function checkTarget(method: string, t: string, connect: boolean): string {
  if (connect) {
    const colon = t.lastIndexOf(':');
    if (colon <= 0 || colon === t.length - 1 || t.length - colon > 6) return 'CONNECT request-target must be authority-form host:port';
    for (let k = 0; k < t.length; k++) if (AUTHORITY[t.charCodeAt(k)] !== 1) return `invalid character ${describeByte(t.charCodeAt(k))} in CONNECT request-target`;
    for (let k = colon + 1; k < t.length; k++) {
      const d = t.charCodeAt(k);
      if (d < 48 || d > 57) return 'CONNECT request-target port is not numeric';
    }
    return '';
  }
  const c0 = t.charCodeAt(0);
  if (c0 === 42 /* * */) {
    if (t.length !== 1 || method !== 'OPTIONS') return 'asterisk-form request-target is only allowed as "OPTIONS *"';
    return '';
  }
  // absolute-form: llhttp allows only ALPHA in the scheme.
  let k = 0;
  for (; k < t.length; k++) {
    const c = t.charCodeAt(k) | 0x20;
    if (c < 97 || c > 122) break;
  }
  if (k === 0 || !t.startsWith('://', k)) return 'request-target is not origin-form, absolute-form or asterisk-form';
  k += 3;
  const as = k;
  let at = false;
  for (; k < t.length; k++) {
    const c = t.charCodeAt(k);
    if (c === 47 || c === 63) break;
    if (c === 64 /* @ */) {
      if (at) return 'more than one @ in the request-target authority';
      at = true;
    } else if (AUTHORITY[c] !== 1) return `invalid character ${describeByte(c)} in the request-target authority`;
  }
  if (k === as) return 'absolute-form request-target with an empty authority';
  return '';
}

function isH2c(upgrade: string): boolean {
  return upgrade.trim().toLowerCase() === 'h2c';
}
