/**
 * Protocol sniffing on capture listeners: is the first packet an HTTP/1.x request line, or the
 * HTTP/2 client connection preface (h2c with prior knowledge, e.g. gRPC)? TLS ClientHello
 * detection arrives with issue "Transparent interception"; until then it is proxied as opaque
 * TCP, which is correct.
 */
const METHODS = ['GET ', 'POST ', 'PUT ', 'DELETE ', 'HEAD ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE '];

export function looksLikeHttp1(d: Buffer): boolean {
  if (d.length < 4) return false;
  const start = d.toString('latin1', 0, Math.min(d.length, 8));
  for (const m of METHODS) {
    if (start.length >= m.length ? start.startsWith(m) : m.startsWith(start)) return true;
  }
  return false;
}

/** RFC 9113 §3.4: every HTTP/2 connection starts with these 24 octets. */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** True when `d` starts with the complete HTTP/2 client preface. */
export function looksLikeHttp2Preface(d: Buffer): boolean {
  return d.length >= HTTP2_PREFACE.length && d.compare(HTTP2_PREFACE, 0, HTTP2_PREFACE.length, 0, HTTP2_PREFACE.length) === 0;
}

/** True when `d` is a non-empty proper prefix of the preface: wait for more bytes before deciding. */
export function maybePartialHttp2Preface(d: Buffer): boolean {
  return d.length > 0 && d.length < HTTP2_PREFACE.length && d.compare(HTTP2_PREFACE, 0, d.length, 0, d.length) === 0;
}
