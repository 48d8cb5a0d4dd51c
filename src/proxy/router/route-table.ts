/**
 * A RouteConfiguration compiled once per Snapshot (and per listener, because each route carries
 * that listener's reduced filter chain): virtual host lookup by authority, then the first route
 * whose match accepts the request. Regexes are compiled here, never per request.
 */
import type {
  HeaderMatcherSpec,
  QueryParameterMatcherSpec,
  RouteConfigSpec,
  RouteSpec,
  VirtualHostSpec,
} from '../../config/snapshot.js';
import type { HeaderMap } from '../headers.js';

export interface CompiledRoute<C> {
  readonly spec: RouteSpec;
  readonly vhost: CompiledVirtualHost<C>;
  readonly name: string;
  /** Whatever the caller attached per route (the reduced filter chain, parsed rewrites...). */
  readonly data: C;
  matches(method: string, path: string, query: string, headers: HeaderMap): boolean;
}

export interface CompiledVirtualHost<C> {
  readonly spec: VirtualHostSpec;
  readonly routes: CompiledRoute<C>[];
}

type Pred = (method: string, path: string, query: string, headers: HeaderMap) => boolean;

/** Splits "/a/b?x=1" into path and query (query without '?'), fragment dropped. */
export function splitPath(target: string): [string, string] {
  const q = target.indexOf('?');
  const h = target.indexOf('#');
  if (q < 0 && h < 0) return [target, ''];
  if (q < 0) return [target.slice(0, h), ''];
  return [target.slice(0, q), h > q ? target.slice(q + 1, h) : target.slice(q + 1)];
}

function anchored(re: string, flags = ''): RegExp {
  return new RegExp(`^(?:${re})$`, flags);
}

function stringPred(m: { exact?: string; prefix?: string; suffix?: string; contains?: string; safeRegex?: string }): (v: string) => boolean {
  if (m.exact !== undefined) {
    const e = m.exact;
    return (v) => v === e;
  }
  if (m.prefix !== undefined) {
    const p = m.prefix;
    return (v) => v.startsWith(p);
  }
  if (m.suffix !== undefined) {
    const s = m.suffix;
    return (v) => v.endsWith(s);
  }
  if (m.contains !== undefined) {
    const c = m.contains;
    return (v) => v.includes(c);
  }
  if (m.safeRegex !== undefined) {
    const re = anchored(m.safeRegex);
    return (v) => re.test(v);
  }
  return () => true;
}

function headerPred(m: HeaderMatcherSpec): Pred {
  const name = m.name.toLowerCase();
  let base: (h: HeaderMap) => boolean;
  const presenceOnly = m.present !== undefined && isPresenceOnly(m);
  if (presenceOnly) {
    const want = m.present;
    base = (h) => h.has(name) === want;
  } else {
    const p = stringPred(m);
    // Envoy matches a multi-valued header against the values joined with ','.
    base = (h) => {
      const all = h.getAll(name);
      if (all.length === 0) return false;
      return p(all.length === 1 ? all[0]! : all.join(','));
    };
  }
  if (!m.invert) return (_m, _p, _q, h) => base(h);
  if (presenceOnly) return (_m, _p, _q, h) => !base(h);
  // Envoy: a string matcher never matches an absent header, inverted or not (invert_match
  // flips the result for a present header only; treat_missing_header_as_empty is not supported).
  return (_m, _p, _q, h) => h.has(name) && !base(h);
}

function isPresenceOnly(m: HeaderMatcherSpec): boolean {
  return m.exact === undefined && m.prefix === undefined && m.suffix === undefined && m.contains === undefined && m.safeRegex === undefined;
}

function parseQuery(q: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!q) return out;
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    let dk = k;
    let dv = v;
    try {
      dk = decodeURIComponent(k.replace(/\+/g, ' '));
      dv = decodeURIComponent(v.replace(/\+/g, ' '));
    } catch {
      /* keep raw on bad escapes */
    }
    if (!out.has(dk)) out.set(dk, dv);
  }
  return out;
}

function queryPreds(ms: readonly QueryParameterMatcherSpec[]): Pred | null {
  if (ms.length === 0) return null;
  const checks = ms.map((m) => {
    const p = m.exact !== undefined || m.prefix !== undefined || m.safeRegex !== undefined ? stringPred(m) : null;
    const present = m.present ?? true;
    return (q: Map<string, string>) => {
      const v = q.get(m.name);
      if (p === null) return (v !== undefined) === present;
      return v !== undefined && p(v);
    };
  });
  return (_m, _p, query) => {
    const q = parseQuery(query);
    for (const c of checks) if (!c(q)) return false;
    return true;
  };
}

