/** A minimal HttpStream for the rate limit filter's unit tests. */
import type { HttpStream, LocalReplyOptions } from '../../../../src/filters/types.js';
import { HeaderMap } from '../../../../src/proxy/headers.js';
import { newStreamInfo } from '../../../../src/proxy/stream-info.js';

export interface Reply {
  status: number;
  body: string;
  opts?: LocalReplyOptions;
}

export function stream(o: { headers?: Record<string, string>; path?: string; route?: string; remote?: string } = {}): HttpStream & { replies: Reply[] } {
  const replies: Reply[] = [];
  const info = newStreamInfo();
  info.downstreamRemoteAddress = o.remote ?? '127.0.0.1';
  return {
    replies,
    info,
    requestHeaders: HeaderMap.from(Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]))),
    method: 'GET',
    path: o.path ?? '/',
    authority: 'a',
    isGrpc: false,
    routeName: o.route ?? 'r',
    clusterName: 'c',
    sendLocalReply: (status, body, opts) => replies.push({ status, body, opts }),
    continueRequest: () => {},
  };
}
