/**
 * The HTTP/2 side of one listener: a `node:http2` server that never listens itself. The listener
 * sniffs the client preface and hands the socket over (bytes already read are unshifted back, and
 * the session reads them first); each stream becomes an Http2Stream on the listener's current
 * compiled config. Draining sends GOAWAY, so streams in flight finish and new ones go elsewhere.
 */
import http2, { type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerRuntime, OriginalDestination } from '../http/listener-runtime.js';
import { headerMapFromRaw } from './headers.js';
import { Http2Stream, type H2ConnectionInfo } from './stream.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

export class Http2Listener {
  private readonly rt: ListenerRuntime;
  private readonly server: Http2Server;
  private readonly sessions = new Map<ServerHttp2Session, H2ConnectionInfo>();
  /** Connection data for the session the next 'session' event creates (emitted synchronously). */
  private next: H2ConnectionInfo | null = null;

  constructor(rt: ListenerRuntime) {
    this.rt = rt;
    const http = rt.config.spec.http;
    this.server = http2.createServer({
      settings: { enablePush: false, maxConcurrentStreams: 1024, maxHeaderListSize: http.maxRequestHeadersBytes },
    });
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on('sessionError', () => {
      /* the session closes; its streams see 'close' */
    });
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => this.onStream(stream, headers, raw));
  }

  /** Take over `socket`; `initial` holds the bytes the sniffer read (the preface onwards). */
  accept(socket: Socket, initial: Buffer, originalDst: OriginalDestination | null): void {
    socket.pause();
    if (initial.length > 0) socket.unshift(initial);
    this.next = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`,
      originalDst,
    };
    // The session consumes the socket natively and reads the unshifted bytes on the next tick;
    // the socket must stay paused so no 'data' event takes them first.
    this.server.emit('connection', socket);
    this.next = null;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  private onSession(session: ServerHttp2Session): void {
    const info = this.next ?? { remoteAddress: session.socket?.remoteAddress ?? '', localAddress: '', originalDst: null };
    this.sessions.set(session, info);
    session.on('error', () => {
      /* 'close' follows */
    });
    session.once('close', () => this.sessions.delete(session));
    const idle = this.rt.config.spec.http.idleTimeoutMs;
    if (idle > 0) session.setTimeout(idle, () => session.close());
    if (this.rt.draining) session.close();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, raw: string[]): void {
    const method = headers[':method'] ?? 'GET';
    const path = headers[':path'];
    // CONNECT (and extended CONNECT) carry no :path; tunnelling over h2 is not supported.
    if (method === 'CONNECT' || path === undefined) {
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    const authority = headers[':authority'] ?? (typeof headers.host === 'string' ? headers.host : '');
    const info = this.sessions.get(stream.session as ServerHttp2Session) ?? { remoteAddress: '', localAddress: '', originalDst: null };
    const s = new Http2Stream(stream, headerMapFromRaw(raw), method, path, authority, stream.endAfterHeaders, this.rt, info);
    s.begin();
  }

  /** GOAWAY on every session: streams in flight finish, the client opens new ones elsewhere. */
  drain(): void {
    for (const s of this.sessions.keys()) if (!s.closed) s.close();
  }

  destroy(): void {
    for (const s of this.sessions.keys()) s.destroy();
    this.sessions.clear();
  }
}
