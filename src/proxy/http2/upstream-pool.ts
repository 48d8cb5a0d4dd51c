/**
 * HTTP/2 (h2c, prior knowledge) sessions to one upstream host. One session multiplexes many
 * streams; a new session opens only when every live one is at the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's maxConnections allows it). A session that
 * received GOAWAY, closed, or reached maxRequestsPerConnection takes no new streams; its streams
 * in flight finish. RST_STREAM on one stream fails that request only.
 *
 * The request side is a narrow object (write/end/abort/pause/resume); the response goes to an
 * H2UpstreamHandler, never to the Router itself.
 */
import net from 'node:net';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { CapaError } from '../../errors.js';
import type { HeaderMap } from '../headers.js';
import type { ResponseHead } from '../http1/index.js';
import type { Host } from '../cluster/host.js';
import type { PoolOptions } from '../upstream/pool.js';
import { headerMapFromObject, synthResponseHead } from './headers.js';

export interface H2UpstreamHandler {
  onResponseHead(head: ResponseHead): void;
  onResponseData(chunk: Buffer): void;
  onResponseTrailers(trailers: HeaderMap): void;
  onResponseEnd(): void;
  onError(err: CapaError, headReceived: boolean): void;
}

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;
/** Streams per session before the peer's SETTINGS arrived (RFC 9113 recommends ≥ 100). */
const DEFAULT_MAX_STREAMS = 100;

interface SessionEntry {
  readonly session: ClientHttp2Session;
  connected: boolean;
  usable: boolean;
  active: number;
  requests: number;
  failure: string;
}

// === impl H2UpstreamRequest ===

/** The H2UpstreamRequest a client stream belongs to (shared listeners below find it through this). */
const kRequest = Symbol('capa.h2UpstreamRequest');
type OwnedStream = ClientHttp2Stream & { [kRequest]?: H2UpstreamRequest };

// One set of listener functions for every stream (`this` is the stream): no closures per request.
function onStreamResponse(this: OwnedStream, headers: IncomingHttpHeaders, flags: number): void {
  this[kRequest]?.onResponse(headers, flags);
}
function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this[kRequest]?.handler?.onResponseData(chunk);
}
function onStreamTrailers(this: OwnedStream, trailers: IncomingHttpHeaders): void {
  this[kRequest]?.handler?.onResponseTrailers(headerMapFromObject(trailers));
}
function onStreamEnd(this: OwnedStream): void {
  this[kRequest]?.onEnd();
}
function onStreamError(): void {
  /* 'close' follows */
}
function onStreamClose(this: OwnedStream): void {
  this[kRequest]?.onClose();
}

/** request() options: node copies them, so two shared objects serve every stream. */
const WITH_BODY = { endStream: false } as const;
const WITHOUT_BODY = { endStream: true } as const;

export class H2UpstreamRequest {
  private stream: ClientHttp2Stream | null;
  /** Where the response goes; null once it ended, failed or was abandoned. */
  handler: H2UpstreamHandler | null;
  private headReceived = false;
  private released = false;
  private readonly entry: SessionEntry | null;
  private readonly pool: H2HostPool | null;
  private readonly method: string;

  /**
   * `stream` null: the request failed before it started; `failure` reaches the handler on a
   * microtask. `pool` is told when the stream stops counting against its session.
   */
  constructor(stream: ClientHttp2Stream | null, entry: SessionEntry | null, handler: H2UpstreamHandler, method: string, pool: H2HostPool | null, failure?: CapaError) {
    this.stream = stream;
    this.handler = handler;
    this.entry = entry;
    this.pool = pool;
    this.method = method;
    if (stream === null) {
      queueMicrotask(() => this.fail(failure ?? new CapaError('CAPA_ERR_UPSTREAM_RESET', 'upstream HTTP/2 stream could not be opened')));
      return;
    }
    (stream as OwnedStream)[kRequest] = this;
    stream.on('response', onStreamResponse);
    stream.on('data', onStreamData);
    stream.on('trailers', onStreamTrailers);
    stream.on('end', onStreamEnd);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
  }

  /** The stream stops counting against its session (once). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    if (this.pool !== null && this.entry !== null) this.pool.released(this.entry);
  }

  /** @internal 'response' on the stream. */
  onResponse(headers: IncomingHttpHeaders, flags: number): void {
    const h = this.handler;
    if (h === null) return;
    this.headReceived = true;
    const status = Number(headers[':status'] ?? 0);
    h.onResponseHead(synthResponseHead(status, headerMapFromObject(headers), (flags & NGHTTP2_FLAG_END_STREAM) !== 0, this.method));
  }

  /** @internal 'end' on the stream: the response is complete. */
  onEnd(): void {
    const h = this.handler;
    this.handler = null;
    const stream = this.stream!;
    // The response is complete; a request body still being sent is not wanted any more.
    if (!stream.writableEnded && !stream.closed) stream.close(NGHTTP2_CANCEL);
    this.release();
    h?.onResponseEnd();
  }

  /** @internal 'close' on the stream. */
  onClose(): void {
    this.release();
    const stream = this.stream!;
    (stream as OwnedStream)[kRequest] = undefined;
    if (this.handler === null) return;
    const e = this.entry!;
    if (!e.connected) {
      this.fail(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', `upstream connect error: ${e.failure || 'HTTP/2 session closed before it connected'}`));
      return;
    }
    const code = stream.rstCode ?? 0;
    this.fail(new CapaError('CAPA_ERR_UPSTREAM_RESET', `upstream reset the HTTP/2 stream (code ${code})${this.headReceived ? ' in the middle of the response' : ' before the response head'}`));
  }

  /** True when the session this request rides on had carried other requests (stale-connection replay). */
  get reused(): boolean {
    return this.entry !== null && this.entry.requests > 1;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === null || s.destroyed || s.writableEnded) return true;
    return s.write(chunk);
  }

