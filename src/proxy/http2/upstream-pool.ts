/**
 * HTTP/2 (h2c, prior knowledge) sessions to one upstream host. One session multiplexes many
 * streams; a new session opens only when every live one is at the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS (and the cluster's maxConnections allows it); when none may
 * open, the stream queues on the least busy session. A session that received GOAWAY, closed, or
 * reached maxRequestsPerConnection takes no new streams; its streams in flight finish.
 * RST_STREAM on one stream fails that request only.
 *
 * A peer that announces MAX_CONCURRENT_STREAMS 0 takes no streams at all: its session gets none
 * (and closes once idle), and a stream that no session can take and no new connection may
 * carry fails at once — UO, "refuses new streams" — instead of waiting for the route timeout.
 *
 * The request side is a narrow object (write/end/abort/pause/resume); the response goes to an
 * H2UpstreamHandler, never to the Router itself.
 */
import net from 'node:net';
import type { OutgoingHttpHeaders } from 'node:http2';
import { CapaError } from '../../errors.js';
import type { HeaderMap } from '../headers.js';
import type { ResponseHead } from '../http1/index.js';
import type { Host } from '../cluster/host.js';
import type { PoolOptions } from '../upstream/pool.js';
import { H2ClientConnection, ErrorCode, type H2ClientStream, type StreamAbort } from '../../h2/client-connection.js';
import { encodeHeaders } from '../../h2/hpack.js';
import { h2TrailersBlock, headerMapFromRaw, synthResponseHead } from './headers.js';

export interface H2UpstreamHandler {
  onResponseHead(head: ResponseHead): void;
  onResponseData(chunk: Buffer): void;
  onResponseTrailers(trailers: HeaderMap): void;
  onResponseEnd(): void;
  onError(err: CapaError, headReceived: boolean): void;
}

/** Streams per session before the peer's SETTINGS arrived (RFC 9113 recommends ≥ 100). */
const DEFAULT_MAX_STREAMS = 100;

interface SessionEntry {
  readonly conn: H2ClientConnection;
  connected: boolean;
  /** The peer's SETTINGS arrived (its MAX_CONCURRENT_STREAMS is known). */
  settled: boolean;
  usable: boolean;
  active: number;
  requests: number;
  failure: string;
}

/** The request head as an HPACK block: pseudo-headers first (as h2RequestHeaders orders them). */
function requestBlock(headers: OutgoingHttpHeaders): Buffer {
  const pairs: [string, string][] = [];
  for (const key of Object.keys(headers)) {
    const v = headers[key];
    if (v === undefined) continue;
    // Filters may add mixed-case names; HTTP/2 field names are lower-case (RFC 9113 §8.2.1).
    const k = key.toLowerCase();
    if (Array.isArray(v)) for (const x of v) pairs.push([k, x]);
    else pairs.push([k, String(v)]);
  }
  return encodeHeaders(pairs);
}

/** The session's peer takes no streams (it announced SETTINGS_MAX_CONCURRENT_STREAMS 0). */
function refusing(e: SessionEntry): boolean {
  return e.conn.peerMaxStreams === 0;
}

/** The name of an HTTP/2 error code, for messages. */
function codeName(code: number): string {
  for (const k of Object.keys(ErrorCode) as (keyof typeof ErrorCode)[]) if (ErrorCode[k] === code) return k;
  return `code ${code}`;
}

/** The `:status` of a decoded response head (0 when absent). */
function statusOf(h: readonly string[]): number {
  for (let i = 0; i < h.length; i += 2) if (h[i] === ':status') return Number(h[i + 1]);
  return 0;
}

// === impl H2UpstreamRequest ===

// One set of callbacks for every stream, bound through `owner`: no closures per request.
type OwnedStream = H2ClientStream & { owner?: H2UpstreamRequest };

function onStreamResponse(this: OwnedStream, headers: string[], endStream: boolean): void {
  this.owner?.onResponse(headers, endStream);
}
function onStreamData(this: OwnedStream, chunk: Buffer): void {
  this.owner?.handler?.onResponseData(chunk);
}
function onStreamTrailers(this: OwnedStream, trailers: string[]): void {
  this.owner?.handler?.onResponseTrailers(headerMapFromRaw(trailers));
}
function onStreamEnd(this: OwnedStream): void {
  this.owner?.onEnd();
}
function onStreamAbort(this: OwnedStream, why: StreamAbort, code: number): void {
  this.owner?.onAbort(why, code);
}
function onStreamDrain(this: OwnedStream): void {
  this.owner?.onDrain();
}

