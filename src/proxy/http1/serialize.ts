/**
 * Head serializers for the HTTP/1.1 hot path: one string built with `+=` (V8 ropes make that
 * cheap), written to the socket in one call. Always HTTP/1.1 on the wire.
 *
 * Headers that came through our parsers are already valid, but filters may set any string, so
 * every name must be a token and no value may carry CR, LF or NUL (response splitting / header
 * injection). A violation throws CapaError CAPA_ERR_FILTER_FAILED (500) rather than emit it.
 */
import { STATUS_CODES } from 'node:http';
import { CapaError } from '../../errors.js';
import type { HeaderMap } from '../headers.js';
import { TOKEN, isToken } from './syntax.js';

/** Standard reason phrases by status code (from node:http). */
export const STATUS_TEXT: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(STATUS_CODES).map(([k, v]) => [Number(k), v ?? ''])),
);

function invalid(what: string): CapaError {
  return new CapaError('CAPA_ERR_FILTER_FAILED', `refusing to serialize an invalid HTTP/1.1 head: ${what}`);
}

function fieldLines(headers: HeaderMap): string {
  const kv = headers.kv;
  let out = '';
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!;
    const value = kv[i + 1]!;
    for (let k = 0; k < name.length; k++) if (!(TOKEN[name.charCodeAt(k)]! > 0)) throw invalid(`header name ${JSON.stringify(name)}`);
    if (name.length === 0) throw invalid('empty header name');
    if (value.indexOf('\r') !== -1 || value.indexOf('\n') !== -1 || value.indexOf('\0') !== -1) {
      throw invalid(`CR, LF or NUL in the value of ${name}`);
    }
    out += name + ': ' + value + '\r\n';
  }
  return out + '\r\n';
}

/** `METHOD target HTTP/1.1\r\n` + `name: value\r\n`... + `\r\n`. */
export function serializeRequestHead(method: string, target: string, headers: HeaderMap): string {
  if (!isToken(method)) throw invalid(`method ${JSON.stringify(method)}`);
  if (target.length === 0) throw invalid('empty request-target');
  for (let k = 0; k < target.length; k++) {
    const c = target.charCodeAt(k);
    if (c <= 32 || c >= 127) throw invalid(`request-target ${JSON.stringify(target)}`);
  }
  return method + ' ' + target + ' HTTP/1.1\r\n' + fieldLines(headers);
}

/** `HTTP/1.1 status reason\r\n` + field lines + `\r\n`; an empty reason uses STATUS_TEXT. */
export function serializeResponseHead(status: number, reason: string, headers: HeaderMap): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw invalid(`status ${status}`);
  const text = reason === '' ? (STATUS_TEXT[status] ?? '') : reason;
  if (text.indexOf('\r') !== -1 || text.indexOf('\n') !== -1 || text.indexOf('\0') !== -1) throw invalid('CR, LF or NUL in the reason phrase');
  return 'HTTP/1.1 ' + status + ' ' + text + '\r\n' + fieldLines(headers);
}
