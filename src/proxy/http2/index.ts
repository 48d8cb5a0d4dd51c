export { Http2Listener } from './server.js';
export { Http2Stream, type H2ConnectionInfo } from './stream.js';
export { H2HostPool, H2UpstreamRequest, type H2UpstreamHandler } from './upstream-pool.js';
export { headerMapFromRaw, headerMapFromObject, h2RequestHeaders, h2ResponseHeaders, synthRequestHead, synthResponseHead } from './headers.js';
export { redirectLocation } from '../router/redirect.js';
