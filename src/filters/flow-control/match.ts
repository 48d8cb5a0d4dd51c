/**
 * A policy's `match:` compiled once into a predicate over the request's authority, path and
 * method. Hosts: exact, `*`, `*.suffix`, `prefix*`, compared without the port and case-blind.
 * Paths: prefix / exact / regex (whole path, query string cut off). Every list that is given must
 * have a match; an empty list matches anything.
 */
import type { PolicyMatch } from './config.js';

export type RequestMatcher = (authority: string, path: string, method: string) => boolean;

function hostOf(authority: string): string {
  let a = authority;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    a = end > 0 ? a.slice(0, end + 1) : a;
  } else {
    const colon = a.lastIndexOf(':');
    if (colon >= 0 && a.indexOf(':') === colon) a = a.slice(0, colon);
  }
  return a.toLowerCase();
}

function hostMatcher(pattern: string): (host: string) => boolean {
  const p = pattern.toLowerCase();
  if (p === '*') return () => true;
  if (p.startsWith('*')) {
    const suffix = p.slice(1);
    return (h) => h.length > suffix.length && h.endsWith(suffix);
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (h) => h.length > prefix.length && h.startsWith(prefix);
  }
  return (h) => h === p;
}

function pathMatcher(m: PolicyMatch['paths'][number]): (path: string) => boolean {
  if (m.prefix !== undefined) {
    const prefix = m.prefix;
    return (p) => p.startsWith(prefix);
  }
  if (m.exact !== undefined) {
    const exact = m.exact;
    return (p) => p === exact;
  }
  const re = new RegExp(`^(?:${m.regex ?? ''})$`);
  return (p) => re.test(p);
}

export function compileMatch(m: PolicyMatch): RequestMatcher {
  const hosts = m.hosts.map(hostMatcher);
  const paths = m.paths.map(pathMatcher);
  const methods = new Set(m.methods);
  return (authority, rawPath, method) => {
    if (methods.size > 0 && !methods.has(method)) return false;
    if (paths.length > 0) {
      const q = rawPath.indexOf('?');
      const path = q < 0 ? rawPath : rawPath.slice(0, q);
      if (!paths.some((f) => f(path))) return false;
    }
    if (hosts.length > 0) {
      const host = hostOf(authority);
      if (!hosts.some((f) => f(host))) return false;
    }
    return true;
  };
}
