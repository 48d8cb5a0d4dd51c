/**
 * The bucket key of a request, per `by:` (see config.ts). Built once per limit; the returned
 * function runs per request and only reads what the stream already has.
 */
import type { HttpStream } from '../types.js';
import type { KeySpec } from './config.js';

/** Longer values are cut, so a client cannot make the key store hold arbitrary large keys. */
export const MAX_KEY_VALUE = 256;

const clip = (v: string): string => (v.length > MAX_KEY_VALUE ? v.slice(0, MAX_KEY_VALUE) : v);

export type KeyOf = (s: HttpStream) => string;

export function keyExtractor(by: KeySpec): KeyOf {
  switch (by.kind) {
    case 'global':
      return () => '*';
    case 'header': {
      const name = by.name;
      // '=' marks a present header, so a missing one ('') never shares a bucket with a value.
      return (s) => {
        const v = s.requestHeaders.get(name);
        return v === undefined ? '' : `=${clip(v)}`;
      };
    }
    case 'sourceIp':
      return (s) => {
        const a = s.info.downstreamRemoteAddress;
        return a.startsWith('::ffff:') ? a.slice(7) : a;
      };
    case 'path':
      return (s) => {
        const p = s.path;
        const q = p.indexOf('?');
        return clip(q < 0 ? p : p.slice(0, q));
      };
    case 'route':
      return (s) => s.routeName;
  }
}

/** A per-route override keeps each route's buckets apart even when routes share a limiter. */
export function perRouteKey(keyOf: KeyOf): KeyOf {
  return (s) => `${s.routeName}|${keyOf(s)}`;
}