export class H2UpstreamRequest {
  private stream: OwnedStream | null;
  /** Where the response goes; null once it ended, failed or was abandoned. */
  handler: H2UpstreamHandler | null;
  private headReceived = false;
  private released = false;
  private readonly entry: SessionEntry | null;
  private readonly pool: H2HostPool | null;
  private readonly method: string;
  /** onceDrain() callbacks waiting for the stream's onDrain. */
  private drainWaiters: (() => void)[] | null = null;

  /**
   * `stream` null: the request failed before it started; `failure` reaches the handler on a
   * microtask. `pool` is told when the stream stops counting against its session.
   */
  constructor(stream: H2ClientStream | null, entry: SessionEntry | null, handler: H2UpstreamHandler, method: string, pool: H2HostPool | null, failure?: CapaError) {
    this.stream = stream;
    this.handler = handler;
    this.entry = entry;
    this.pool = pool;
    this.method = method;
    if (stream === null) {
      queueMicrotask(() => this.fail(failure ?? new CapaError('CAPA_ERR_UPSTREAM_RESET', 'upstream HTTP/2 stream could not be opened')));
      return;
    }
    const s = stream as OwnedStream;
    s.owner = this;
    s.onResponse = onStreamResponse;
    s.onData = onStreamData;
    s.onTrailers = onStreamTrailers;
    s.onEnd = onStreamEnd;
    s.onAbort = onStreamAbort;
    s.onDrain = onStreamDrain;
  }

  /** The stream stops counting against its session (once). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    const s = this.stream;
    if (s !== null) s.owner = undefined;
    this.drainWaiters = null;
    if (this.pool !== null && this.entry !== null) this.pool.released(this.entry);
  }

  /** @internal The final response head. */
  onResponse(headers: string[], endStream: boolean): void {
    const h = this.handler;
    if (h === null) return;
    this.headReceived = true;
    h.onResponseHead(synthResponseHead(statusOf(headers), headerMapFromRaw(headers), endStream, this.method));
  }

  /** @internal The response is complete. */
  onEnd(): void {
    const h = this.handler;
    this.handler = null;
    const s = this.stream!;
    // A request body still being sent is not wanted any more.
    if (!s.localEnded && !s.closed) s.reset(ErrorCode.CANCEL);
    this.release();
    h?.onResponseEnd();
  }

  /** @internal The stream was reset, or the connection went away, before the exchange completed. */
  onAbort(why: StreamAbort, code: number): void {
    this.release();
    if (this.handler === null) return;
    const e = this.entry!;
    if (!e.connected) {
      this.fail(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', `upstream connect error: ${e.failure || 'HTTP/2 session closed before it connected'}`));
      return;
    }
    const when = this.headReceived ? ' in the middle of the response' : ' before the response head';
    if (why === 'protocol') {
      // We reset the stream: the upstream broke HTTP/2 on it (e.g. DATA before HEADERS).
      this.fail(new CapaError('CAPA_ERR_UPSTREAM_PROTOCOL', `upstream sent a malformed HTTP/2 response; stream reset with ${codeName(code)}${when}`));
      return;
    }
    if (why === 'reset' && code === ErrorCode.REFUSED_STREAM && !this.headReceived && refusing(e)) {
      this.fail(new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `upstream ${this.pool?.host.key ?? ''} refuses new HTTP/2 streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)`));
      return;
    }
    const what = why === 'reset' ? `upstream reset the HTTP/2 stream (${codeName(code)})` : 'upstream HTTP/2 connection closed';
    this.fail(new CapaError('CAPA_ERR_UPSTREAM_RESET', `${what}${when}`));
  }

