/**
 * Response head parser for the upstream side: status line + field lines with the same field-line
 * strictness as requests. Every error is CAPA_ERR_UPSTREAM_PROTOCOL (502, flag UPE).
 *
 * Body framing follows RFC 9112 §6.3: no body for 1xx, 204, 304, a HEAD request or a 2xx answer
 * to CONNECT; else chunked when Transfer-Encoding ends in chunked; else Content-Length; else the
 * body runs until the upstream closes (also when Transfer-Encoding does not end in chunked).
 */
import { HeaderMap } from '../headers.js';
import { HeaderBlock, scanHeaderBlock } from './header-block.js';
import { INCOMPLETE, type HeadResult, type ResponseHeadErrorCode } from './head-result.js';
import { CR, LF, SP, checkPartialLineEndings, describeByte, isBadValueChar, latin1 } from './syntax.js';

export interface ResponseHead {
  versionMinor: 0 | 1;
  status: number;
  reason: string;
  /** Names lower-cased, values with OWS trimmed, in wire order. */
  headers: HeaderMap;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  /** true when the response has no body by definition: 1xx, 204, 304, or the request was HEAD */
  noBody: boolean;
  /** true when the body is delimited by connection close (no CL, not chunked, not noBody) */
  untilClose: boolean;
  connectionTokens: string[];
}

export type ResponseHeadResult = HeadResult<ResponseHead, ResponseHeadErrorCode>;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

function bad(reason: string): ResponseHeadResult {
  return { kind: 'error', code: 'CAPA_ERR_UPSTREAM_PROTOCOL', reason };
}

/**
 * Parses the response head at `buf[start]`; `requestMethod` is the method of the request it
 * answers (HEAD and CONNECT change the framing). Unlike requests, no leading CRLFs are skipped.
 */
export function parseResponseHead(buf: Buffer, start: number, maxHeadBytes: number, requestMethod: string): ResponseHeadResult {
  const len = buf.length;
  const e = buf.indexOf(CRLFCRLF, start);
  if (e === -1) {
    if (len - start > maxHeadBytes) return bad(`response head exceeds ${maxHeadBytes} bytes`);
    const why = checkPartialLineEndings(buf, start, len);
    return why === '' ? INCOMPLETE : bad(why);
  }
  const consumed = e + 4 - start;
  if (consumed > maxHeadBytes) return bad(`response head exceeds ${maxHeadBytes} bytes`);
  const s = latin1(buf, start, e + 2);
  const end = s.length;

  // --- status line: HTTP-version SP 3DIGIT SP reason-phrase CRLF (the SP before an empty reason
  // may be missing, as RFC 9112 §4 asks recipients to accept)
  if (!s.startsWith('HTTP/1.', 0)) {
    if (s.startsWith('HTTP/', 0)) return bad(`unsupported HTTP version "${s.slice(0, 8).replace(/[^\x21-\x7e]/g, '?')}"`);
    return bad('response does not start with HTTP/1.x');
  }
  const minorCh = s.charCodeAt(7);
  if (minorCh !== 48 && minorCh !== 49) return bad(`unsupported HTTP version "HTTP/1.${describeByte(minorCh)}"`);
  const versionMinor: 0 | 1 = minorCh === 49 ? 1 : 0;
  if (s.charCodeAt(8) !== SP) return bad('expected SP after the HTTP version');
  const d1 = s.charCodeAt(9) - 48;
  const d2 = s.charCodeAt(10) - 48;
  const d3 = s.charCodeAt(11) - 48;
  if (!(d1 >= 1 && d1 <= 9 && d2 >= 0 && d2 <= 9 && d3 >= 0 && d3 <= 9)) return bad('status code is not three digits 100-999');
  const status = d1 * 100 + d2 * 10 + d3;
  let i = 12;
  let c = s.charCodeAt(i);
  let reason = '';
  if (c === SP) {
    const rs = ++i;
    c = s.charCodeAt(i);
    while (!isBadValueChar(c)) c = s.charCodeAt(++i);
    if (c !== CR) return bad(c === LF ? 'bare LF after the status line' : `invalid character ${describeByte(c)} in reason phrase`);
    reason = s.slice(rs, i);
  } else if (c !== CR) {
    return bad(c === LF ? 'bare LF after the status line' : 'status code is not three digits 100-999');
  }
  if (s.charCodeAt(i + 1) !== LF) return bad('bare CR in the status line');
  i += 2;

  const hb = new HeaderBlock();
  const why = scanHeaderBlock(s, i, end, hb, true);
  if (why !== '') return bad(why);

  let chunked = false;
  let untilClose = false;
  if (hb.teLines > 0) {
    if (hb.contentLength !== -1) return bad('Transfer-Encoding together with Content-Length');
    if (versionMinor === 0) return bad('Transfer-Encoding in an HTTP/1.0 response');
    chunked = hb.teChunkedLast;
    untilClose = !chunked;
  }
  const noBody =
    status < 200 || status === 204 || status === 304 || requestMethod === 'HEAD' || (status < 300 && requestMethod === 'CONNECT');
  if (noBody) untilClose = false;
  else if (!chunked && hb.contentLength === -1) untilClose = true;

  const head: ResponseHead = {
    versionMinor,
    status,
    reason,
    headers: new HeaderMap(hb.kv),
    contentLength: hb.contentLength,
    chunked: chunked && !noBody,
    keepAlive: !untilClose && (versionMinor === 1 ? !hb.connClose : hb.connKeepAlive && !hb.connClose),
    noBody,
    untilClose,
    connectionTokens: hb.connectionTokens,
  };
  return { kind: 'ok', head, consumed };
}