function pathPred(spec: RouteSpec): Pred {
  const m = spec.match;
  const cs = m.caseSensitive;
  if (m.path !== undefined) {
    const p = cs ? m.path : m.path.toLowerCase();
    return cs ? (_m, path) => path === p : (_m, path) => path.toLowerCase() === p;
  }
  if (m.safeRegex !== undefined) {
    const re = anchored(m.safeRegex, cs ? '' : 'i');
    return (_m, path) => re.test(path);
  }
  const prefix = m.prefix ?? '/';
  if (prefix === '/' || prefix === '') return () => true;
  const p = cs ? prefix : prefix.toLowerCase();
  return cs ? (_m, path) => path.startsWith(p) : (_m, path) => path.toLowerCase().startsWith(p);
}

function compileRouteMatch(spec: RouteSpec): CompiledRoute<unknown>['matches'] {
  const preds: Pred[] = [pathPred(spec)];
  if (spec.match.methods.length > 0) {
    const methods = new Set(spec.match.methods.map((x) => x.toUpperCase()));
    preds.push((method) => methods.has(method));
  }
  for (const h of spec.match.headers) preds.push(headerPred(h));
  const q = queryPreds(spec.match.queryParameters);
  if (q) preds.push(q);
  if (preds.length === 1) return preds[0]!;
  return (method, path, query, headers) => {
    for (let i = 0; i < preds.length; i++) if (!preds[i]!(method, path, query, headers)) return false;
    return true;
  };
}

export class RouteTable<C> {
  readonly name: string;
  private readonly exact = new Map<string, CompiledVirtualHost<C>>();
  /** [suffix-with-dot, vhost], longest first (Envoy: longest wildcard wins). */
  private readonly suffixes: [string, CompiledVirtualHost<C>][] = [];
  private readonly prefixes: [string, CompiledVirtualHost<C>][] = [];
  private wildcard: CompiledVirtualHost<C> | null = null;
  readonly virtualHosts: CompiledVirtualHost<C>[] = [];

  constructor(spec: RouteConfigSpec, attach: (route: RouteSpec, vhost: VirtualHostSpec) => C) {
    this.name = spec.name;
    for (const vh of spec.virtualHosts) {
      const cvh: CompiledVirtualHost<C> = { spec: vh, routes: [] };
      for (const r of vh.routes) {
        const matches = compileRouteMatch(r);
        cvh.routes.push({ spec: r, vhost: cvh, name: r.name, data: attach(r, vh), matches });
      }
      this.virtualHosts.push(cvh);
      for (const d of vh.domains) {
        const dom = d.toLowerCase();
        if (dom === '*') this.wildcard ??= cvh;
        else if (dom.startsWith('*')) this.suffixes.push([dom.slice(1), cvh]);
        else if (dom.endsWith('*')) this.prefixes.push([dom.slice(0, -1), cvh]);
        else if (!this.exact.has(dom)) this.exact.set(dom, cvh);
      }
    }
    this.suffixes.sort((a, b) => b[0].length - a[0].length);
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  /** Envoy's order: exact, longest suffix wildcard, longest prefix wildcard, then '*'. The port is tried with and without. */
  selectVirtualHost(authority: string): CompiledVirtualHost<C> | null {
    const host = authority.toLowerCase();
    const v = this.lookup(host);
    if (v) return v;
    const colon = host.lastIndexOf(':');
    if (colon > 0 && host.indexOf(']') < colon) {
      const noPort = this.lookup(host.slice(0, colon));
      if (noPort) return noPort;
    }
    return this.wildcard;
  }

  private lookup(host: string): CompiledVirtualHost<C> | null {
    const e = this.exact.get(host);
    if (e) return e;
    for (const [s, vh] of this.suffixes) if (host.length > s.length && host.endsWith(s)) return vh;
    for (const [p, vh] of this.prefixes) if (host.length > p.length && host.startsWith(p)) return vh;
    return null;
  }

  /** First route of the selected virtual host that matches, or null. */
  match(authority: string, method: string, path: string, query: string, headers: HeaderMap): CompiledRoute<C> | null {
    const vh = this.selectVirtualHost(authority);
    if (!vh) return null;
    const routes = vh.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.matches(method, path, query, headers)) return r;
    }
    return null;
  }
}
