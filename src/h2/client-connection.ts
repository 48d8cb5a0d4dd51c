/**
 * The client side of one HTTP/2 connection (RFC 9113) over a plain socket (h2c with prior
 * knowledge), in JavaScript — for the same reason as H2ServerConnection: a node:http2 client
 * stream is a native handle, a Duplex and their state objects per request, and for a proxy's
 * upstream that was most of its CPU and garbage per gRPC call.
 *
 * What a request/response client needs: the preface and SETTINGS (push disabled), odd stream
 * ids, request() → an H2ClientStream (write/end/reset, pause/resume, and the response through
 * onResponse/onData/onTrailers/onEnd/onAbort), flow control both ways with H2Stream's
 * backpressure contract (H2Connection), PING ACKs, the peer's MAX_CONCURRENT_STREAMS (streams
 * beyond it wait, in order, and open as others close; at 0 the waiting ones abort as
 * REFUSED_STREAM, never sent), and GOAWAY: no new streams; those above the peer's
 * last-stream-id abort as REFUSED_STREAM (never processed, safe to retry), those below finish,
 * then the connection ends. A malformed response (a bad head or trailers, DATA before the head)
 * resets its stream with PROTOCOL_ERROR and aborts it as 'protocol'. Requests are encoded
 * statelessly (encodeHeaders); responses are decoded with the connection's HpackDecoder.
 */
import type { Socket } from 'node:net';
import { ErrorCode, H2Connection, H2StreamBase, PREFACE, SETTINGS_MAX_CONCURRENT_STREAMS, type H2WindowSettings } from './connection.js';
import { malformedResponse } from './fields.js';

export { ErrorCode, type StreamAbort } from './connection.js';

/** The largest stream id (RFC 9113 §5.1.1); past it the connection takes no new streams. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/** One request stream. Set the callbacks right after request(). */
export class H2ClientStream extends H2StreamBase {
  /**
   * The final response head (flat: [name0, value0, …], `:status` among them); `endStream` when
   * it ended the stream (no body, no trailers). 1xx heads are skipped.
   */
  onResponse: ((headers: string[], endStream: boolean) => void) | null = null;
  /** @internal The request head, while the stream waits for a MAX_CONCURRENT_STREAMS slot. */
  queuedHead: Buffer | null = null;
  /** @internal */ queuedEnd = false;

  constructor(conn: H2ClientConnection, sendWindow: number) {
    super(0, conn as unknown as H2Connection<H2StreamBase>, sendWindow);
    // Set once the final response head arrives; a later header block is trailers.
    this.headReceived = false;
  }
}

export interface H2ClientConnectionOptions extends H2WindowSettings {
  /** The peer's SETTINGS arrived (the first time, and again when they change). */
  readonly onSettings?: () => void;
  /** The peer sent GOAWAY: open no more streams here. */
  readonly onGoAway?: (code: number) => void;
  /** The connection ended (after GOAWAY, an error or the peer closing). */
  readonly onClose?: () => void;
  /** A connection-level protocol error (for a debug log). */
  readonly onError?: (message: string) => void;
}

