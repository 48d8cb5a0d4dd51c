/**
 * The one place that answers "where was this connection going?" for ORIGINAL_DST clusters.
 * Order: the socket's SO_ORIGINAL_DST (filled in by the interception layer when the native addon
 * is loaded), Envoy's `x-envoy-original-dst-host` header, then the Host header (port 80 when
 * absent). Inbound capture always delivers to the application's address.
 */
import type { ListenerKind } from '../config/snapshot.js';
import type { OriginalDestination, OriginalDstQuery } from './http/listener-runtime.js';

export function parseHostPort(v: string, defaultPort: number): OriginalDestination | null {
  if (v === '') return null;
  let host = v;
  let port = defaultPort;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return null;
    host = v.slice(1, end);
    const rest = v.slice(end + 1);
    if (rest.startsWith(':')) port = Number(rest.slice(1));
  } else {
    const c = v.lastIndexOf(':');
    if (c >= 0 && v.indexOf(':') === c) {
      host = v.slice(0, c);
      port = Number(v.slice(c + 1));
    }
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || host === '') return null;
  return { address: host, port };
}

export function resolveOriginalDestination(
  q: OriginalDstQuery,
  kind: ListenerKind,
  app: { address: string; port: number },
): OriginalDestination | null {
  if (kind === 'inbound-capture') {
    const port = q.originalDst?.port ?? parseHostPort(q.authority, app.port)?.port ?? app.port;
    return { address: app.address, port };
  }
  if (q.originalDst) return q.originalDst;
  const hdr = q.requestHeaders.get('x-envoy-original-dst-host');
  if (hdr !== undefined) return parseHostPort(hdr, 80);
  return parseHostPort(q.authority, 80);
}
