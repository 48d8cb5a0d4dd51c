/**
 * Protocol sniffing on capture listeners: is the first packet an HTTP/1.x request line?
 * (HTTP/2 prior knowledge and TLS ClientHello detection arrive with issue "Transparent
 * interception"; until then they are proxied as opaque TCP, which is correct for both.)
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