export class H2ClientConnection extends H2Connection<H2ClientStream> {
  private nextStreamId = 1;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says otherwise). */
  peerMaxStreams = Infinity;
  /** Streams waiting for a slot under peerMaxStreams, in request order. */
  private readonly waiting: H2ClientStream[] = [];
  /** close() was called: no new streams; GOAWAY once the open and waiting ones are done. */
  private closing = false;

  constructor(
    socket: Socket,
    private readonly opts: H2ClientConnectionOptions = {},
  ) {
    super(socket, opts, { onClose: opts.onClose, onError: opts.onError });
    // The preface goes out with the first flush; the socket may still be connecting (net buffers).
    this.queue(PREFACE);
    this.queueSettings([]);
  }

  /** Streams open or waiting for a slot. */
  get activeStreams(): number {
    return this.streams.size + this.waiting.length;
  }

  /** False once GOAWAY went either way, the connection ended, or stream ids ran out. */
  get usable(): boolean {
    return !this.ended && !this.goingAway && !this.closing && this.nextStreamId <= MAX_STREAM_ID;
  }

  /** Graceful close: no new streams; the open and waiting ones finish, then GOAWAY and the end. */
  override close(): void {
    if (this.ended || this.closing) return;
    this.closing = true;
    if (this.activeStreams === 0) super.close();
  }

  /**
   * Opens a stream with a request head (an HPACK block from encodeHeaders); `endStream` when
   * there is no body. Throws when the connection takes no new streams (see `usable`).
   */
  request(block: Buffer, endStream: boolean): H2ClientStream {
    if (!this.usable) throw new Error('the HTTP/2 connection takes no new streams');
    const s = new H2ClientStream(this, this.peerInitialWindow);
    s.headersSent = true;
    if (this.streams.size >= this.peerMaxStreams) {
      // Writes before it opens queue behind the head, as if the window were shut.
      s.queuedHead = block;
      s.queuedEnd = endStream;
      s.pending = [];
      if (endStream) s.localEnded = true;
      this.waiting.push(s);
      return s;
    }
    this.open(s, block, endStream);
    return s;
  }

  /** Gives `s` its id and sends its head. */
  private open(s: H2ClientStream, block: Buffer, endStream: boolean): void {
    s.id = this.nextStreamId;
    this.nextStreamId += 2;
    this.streams.set(s.id, s);
    this.headerFrames(s.id, block, endStream);
    if (endStream) s.localEnded = true;
  }

  /** Opens waiting streams while the peer's limit allows. */
  private openWaiting(): void {
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxStreams && !this.ended && !this.goingAway && this.nextStreamId <= MAX_STREAM_ID) {
      const s = this.waiting.shift()!;
      const block = s.queuedHead!;
      s.queuedHead = null;
      this.open(s, block, s.queuedEnd);
      if (s.pending!.length > 0 || s.pendingEnd !== undefined) {
        this.blocked.add(s);
        this.unblock();
      } else {
        s.pending = null;
        if (s.needDrain) {
          s.needDrain = false;
          s.onDrain?.();
        }
      }
    }
  }

  override resetStream(s: H2ClientStream, code: number, completed: boolean): void {
    if (s.queuedHead !== null) {
      // Never sent: nothing to tell the peer.
      this.dropWaiting(s);
      s.closed = true;
      this.afterStreamClosed();
      return;
    }
    super.resetStream(s, code, completed);
  }

  override sendEnd(s: H2ClientStream, trailers: Buffer | null): void {
    if (s.queuedHead !== null) {
      s.pendingEnd = trailers;
      return;
    }
    super.sendEnd(s, trailers);
  }

  private dropWaiting(s: H2ClientStream): void {
    const i = this.waiting.indexOf(s);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  protected override teardown(): void {
    const waiting = this.waiting.splice(0);
    for (const s of waiting) {
      s.closed = true;
      s.onAbort?.('connection', ErrorCode.CANCEL);
    }
    super.teardown();
  }

  protected override afterStreamClosed(): void {
    if (this.waiting.length > 0) this.openWaiting();
    if (this.closing && this.activeStreams === 0) super.close();
    else super.afterStreamClosed();
  }

  protected override onSetting(id: number, value: number): void {
    if (id === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value;
  }

  protected override onSettings(flags: number, streamId: number, payload: Buffer): void {
    super.onSettings(flags, streamId, payload);
    if ((flags & 0x1) !== 0 || this.ended) return;
    if (this.peerMaxStreams === 0 && this.waiting.length > 0) {
      // The peer takes no streams at all: the waiting ones would wait until it changes its mind
      // (or for ever). They were never sent, so they are refused here, safe to send elsewhere.
      this.refuseWaiting();
      this.afterStreamClosed();
    } else this.openWaiting();
    this.opts.onSettings?.();
  }

  /** Streams waiting for a slot abort as REFUSED_STREAM (never sent: a caller may retry them elsewhere). */
  private refuseWaiting(): void {
    for (const s of this.waiting.splice(0)) {
      s.closed = true;
      s.onAbort?.('reset', ErrorCode.REFUSED_STREAM);
    }
  }

  protected isIdle(streamId: number): boolean {
    return streamId % 2 === 0 || streamId >= this.nextStreamId;
  }

  protected onGoAway(lastStreamId: number, code: number): void {
    this.goingAway = true;
    // Streams the peer never processed: refused, so a caller may retry them elsewhere.
    for (const s of [...this.streams.values()]) if (s.id > lastStreamId) this.abort(s, 'reset', ErrorCode.REFUSED_STREAM);
    this.refuseWaiting();
    this.opts.onGoAway?.(code);
    if (this.streams.size === 0) this.endSocket();
  }

  protected localEndedFirst(): void {
    // The request is sent; the response goes on.
  }

  protected onHeaderList(streamId: number, endStream: boolean, headers: string[]): void {
    const s = this.streams.get(streamId);
    if (!s) {
      if (this.isIdle(streamId)) return this.connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${streamId}, which we never opened`);
      // A stream we reset or finished: the peer had not heard yet.
      return;
    }
    if (s.headReceived) return this.onTrailerList(s, endStream, headers);
    const status = statusOf(headers);
    const bad = status === undefined ? 'no valid :status' : malformedResponse(headers);
    if (status === undefined || bad !== null) {
      this.opts.onError?.(`stream ${streamId}: malformed response: ${bad}`);
      return this.streamErrorOf(s);
    }
    if (status < 200) {
      // An informational head (100, 103): the final one follows.
      if (endStream) this.streamErrorOf(s);
      return;
    }
    s.headReceived = true;
    if (endStream) s.remoteEnded = true;
    s.onResponse?.(headers, endStream);
    if (endStream && !s.closed) this.remoteEnd(s);
  }

  private streamErrorOf(s: H2ClientStream): void {
    this.streamError(s, ErrorCode.PROTOCOL_ERROR);
  }
}

/** The `:status` of a response head, when it is a 3-digit number. */
function statusOf(h: readonly string[]): number | undefined {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === ':status') {
      const v = h[i + 1]!;
      return /^[1-9]\d\d$/.test(v) ? Number(v) : undefined;
    }
  }
  return undefined;
}