  /** @internal */
  onDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = null;
    if (w !== null) for (const cb of w) cb();
  }

  /** True when the session this request rides on had carried other requests (stale-connection replay). */
  get reused(): boolean {
    return this.entry !== null && this.entry.requests > 1;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === null || s.closed || s.localEnded) return true;
    return s.write(chunk);
  }

  /** Ends the request: with `trailers` as a trailers HEADERS frame (END_STREAM) when any are left after filtering. */
  end(trailers: HeaderMap | null = null): void {
    const s = this.stream;
    if (s === null || s.closed || s.localEnded) return;
    const block = trailers === null ? null : h2TrailersBlock(trailers);
    s.end(block !== null && block.length > 0 ? block : undefined);
  }

  onceDrain(cb: () => void): void {
    if (this.stream === null || this.released) return;
    (this.drainWaiters ??= []).push(cb);
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
    if (s !== null && !s.closed) s.reset(ErrorCode.CANCEL);
    this.release();
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
      const limit = `cluster connection limit (maxConnections ${res.limits.maxConnections}) reached`;
      const err = this.closed
        ? new CapaError('CAPA_ERR_UPSTREAM_CONNECT', 'cluster was removed')
        : this.sessions.some(refusing)
          ? new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `upstream ${this.host.key} refuses new HTTP/2 streams (SETTINGS_MAX_CONCURRENT_STREAMS 0) and the ${limit}`)
          : new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', limit);
      return new H2UpstreamRequest(null, null, handler, method, null, err);
    }
    let stream: H2ClientStream;
    try {
      stream = e.conn.request(requestBlock(headers), endStream);
    } catch (err) {
      e.usable = false;
      return new H2UpstreamRequest(null, e, handler, method, null, new CapaError('CAPA_ERR_UPSTREAM_RESET', `cannot open an HTTP/2 stream: ${(err as Error).message}`));
    }
    e.active++;
    e.requests++;
    if (e.active === 1) e.conn.socket.ref();
    const max = this.opts.settings.maxRequestsPerConnection;
    if (max > 0 && e.requests >= max) this.retire(e);
    return new H2UpstreamRequest(stream, e, handler, method, this);
  }

  /** A session with room; else a new one if the cluster allows; else the least busy to queue on; null if none can take streams. */
  private pick(): SessionEntry | null {
    let best: SessionEntry | null = null;
    for (const e of this.sessions) {
      if (!e.usable || !e.conn.usable) continue;
      const limit = e.settled ? e.conn.peerMaxStreams : DEFAULT_MAX_STREAMS;
      if (e.active < limit) return e;
      // A peer at MAX_CONCURRENT_STREAMS 0 frees no slot by finishing streams: never queue there.
      if (limit > 0 && (best === null || e.active < best.active)) best = e;
    }
    const res = this.opts.resources;
    if (res.cxActive < res.limits.maxConnections) return this.connect();
    // Every session is busy and no new one may open: the connection queues the stream until one ends.
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
    const socket = net.connect({ host: host.address, port: host.port, ...bind });
    let e: SessionEntry | null = null;
    // Before the connection's own listener: the failure must be known when its streams abort.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (e !== null && !e.connected && e.failure === '') e.failure = `${err.code ?? err.message} connecting to ${host.key}`;
    });
    const conn = new H2ClientConnection(socket, {
      onSettings: () => {
        if (e === null) return;
        e.settled = true;
        // Takes no streams and carries none: close it, so it does not hold a connection slot.
        if (e.active === 0 && refusing(e)) this.retire(e);
      },
      onGoAway: () => {
        if (e !== null) e.usable = false;
      },
      onClose: () => this.closedSession(e!, timer),
    });
    e = { conn, connected: false, settled: false, usable: true, active: 0, requests: 0, failure: '' };
    const entry = e;
    this.sessions.push(entry);
    const timer = setTimeout(() => {
      if (entry.connected) return;
      entry.failure = `connect timeout after ${this.opts.connectTimeoutMs}ms to ${host.key}`;
      conn.destroy();
    }, this.opts.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      entry.connected = true;
    });
    const idle = this.opts.settings.idleTimeoutMs;
    if (idle > 0) {
      socket.setTimeout(idle);
      socket.on('timeout', () => {
        if (entry.active === 0) this.retire(entry);
      });
    }
    return entry;
  }

  /** The connection of `e` ended. */
  private closedSession(e: SessionEntry, timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    e.usable = false;
    const i = this.sessions.indexOf(e);
    if (i < 0) return;
    this.sessions.splice(i, 1);
    const res = this.opts.resources;
    res.cxActive--;
    this.host.stats.cxActive--;
    if (!e.connected) this.host.stats.cxConnectFail++;
  }

  /** @internal A stream on `e` is done (H2UpstreamRequest.release). */
  released(e: SessionEntry): void {
    e.active--;
    if (e.active > 0) return;
    if (!e.usable || this.closed || refusing(e)) this.retire(e);
    // An idle session must not keep the process alive.
    else if (!e.conn.socket.destroyed) e.conn.socket.unref();
  }

  /** No new streams; close once the streams in flight are done (GOAWAY, then the socket ends). */
  private retire(e: SessionEntry): void {
    e.usable = false;
    e.conn.close();
  }

  close(): void {
    this.closed = true;
    for (const e of this.sessions.slice()) this.retire(e);
  }
}
