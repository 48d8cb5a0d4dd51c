/**
 * Header translation between node:http2 (pseudo-headers, header objects) and the proxy's own
 * shapes (HeaderMap, the HTTP/1 RequestHead / ResponseHead the Router and ProxyStream read), so
 * one Router serves h2 → h2, h2 → h1 and h1 → h2.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { HeaderMap } from '../headers.js';
import type { RequestHead, ResponseHead } from '../http1/index.js';
import { NOT_FORWARDED } from '../http/hop-by-hop.js';
import { encodeHeaders } from '../../h2/hpack.js';

/** HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2); the proxy also writes framing itself. */
function isHopByHop(name: string): boolean {
  return NOT_FORWARDED.has(name) || name === 'host' || name === 'http2-settings';
}

/** A HeaderMap from node's rawHeaders ([name, value, ...]); pseudo-headers dropped, cookies joined. */
export function headerMapFromRaw(raw: readonly string[]): HeaderMap {
  const kv: string[] = [];
  let cookie: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.charCodeAt(0) === 58 /* : */) continue;
    const name = k.toLowerCase();
    // RFC 9113 §8.2.3: crumbs of a split cookie are joined with "; " for an HTTP/1.1 hop.
    if (name === 'cookie') cookie = cookie === undefined ? raw[i + 1]! : `${cookie}; ${raw[i + 1]}`;
    else kv.push(name, raw[i + 1]!);
  }
  if (cookie !== undefined) kv.push('cookie', cookie);
  return new HeaderMap(kv);
}

/** A HeaderMap from a node:http2 header object (responses, trailers); pseudo-headers dropped. */
export function headerMapFromObject(h: IncomingHttpHeaders): HeaderMap {
  const kv: string[] = [];
  for (const k of Object.keys(h)) {
    if (k.charCodeAt(0) === 58) continue;
    const v = h[k];
    if (v === undefined) continue;
    if (typeof v === 'string') kv.push(k, v);
    else for (const x of v) kv.push(k, x);
  }
  return new HeaderMap(kv);
}

/** A header object for respond()/request()/sendTrailers(): repeated names become arrays. */
export function toHeaderObject(h: HeaderMap, out: OutgoingHttpHeaders, skip: (name: string) => boolean): OutgoingHttpHeaders {
  const kv = h.kv;
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    if (skip(k)) continue;
    const prev = out[k];
    if (prev === undefined) out[k] = kv[i + 1]!;
    else if (Array.isArray(prev)) prev.push(kv[i + 1]!);
    else out[k] = [String(prev), kv[i + 1]!];
  }
  return out;
}

/**
 * Connection tokens of a head synthesised from h2 (h2 has no Connection header): one shared,
 * frozen empty list, so a stray push throws instead of leaking into every other stream.
 */
const NO_TOKENS = Object.freeze([]) as unknown as string[];

/**
 * The RequestHead the Router reads for an h2 stream. An h2 request without content-length whose
 * headers did not end the stream has a body of unknown length: `chunked` for an HTTP/1.1 upstream.
 */
export function synthRequestHead(method: string, target: string, authority: string, headers: HeaderMap, endStream: boolean): RequestHead {
  const cl = headers.get('content-length');
  let contentLength = -1;
  if (cl !== undefined && /^\d{1,15}$/.test(cl)) contentLength = Number(cl);
  return {
    method,
    target,
    versionMinor: 1,
    headers,
    contentLength,
    chunked: contentLength < 0 && !endStream,
    keepAlive: true,
    upgrade: '',
    expectContinue: false,
    host: authority,
    connectionTokens: NO_TOKENS,
  };
}

/** The ResponseHead the Router and the streams read for a response from an h2 upstream. */
export function synthResponseHead(status: number, headers: HeaderMap, endStream: boolean, method: string): ResponseHead {
  const cl = headers.get('content-length');
  const noBody = endStream || method === 'HEAD' || status === 204 || status === 304;
  let contentLength = cl !== undefined && /^\d{1,15}$/.test(cl) ? Number(cl) : -1;
  // Ended with its headers (a gRPC trailers-only reply): an HTTP/1.1 client needs content-length: 0.
  if (contentLength < 0 && endStream && method !== 'HEAD' && status !== 204 && status !== 304) contentLength = 0;
  return {
    versionMinor: 1,
    status,
    reason: '',
    headers,
    contentLength,
    chunked: false,
    keepAlive: true,
    noBody,
    untilClose: false,
    connectionTokens: NO_TOKENS,
  };
}

/** Request headers for an h2 upstream (the HTTP/1 `buildHead` counterpart). */
export function h2RequestHeaders(method: string, target: string, authority: string, h: HeaderMap, head: RequestHead): OutgoingHttpHeaders {
  const tokens = head.connectionTokens;
  const out: OutgoingHttpHeaders = { ':method': method, ':scheme': 'http', ':authority': authority, ':path': target };
  if (tokens.length === 0) toHeaderObject(h, out, isHopByHop);
  else toHeaderObject(h, out, (k) => isHopByHop(k) || tokens.includes(k));
  if (head.contentLength >= 0 && !head.chunked) out['content-length'] = String(head.contentLength);
  if (h.get('te') === 'trailers') out.te = 'trailers';
  return out;
}

const notResponseHeader = (k: string): boolean => isHopByHop(k) || k === 'server';

/** Response headers for an h2 downstream: hop-by-hop and framing fields dropped. */
export function h2ResponseHeaders(status: number, h: HeaderMap): OutgoingHttpHeaders {
  return toHeaderObject(h, { ':status': status }, notResponseHeader);
}

export function isTrailerSafe(name: string): boolean {
  return !isHopByHop(name) && name.charCodeAt(0) !== 58;
}

/** Name/value pairs of `h` for an HPACK block, minus `skip`; names lower-cased as HTTP/2 requires. */
function pushPairs(out: [string, string][], h: HeaderMap, skip: (name: string) => boolean): void {
  const kv = h.kv;
  for (let i = 0; i < kv.length; i += 2) {
    let k = kv[i]!;
    if (skip(k)) continue;
    // Filters may add mixed-case names; HTTP/2 field names are lower-case (RFC 9113 §8.2.1).
    if (k !== k.toLowerCase()) k = k.toLowerCase();
    out.push([k, kv[i + 1]!]);
  }
}

/**
 * A response head as an HPACK block for an H2Stream (src/h2): `:status` first, hop-by-hop and
 * framing fields dropped, `date` added when absent, `server` set, `content-length` when known.
 */
export function h2ResponseBlock(status: number, h: HeaderMap, date: string, server: string, contentLength: number): Buffer {
  const out: [string, string][] = [[':status', String(status)]];
  pushPairs(out, h, notResponseHeader);
  if (!h.has('date')) out.push(['date', date]);
  out.push(['server', server]);
  if (contentLength >= 0) out.push(['content-length', String(contentLength)]);
  return encodeHeaders(out);
}

/** Trailers as an HPACK block (pseudo-headers and hop-by-hop fields dropped). */
export function h2TrailersBlock(trailers: HeaderMap): Buffer {
  const out: [string, string][] = [];
  pushPairs(out, trailers, (k) => !isTrailerSafe(k));
  return encodeHeaders(out);
}