  end(): void {
    const s = this.stream;
    if (s !== null && !s.destroyed && !s.writableEnded) s.end();
  }

  onceDrain(cb: () => void): void {
    this.stream?.once('drain', cb);
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  /** Abandon the exchange: RST_STREAM(CANCEL) on this stream only; the session stays. */
  abort(): void {
    this.handler = null;
    const s = this.stream;
    if (s !== null && !s.closed && !s.destroyed) s.close(NGHTTP2_CANCEL);
  }

  private fail(err: CapaError): void {
    const h = this.handler;
    this.handler = null;
    h?.onError(err, this.headReceived);
  }
}

// === impl H2HostPool ===

export class H2HostPool {
  readonly host: Host;
  private readonly opts: PoolOptions;
  private readonly sessions: SessionEntry[] = [];
  private closed = false;

  constructor(host: Host, opts: PoolOptions) {
    this.host = host;
    this.opts = opts;
  }

  /** Live sessions (connected or connecting). */
  get size(): number {
    return this.sessions.length;
  }

  /** Open a stream; failures (connect, overflow, reset) reach `handler.onError`. */
  request(headers: OutgoingHttpHeaders, endStream: boolean, handler: H2UpstreamHandler): H2UpstreamRequest {
    const method = String(headers[':method'] ?? 'GET');
    const e = this.closed ? null : this.pick();
    if (e === null) {
      const res = this.opts.resources;
      if (!this.closed) res.overflowCx++;
      const err = this.closed
        ? new CapaError('CAPA_ERR_UPSTREAM_CONNECT', 'cluster was removed')
        : new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `cluster connection limit (maxConnections ${res.limits.maxConnections}) reached`);
      return new H2UpstreamRequest(null, null, handler, method, null, err);
    }
    let stream: ClientHttp2Stream;
    try {
      stream = e.session.request(headers, endStream ? WITHOUT_BODY : WITH_BODY);
    } catch (err) {
      e.usable = false;
      return new H2UpstreamRequest(null, e, handler, method, null, new CapaError('CAPA_ERR_UPSTREAM_RESET', `cannot open an HTTP/2 stream: ${(err as Error).message}`));
    }
    e.active++;
    e.requests++;
    if (e.active === 1) e.session.ref();
    const max = this.opts.settings.maxRequestsPerConnection;
    if (max > 0 && e.requests >= max) this.retire(e);
    return new H2UpstreamRequest(stream, e, handler, method, this);
  }

  private pick(): SessionEntry | null {
    let best: SessionEntry | null = null;
    for (const e of this.sessions) {
      if (!e.usable) continue;
      const limit = e.connected ? (e.session.remoteSettings.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS) : DEFAULT_MAX_STREAMS;
      if (e.active < limit) return e;
      if (best === null || e.active < best.active) best = e;
    }
    const res = this.opts.resources;
    if (res.cxActive < res.limits.maxConnections) return this.connect();
    // Every session is full and no new one may open: nghttp2 queues the stream until one ends.
    return best;
  }

  private connect(): SessionEntry {
    const host = this.host;
    const res = this.opts.resources;
    res.cxActive++;
    host.stats.cxTotal++;
    host.stats.cxActive++;
    const local = this.opts.bindAddress;
    const bind = local !== '' && net.isIP(local) === net.isIP(host.address) ? { localAddress: local } : {};
    const session = http2.connect(`http://${host.key}`, { settings: { enablePush: false }, peerMaxConcurrentStreams: DEFAULT_MAX_STREAMS, ...bind });
    const e: SessionEntry = { session, connected: false, usable: true, active: 0, requests: 0, failure: '' };
    this.sessions.push(e);
    const timer = setTimeout(() => {
      if (e.connected) return;
      e.failure = `connect timeout after ${this.opts.connectTimeoutMs}ms to ${host.key}`;
      session.destroy();
    }, this.opts.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      e.connected = true;
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      if (!e.connected && e.failure === '') e.failure = `${err.code ?? err.message} connecting to ${host.key}`;
    });
    session.on('goaway', () => {
      e.usable = false;
    });
    const idle = this.opts.settings.idleTimeoutMs;
    if (idle > 0) {
      session.setTimeout(idle, () => {
        if (e.active === 0) this.retire(e);
      });
    }
    session.once('close', () => {
      clearTimeout(timer);
      e.usable = false;
      const i = this.sessions.indexOf(e);
      if (i >= 0) this.sessions.splice(i, 1);
      res.cxActive--;
      host.stats.cxActive--;
      if (!e.connected) host.stats.cxConnectFail++;
    });
    return e;
  }

  /** @internal A stream on `e` is done (H2UpstreamRequest.release). */
  released(e: SessionEntry): void {
    e.active--;
    if (e.active > 0) return;
    if (!e.usable || this.closed) this.retire(e);
    // An idle session must not keep the process alive.
    else if (!e.session.destroyed) e.session.unref();
  }

  /** No new streams; GOAWAY now, close once the streams in flight are done. */
  private retire(e: SessionEntry): void {
    e.usable = false;
    if (!e.session.closed && !e.session.destroyed) e.session.close();
  }

  close(): void {
    this.closed = true;
    for (const e of this.sessions.slice()) this.retire(e);
  }
}
