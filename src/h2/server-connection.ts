/**
 * The server side of one HTTP/2 connection (RFC 9113) over a plain socket, in JavaScript.
 *
 * Why not node:http2: every node:http2 stream is a native handle plus a Duplex and their state
 * objects, held from C++ across the call; under load V8 promotes most of that graph to old space
 * (measured: ~1.9 KB per request promoted by a bare node:http2 server answering a gRPC frame,
 * scavenges of 7–12 ms and Mark-Compacts of 12–170 ms), and those pauses are the tail latency of
 * every call in flight. Here a stream is one small object with callbacks; the frames of a tick
 * go out in one write.
 *
 * What a request/response server needs, and everything the protocol requires of it: the
 * preface, SETTINGS (and their ACK), PING, GOAWAY both ways, RST_STREAM both ways,
 * WINDOW_UPDATE flow control in both directions (peer windows respected when sending, ours
 * replenished as data is consumed), HEADERS with PADDED/PRIORITY and CONTINUATION, trailers,
 * HPACK with the dynamic table, MAX_CONCURRENT_STREAMS (REFUSED_STREAM beyond it). No server
 * push, no priorities (PRIORITY frames are accepted and ignored, as RFC 9113 allows). A
 * protocol error ends the connection with GOAWAY and the error code; a stream error resets the
 * stream only.
 *
 * Framing, flow control and backpressure are H2Connection's (connection.ts), shared with the
 * client; this file is what only a server does. feed() takes bytes a protocol sniffer already read.
 */
import type { Socket } from 'node:net';
import { encodeHeaders } from './hpack.js';
import { ErrorCode, H2Connection, H2StreamBase, PREFACE, SETTINGS_MAX_CONCURRENT_STREAMS, type H2WindowSettings } from './connection.js';
import { malformedRequest } from './fields.js';

export { ErrorCode, FrameType, PREFACE, type StreamAbort } from './connection.js';

export interface H2ServerSettings extends H2WindowSettings {
  /** Streams one client may have open at once (default 1024). */
  readonly maxConcurrentStreams?: number;
}

/** One request stream. The server sets the callbacks in its onStream. */
export class H2Stream extends H2StreamBase {
  /** Decoded request headers, flat: [name0, value0, name1, value1, …]. */
  headers: string[];

  constructor(id: number, conn: H2ServerConnection, headers: string[], sendWindow: number) {
    super(id, conn as unknown as H2Connection<H2StreamBase>, sendWindow);
    this.headers = headers;
  }

  /** The value of a request header (the first one with that name), or undefined. */
  header(name: string): string | undefined {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }

  /** Sends the response head: an HPACK block from encodeHeaders (reusable across streams). */
  respond(block: Buffer, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.conn.sendHeaders(this, block, endStream);
  }
}

export interface H2ServerConnectionOptions extends H2ServerSettings {
  /** A new request stream (its HEADERS arrived). */
  readonly onStream: (stream: H2Stream) => void;
  /** The connection ended (after GOAWAY, an error or the peer closing). */
  readonly onClose?: (conn: H2ServerConnection) => void;
  /** A connection-level protocol error (for a debug log). */
  readonly onError?: (message: string) => void;
  /** The first bytes were not the HTTP/2 preface: what to answer before closing (e.g. an HTTP/1.1 400). */
  readonly notHttp2Reply?: Buffer;
}

export class H2ServerConnection extends H2Connection<H2Stream> {
  private prefaceSeen = false;
  private readonly maxStreams: number;

  constructor(
    socket: Socket,
    private readonly opts: H2ServerConnectionOptions,
  ) {
    super(socket, opts, { onClose: () => opts.onClose?.(this), onError: opts.onError });
    this.maxStreams = opts.maxConcurrentStreams ?? 1024;
  }

  /**
   * Processes bytes read from the socket by someone else first (a protocol sniffer), before the
   * socket's own: call right after construction, with the socket still paused, then resume it.
   * Streams they open reach onStream synchronously.
   */
  feed(bytes: Buffer): void {
    if (bytes.length > 0) this.onBytes(bytes);
  }

  /**
   * The client's preface, then our SETTINGS (the server preface) — sent once it arrived, so a
   * client that is not HTTP/2 gets a plain answer instead.
   */
  protected override beforeFrames(): boolean {
    if (this.prefaceSeen) return true;
    const n = Math.min(this.buf.length, PREFACE.length);
    if (this.buf.compare(PREFACE, 0, n, 0, n) !== 0) {
      this.opts.onError?.('the client did not send the HTTP/2 preface');
      this.ended = true;
      this.out = [];
      if (this.opts.notHttp2Reply) this.socket.end(this.opts.notHttp2Reply);
      else this.socket.end();
      this.opts.onClose?.(this);
      return false;
    }
    if (this.buf.length < PREFACE.length) return false;
    this.prefaceSeen = true;
    this.buf = this.buf.subarray(PREFACE.length);
    this.queueSettings([[SETTINGS_MAX_CONCURRENT_STREAMS, this.maxStreams]]);
    return true;
  }

  protected isIdle(streamId: number): boolean {
    return streamId > this.lastStreamId;
  }

  protected onGoAway(): void {
    // The client will open no more streams; ours finish, then the connection ends.
    this.goingAway = true;
    if (this.streams.size === 0) this.endSocket();
  }

  protected localEndedFirst(s: H2Stream): void {
    // RFC 9113 §8.1: a complete response before the whole request — ask the client to stop
    // sending, without error.
    this.resetStream(s, ErrorCode.NO_ERROR, true);
  }

  protected onHeaderList(streamId: number, endStream: boolean, headers: string[]): void {
    const existing = this.streams.get(streamId);
    if (existing) return this.onTrailerList(existing, endStream, headers);
    if (streamId % 2 === 0 || streamId <= this.lastStreamId) {
      // Even ids are the server's; a lower odd id is a closed stream.
      if (streamId <= this.lastStreamId && streamId % 2 === 1) return this.rstUnknown(streamId, ErrorCode.STREAM_CLOSED);
      return this.connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${streamId}, not a new client stream`);
    }
    this.lastStreamId = streamId;
    if (this.goingAway) return this.rstUnknown(streamId, ErrorCode.REFUSED_STREAM);
    if (this.streams.size >= this.maxStreams) return this.rstUnknown(streamId, ErrorCode.REFUSED_STREAM);
    const malformed = malformedRequest(headers);
    if (malformed !== null) {
      this.opts.onError?.(`stream ${streamId}: malformed request: ${malformed}`);
      return this.rstUnknown(streamId, ErrorCode.PROTOCOL_ERROR);
    }
    const s = new H2Stream(streamId, this, headers, this.peerInitialWindow);
    this.streams.set(streamId, s);
    if (endStream) s.remoteEnded = true;
    this.opts.onStream(s);
    if (endStream && !s.closed) this.remoteEnd(s);
  }
}

export { encodeHeaders, malformedRequest };
