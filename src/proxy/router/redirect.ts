/**
 * Envoy's redirect URL (RouteEntryImplBase::newUri), `scheme://host[:portRedirect]path`, as a
 * pure function of plain data; used by the HTTP/1 and HTTP/2 streams.
 */
import type { RedirectActionSpec } from '../../config/snapshot.js';
import { splitPath } from './route-table.js';

/** Index of the ':' that starts the port of an authority ("a:80", "[::1]:80"), or -1. */
function portStart(authority: string): number {
  if (authority.startsWith('[')) {
    const end = authority.lastIndexOf(']:');
    return end < 0 ? -1 : end + 1;
  }
  return authority.lastIndexOf(':');
}

export function redirectLocation(a: RedirectActionSpec, requestPath: string, authority: string, requestScheme: string, routePrefix: string | undefined): string {
  const [path, query] = splitPath(requestPath);
  const scheme = a.schemeRedirect ?? 'http';
  let host = a.hostRedirect;
  if (host === undefined) {
    host = authority;
    const p = portStart(host);
    if (p >= 0) {
      const requestPort = host.slice(p);
      const changed = scheme !== requestScheme;
      const remove =
        a.portRedirect !== undefined || (changed && ((requestScheme === 'https' && requestPort === ':443') || (requestScheme === 'http' && requestPort === ':80')));
      if (remove) host = host.slice(0, p);
    }
  }
  const port = a.portRedirect !== undefined ? `:${a.portRedirect}` : '';
  let newPath = path;
  let q = a.stripQuery || query === '' ? '' : `?${query}`;
  if (a.pathRedirect !== undefined) {
    const qi = a.pathRedirect.indexOf('?');
    if (qi >= 0) {
      newPath = a.pathRedirect.slice(0, qi);
      q = a.pathRedirect.slice(qi);
    } else newPath = a.pathRedirect;
  } else if (a.prefixRewrite !== undefined && routePrefix !== undefined) newPath = a.prefixRewrite + path.slice(routePrefix.length);
  if (!newPath.startsWith('/')) newPath = `/${newPath}`;
  return `${scheme}://${host}${port}${newPath}${q}`;
}
