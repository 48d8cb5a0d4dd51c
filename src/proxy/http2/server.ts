/**
 * The HTTP/2 side of one listener: the listener sniffs the client preface and hands the socket
 * over with the bytes it already read; each connection is an H2ServerConnection (src/h2, our own
 * HTTP/2 in JavaScript: a stream is one small object, not a native handle plus a Duplex) and each
 * stream becomes an Http2Stream on the listener's current compiled config. Draining sends
 * GOAWAY, so streams in flight finish and new ones go elsewhere.
 */
import type { Socket } from 'node:net';
import { ErrorCode, H2ServerConnection, encodeHeaders, type H2Stream } from '../../h2/server-connection.js';
import type { ListenerRuntime, OriginalDestination } from '../http/listener-runtime.js';
import { headerMapFromRaw } from './headers.js';
import { Http2Stream, type H2ConnectionInfo } from './stream.js';

/** Streams one client may have open at once on a connection (as with node:http2 before). */
const MAX_CONCURRENT_STREAMS = 1024;

/** A complete 431 response head (END_STREAM on it). */
const TOO_LARGE = encodeHeaders([[':status', '431']]);

/** The header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: name + value + 32 per field. */
function headerListSize(h: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < h.length; i++) n += h[i]!.length;
  return n + 16 * h.length;
}

export class Http2Listener {
  private readonly rt: ListenerRuntime;
  private readonly connections = new Map<H2ServerConnection, H2ConnectionInfo>();

  constructor(rt: ListenerRuntime) {
    this.rt = rt;
  }

  /** Take over `socket` (paused by the sniffer); `initial` holds the bytes it read (the preface onwards). */
  accept(socket: Socket, initial: Buffer, originalDst: OriginalDestination | null): void {
    const info: H2ConnectionInfo = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`,
      originalDst,
    };
    const logger = this.rt.logger;
    const conn = new H2ServerConnection(socket, {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      onStream: (s) => this.onStream(s, info),
      onClose: (c) => this.connections.delete(c),
      onError: (message) => {
        if (logger.isLevelEnabled('debug')) logger.debug({ error: message, remoteAddress: info.remoteAddress }, 'HTTP/2 downstream connection error');
      },
    });
    this.connections.set(conn, info);
    // An idle connection (no bytes either way) gets a graceful GOAWAY, as node:http2's session timeout did.
    const idle = this.rt.config.spec.http.idleTimeoutMs;
    if (idle > 0) {
      socket.setTimeout(idle);
      socket.on('timeout', () => conn.close());
    }
    // The sniffer's bytes first (they may open streams at once), then the socket's own.
    conn.feed(initial);
    if (this.rt.draining) conn.close();
    socket.resume();
  }

  get activeSessions(): number {
    return this.connections.size;
  }

  private onStream(stream: H2Stream, info: H2ConnectionInfo): void {
    if (headerListSize(stream.headers) > this.rt.config.spec.http.maxRequestHeadersBytes) {
      // As HTTP/1.1 answers an oversized head (node:http2 enforced this as maxHeaderListSize).
      stream.respond(TOO_LARGE, true);
      return;
    }
    const method = stream.header(':method') ?? 'GET';
    const path = stream.header(':path');
    // CONNECT (and extended CONNECT) carry no :path; tunnelling over h2 is not supported.
    if (method === 'CONNECT' || path === undefined) {
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    const authority = stream.header(':authority') ?? stream.header('host') ?? '';
    const s = new Http2Stream(stream, headerMapFromRaw(stream.headers), method, path, authority, stream.remoteEnded, this.rt, info);
    s.begin();
  }

  /** GOAWAY on every connection: streams in flight finish, the client opens new ones elsewhere. */
  drain(): void {
    for (const c of this.connections.keys()) c.close();
  }

  destroy(): void {
    const all = [...this.connections.keys()];
    this.connections.clear();
    for (const c of all) c.destroy();
  }
}
