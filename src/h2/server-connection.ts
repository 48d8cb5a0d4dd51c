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
 * Backpressure, for a proxy: write() returns false while bytes wait for the peer's window, the
 * socket is backed up or the tick queued OUT_LIMIT bytes, and onDrain says when to go on;
 * pause() holds a stream's DATA and withholds its WINDOW_UPDATE until resume() delivers it (the
 * stream window is given back as data is delivered, the connection window as it arrives, so
 * one paused stream never stalls the others). feed() takes bytes a protocol sniffer already read.
 */
import type { Socket } from 'node:net';
import { HpackDecoder, HpackError, encodeHeaders } from './hpack.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  SETTINGS_TIMEOUT: 4,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 1;
const SETTINGS_ENABLE_PUSH = 2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;

const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** The largest frame we accept (the protocol default; we do not announce a bigger one). */
const MAX_FRAME_IN = 16_384;
/** A header block (with its CONTINUATIONs) beyond this ends the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** Bytes queued in one tick past which write() asks the writer to wait for the flush. */
const OUT_LIMIT = 256 * 1024;

export interface H2ServerSettings {
  /** Streams one client may have open at once (default 1024). */
  readonly maxConcurrentStreams?: number;
  /** Our receive window per stream (default 1 MiB) and for the connection (default 16 MiB). */
  readonly streamWindow?: number;
  readonly connectionWindow?: number;
}

/** Why a stream ended without both sides completing it. */
export type StreamAbort = 'reset' | 'connection';

/**
 * One request stream. The server sets the callbacks in its onStream; data arrives as Buffers
 * that may share memory with the connection's read buffer (copy what you keep past the call).
 */
export class H2Stream {
  /** Decoded request headers, flat: [name0, value0, name1, value1, …]. */
  headers: string[];
  onData: ((chunk: Buffer) => void) | null = null;
  onEnd: (() => void) | null = null;
  /** The peer reset the stream or the connection went away before we finished. */
  onAbort: ((why: StreamAbort, code: number) => void) | null = null;
  /** Request trailers (flat, like `headers`), just before onEnd. */
  onTrailers: ((trailers: string[]) => void) | null = null;
  /**
   * A write() returned false, and now the stream's queue is empty and the socket takes bytes
   * again: write more.
   */
  onDrain: (() => void) | null = null;

  /** @internal */ remoteEnded = false;
  /** @internal */ localEnded = false;
  /** @internal */ headersSent = false;
  /** @internal */ sendWindow: number;
  /** @internal */ recvUnacked = 0;
  /** @internal DATA waiting for window, then the trailers block or an END_STREAM marker. */
  pending: Buffer[] | null = null;
  /** @internal */ pendingEnd: Buffer | null | undefined = undefined;
  /** @internal Bytes in `pending`. */
  pendingBytes = 0;
  /** @internal A write() returned false; onDrain is owed. */
  needDrain = false;
  /** @internal pause() is in effect: DATA is held in `inbox`, its window not given back. */
  paused = false;
  /** @internal DATA received while paused, in order. */
  inbox: Buffer[] | null = null;
  /** @internal The end of the request (and its trailers) waits behind `inbox`. */
  endHeld = false;
  /** @internal */ heldTrailers: string[] | null = null;
  closed = false;

  constructor(
    readonly id: number,
    private readonly conn: H2ServerConnection,
    headers: string[],
    sendWindow: number,
  ) {
    this.headers = headers;
    this.sendWindow = sendWindow;
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

  /**
   * Sends body bytes (respects flow control; queued when the peer's window is shut). Returns
   * false when bytes wait for window or the socket is backed up: stop writing until onDrain.
   */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded) return true;
    return this.conn.sendData(this, data);
  }

  /** Body bytes accepted by write() that wait for the peer's window. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Stops delivering request DATA: it is held here and its window is not given back, so the peer
   * can send at most one stream window more (the connection window is replenished on receipt, so
   * other streams go on).
   */
  pause(): void {
    this.paused = true;
  }

  /** Delivers what was held (onData, then onTrailers/onEnd if they waited) and reopens the window. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.conn.deliverHeld(this);
  }

  /** Ends the response: with a trailers block (HPACK) or an empty END_STREAM DATA frame. */
  end(trailers?: Buffer): void {
    if (this.closed || this.localEnded) return;
    this.conn.sendEnd(this, trailers ?? null);
  }

  /** Resets the stream (RST_STREAM with `code`). */
  reset(code: number = ErrorCode.CANCEL): void {
    if (this.closed) return;
    this.conn.resetStream(this, code, false);
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

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = (length >>> 16) & 0xff;
  b[1] = (length >>> 8) & 0xff;
  b[2] = length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId, 5);
  return b;
}

export class H2ServerConnection {
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder();
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private lastStreamId = 0;
  private goingAway = false;
  private ended = false;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = 16_384;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvUnacked = 0;
  private readonly maxStreams: number;
  private readonly streamWindow: number;
  private readonly connWindow: number;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs). */
  private continuation: { streamId: number; flags: number; parts: Buffer[]; size: number } | null = null;
  /** Streams with DATA waiting for window, in order. */
  private readonly blocked = new Set<H2Stream>();
  private out: Buffer[] = [];
  /** Bytes in `out`. */
  private outBytes = 0;
  /** Streams told to wait (write() returned false) only because the socket was backed up. */
  private readonly drainWaiters = new Set<H2Stream>();
  private flushScheduled = false;

  constructor(
    readonly socket: Socket,
    private readonly opts: H2ServerConnectionOptions,
  ) {
    this.maxStreams = opts.maxConcurrentStreams ?? 1024;
    this.streamWindow = opts.streamWindow ?? 1024 * 1024;
    this.connWindow = opts.connectionWindow ?? 16 * 1024 * 1024;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('end', () => this.destroy());
    socket.on('drain', () => this.onSocketDrain());
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
   * Our SETTINGS (the server preface) and the connection window raised from 65,535 — sent once
   * the client's preface arrived, so a client that is not HTTP/2 gets a plain answer instead.
   */
  private sendPreface(): void {
    const settings = Buffer.alloc(18);
    settings.writeUInt16BE(SETTINGS_MAX_CONCURRENT_STREAMS, 0);
    settings.writeUInt32BE(this.maxStreams, 2);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(this.streamWindow, 8);
    settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 12);
    settings.writeUInt32BE(0, 14);
    this.queue(frameHeader(18, FrameType.SETTINGS, 0, 0), settings);
    if (this.connWindow > DEFAULT_WINDOW) this.queue(this.windowUpdate(0, this.connWindow - DEFAULT_WINDOW));
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Graceful close: GOAWAY with the last stream we will serve; ends once those finish. */
  close(): void {
    if (this.ended || this.goingAway) return;
    this.goAway(ErrorCode.NO_ERROR);
    if (this.streams.size === 0) this.endSocket();
  }

  /** Immediate close: every open stream aborts. */
  destroy(): void {
    if (this.ended) return;
    this.teardown();
    this.socket.destroy();
  }

  /** Every open stream aborts; the connection takes no more frames. */
  private teardown(): void {
    this.ended = true;
    this.continuation = null;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) this.abort(s, 'connection', ErrorCode.CANCEL);
    this.opts.onClose?.(this);
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  private queue(...bufs: Buffer[]): void {
    if (this.ended) return;
    for (const b of bufs) {
      this.out.push(b);
      this.outBytes += b.length;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushConnection, this);
    }
  }

  /** @internal Writes what the tick queued, as one buffer. */
  flush(): void {
    this.flushScheduled = false;
    if (this.ended || this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    this.outBytes = 0;
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    // Writers stopped by the tick's volume go on once the kernel took it; a backed-up socket
    // wakes them with 'drain' instead (a write taken at once never emits one).
    if (this.drainWaiters.size > 0 && !this.socket.writableNeedDrain) this.onSocketDrain();
  }

  private windowUpdate(streamId: number, increment: number): Buffer {
    const b = frameHeader(4, FrameType.WINDOW_UPDATE, 0, streamId);
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    return Buffer.concat([b, p]);
  }

  /** @internal */
  sendHeaders(s: H2Stream, block: Buffer, endStream: boolean): void {
    this.headerFrames(s.id, block, endStream);
    if (endStream) this.localEnd(s);
  }

  private headerFrames(streamId: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrame;
    if (block.length <= max) {
      this.queue(frameHeader(block.length, FrameType.HEADERS, FLAG_END_HEADERS | (endStream ? FLAG_END_STREAM : 0), streamId), block);
      return;
    }
    let off = 0;
    let type: number = FrameType.HEADERS;
    while (off < block.length) {
      const n = Math.min(max, block.length - off);
      const last = off + n >= block.length;
      const flags = (last ? FLAG_END_HEADERS : 0) | (type === FrameType.HEADERS && endStream ? FLAG_END_STREAM : 0);
      this.queue(frameHeader(n, type, flags, streamId), block.subarray(off, off + n));
      off += n;
      type = FrameType.CONTINUATION;
    }
  }

  /** @internal Returns false when the caller should wait for onDrain. */
  sendData(s: H2Stream, data: Buffer): boolean {
    if (s.pending) {
      s.pending.push(data);
      s.pendingBytes += data.length;
      s.needDrain = true;
      return false;
    }
    const rest = this.sendAllowed(s, data);
    if (rest) {
      s.pending = [rest];
      s.pendingBytes = rest.length;
      this.blocked.add(s);
      s.needDrain = true;
      return false;
    }
    if (this.congested()) {
      s.needDrain = true;
      this.drainWaiters.add(s);
      return false;
    }
    return true;
  }

  /**
   * The socket refused more (its last write returned false; 'drain' follows), or this tick
   * already queued OUT_LIMIT bytes (the flush hands them over, then the waiters go on): a writer
   * that goes on would only grow memory, whatever the peer's windows allow.
   */
  private congested(): boolean {
    return this.socket.writableNeedDrain || this.outBytes >= OUT_LIMIT;
  }

  private onSocketDrain(): void {
    if (this.drainWaiters.size === 0) return;
    const ready: H2Stream[] = [];
    for (const s of this.drainWaiters) {
      if (s.closed || s.pending) continue;
      s.needDrain = false;
      ready.push(s);
    }
    this.drainWaiters.clear();
    for (const s of ready) s.onDrain?.();
  }

  /** Sends what the windows allow of `data`; returns what is left (or null). */
  private sendAllowed(s: H2Stream, data: Buffer): Buffer | null {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) return data.subarray(off);
      this.queue(frameHeader(n, FrameType.DATA, 0, s.id), off === 0 && n === data.length ? data : data.subarray(off, off + n));
      s.sendWindow -= n;
      this.connSendWindow -= n;
      off += n;
    }
    return null;
  }

  /** @internal */
  sendEnd(s: H2Stream, trailers: Buffer | null): void {
    if (s.pending) {
      s.pendingEnd = trailers;
      return;
    }
    if (trailers) this.headerFrames(s.id, trailers, true);
    else this.queue(frameHeader(0, FrameType.DATA, FLAG_END_STREAM, s.id));
    this.localEnd(s);
  }

  private localEnd(s: H2Stream): void {
    s.localEnded = true;
    if (s.remoteEnded) this.finish(s);
    else {
      // RFC 9113 §8.1: a complete response before the whole request — ask the client to stop
      // sending, without error.
      this.resetStream(s, ErrorCode.NO_ERROR, true);
    }
  }

  /** After WINDOW_UPDATE: sends what waited, in order, and the ends that waited behind it. */
  private unblock(): void {
    // onDrain runs after the loop: a writer it wakes may block again and re-enter `blocked`.
    let drained: H2Stream[] | null = null;
    for (const s of this.blocked) {
      if (s.closed) {
        this.blocked.delete(s);
        continue;
      }
      const pending = s.pending!;
      while (pending.length) {
        const head = pending[0]!;
        const rest = this.sendAllowed(s, head);
        if (rest) {
          s.pendingBytes -= head.length - rest.length;
          pending[0] = rest;
          break;
        }
        s.pendingBytes -= head.length;
        pending.shift();
      }
      if (pending.length) {
        if (this.connSendWindow <= 0) break;
        continue;
      }
      s.pending = null;
      s.pendingBytes = 0;
      this.blocked.delete(s);
      if (s.pendingEnd !== undefined) {
        const t = s.pendingEnd;
        s.pendingEnd = undefined;
        this.sendEnd(s, t);
      } else if (s.needDrain) (drained ??= []).push(s);
    }
    if (drained === null) return;
    const congested = this.congested();
    for (const s of drained) {
      if (s.closed) continue;
      if (congested) this.drainWaiters.add(s);
      else {
        s.needDrain = false;
        s.onDrain?.();
      }
    }
  }

  /** @internal */
  resetStream(s: H2Stream, code: number, completed: boolean): void {
    if (s.closed) return;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.queue(frameHeader(4, FrameType.RST_STREAM, 0, s.id), p);
    if (completed) this.finish(s);
    else {
      this.streams.delete(s.id);
      s.closed = true;
      this.forget(s);
      this.afterStreamClosed();
    }
  }

  /** A stream error of the peer's making: RST_STREAM, and the handler hears of it. */
  private streamError(s: H2Stream, code: number): void {
    this.rstUnknown(s.id, code);
    this.abort(s, 'reset', code);
    this.afterStreamClosed();
  }

  private finish(s: H2Stream): void {
    s.closed = true;
    this.streams.delete(s.id);
    this.forget(s);
    this.afterStreamClosed();
  }

  private abort(s: H2Stream, why: StreamAbort, code: number): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.forget(s);
    s.onAbort?.(why, code);
  }

  /** A closed stream's queues go: nothing more is sent or delivered for it. */
  private forget(s: H2Stream): void {
    this.blocked.delete(s);
    this.drainWaiters.delete(s);
    s.inbox = null;
    s.heldTrailers = null;
  }

  private afterStreamClosed(): void {
    if (this.goingAway && this.streams.size === 0) this.endSocket();
  }

  private goAway(code: number, debug = ''): void {
    this.goingAway = true;
    const p = Buffer.allocUnsafe(8 + Buffer.byteLength(debug));
    p.writeUInt32BE(this.lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    p.write(debug, 8);
    this.queue(frameHeader(p.length, FrameType.GOAWAY, 0, 0), p);
  }

  private endSocket(): void {
    this.flush();
    this.socket.end();
  }

  /** A connection error: GOAWAY with the code, then the connection closes. */
  private connectionError(code: number, message: string): void {
    if (this.ended) return;
    this.opts.onError?.(message);
    this.goAway(code, message.slice(0, 200));
    this.flush();
    // Streams abort now; the socket closes once the GOAWAY is written.
    this.socket.end();
    this.teardown();
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  private onBytes(chunk: Buffer): void {
    if (this.ended) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.prefaceSeen) {
      const n = Math.min(this.buf.length, PREFACE.length);
      if (this.buf.compare(PREFACE, 0, n, 0, n) !== 0) {
        this.opts.onError?.('the client did not send the HTTP/2 preface');
        this.ended = true;
        this.out = [];
        if (this.opts.notHttp2Reply) this.socket.end(this.opts.notHttp2Reply);
        else this.socket.end();
        this.opts.onClose?.(this);
        return;
      }
      if (this.buf.length < PREFACE.length) return;
      this.prefaceSeen = true;
      this.buf = this.buf.subarray(PREFACE.length);
      this.sendPreface();
    }
    let off = 0;
    const buf = this.buf;
    while (buf.length - off >= 9 && !this.ended) {
      const len = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
      if (len > MAX_FRAME_IN) {
        this.connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${MAX_FRAME_IN}`);
        return;
      }
      if (buf.length - off < 9 + len) break;
      const type = buf[off + 3]!;
      const flags = buf[off + 4]!;
      const streamId = buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + 9, off + 9 + len);
      off += 9 + len;
      this.onFrame(type, flags, streamId, payload);
    }
    this.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.continuation && type !== FrameType.CONTINUATION) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'a frame other than CONTINUATION inside a header block');
      return;
    }
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeaders(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0 || payload.length !== 5) this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed PRIORITY frame');
        return;
      case FrameType.RST_STREAM:
        return this.onRst(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'a client may not send PUSH_PROMISE');
      case FrameType.PING:
        if (streamId !== 0 || payload.length !== 8) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed PING frame');
        if ((flags & FLAG_ACK) === 0) this.queue(frameHeader(8, FrameType.PING, FLAG_ACK, 0), Buffer.from(payload));
        return;
      case FrameType.GOAWAY:
        // The client will open no more streams; ours finish, then the connection ends.
        this.goingAway = true;
        if (this.streams.size === 0) this.endSocket();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS payload not a multiple of 6');
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
        this.peerMaxFrame = value;
      } else if (id === SETTINGS_ENABLE_PUSH) {
        if (value > 1) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH not 0 or 1');
      }
      // HEADER_TABLE_SIZE: our encoder never uses the dynamic table, so any size suits it.
      void SETTINGS_HEADER_TABLE_SIZE;
    }
    this.queue(frameHeader(0, FrameType.SETTINGS, FLAG_ACK, 0));
    this.unblock();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload is not 4 bytes');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (inc === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
    } else {
      const s = this.streams.get(streamId);
      if (!s) return;
      if (inc === 0) return this.streamError(s, ErrorCode.PROTOCOL_ERROR);
      s.sendWindow += inc;
      if (s.sendWindow > MAX_WINDOW) return this.streamError(s, ErrorCode.FLOW_CONTROL_ERROR);
    }
    if (this.blocked.size) this.unblock();
  }

  private onRst(streamId: number, payload: Buffer): void {
    if (streamId === 0 || payload.length !== 4) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed RST_STREAM frame');
    const s = this.streams.get(streamId);
    if (s) this.abort(s, 'reset', payload.readUInt32BE(0));
    if (this.goingAway && this.streams.size === 0) this.endSocket();
  }

  /** Strips padding (and the priority fields of HEADERS); null when the padding is invalid. */
  private unpad(flags: number, payload: Buffer, priority: boolean): Buffer | null {
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      if (payload.length < 1) return null;
      const pad = payload[0]!;
      start = 1;
      end -= pad;
    }
    if (priority && flags & FLAG_PRIORITY) start += 5;
    if (end < start) return null;
    return payload.subarray(start, end);
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole frame, padding included, whatever becomes of the stream.
    this.consumed(payload.length);
    const s = this.streams.get(streamId);
    if (!s || s.remoteEnded) {
      if (streamId > this.lastStreamId) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we finished or reset: tell the client it is closed, once it sends more.
      if (!s) this.rstUnknown(streamId, ErrorCode.STREAM_CLOSED);
      return;
    }
    const data = this.unpad(flags, payload, false);
    if (!data) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding longer than the frame');
    if (flags & FLAG_END_STREAM) s.remoteEnded = true;
    if (s.paused || s.inbox) {
      // Held: its window is given back only once it is delivered (padding is owed at once).
      if (data.length) (s.inbox ??= []).push(data);
      this.credit(s, payload.length - data.length);
    } else {
      this.credit(s, payload.length);
      if (data.length) s.onData?.(data);
    }
    if (s.remoteEnded) this.remoteEnd(s);
  }

  /** Gives `n` bytes of stream window back (batched into WINDOW_UPDATEs of half a window). */
  private credit(s: H2Stream, n: number): void {
    s.recvUnacked += n;
    if (s.remoteEnded || s.closed) return;
    if (s.recvUnacked >= this.streamWindow / 2) {
      this.queue(this.windowUpdate(s.id, s.recvUnacked));
      s.recvUnacked = 0;
    }
  }

  /** @internal resume(): deliver the held DATA in order until the consumer pauses again. */
  deliverHeld(s: H2Stream): void {
    while (!s.paused && !s.closed && s.inbox) {
      const chunk = s.inbox.shift();
      if (s.inbox.length === 0) s.inbox = null;
      if (chunk === undefined) break;
      this.credit(s, chunk.length);
      s.onData?.(chunk);
    }
    if (!s.paused && !s.closed && s.inbox === null && s.endHeld) {
      s.endHeld = false;
      this.remoteEnd(s);
    }
  }

  private consumed(n: number): void {
    this.connRecvUnacked += n;
    if (this.connRecvUnacked >= this.connWindow / 2) {
      this.queue(this.windowUpdate(0, this.connRecvUnacked));
      this.connRecvUnacked = 0;
    }
  }

  private rstUnknown(streamId: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.queue(frameHeader(4, FrameType.RST_STREAM, 0, streamId), p);
  }

  private remoteEnd(s: H2Stream, trailers: string[] | null = null): void {
    if (s.closed) return;
    if (s.paused || s.inbox) {
      // The end (and the trailers) come after the DATA held before them.
      s.endHeld = true;
      if (trailers) s.heldTrailers = trailers;
      return;
    }
    const t = trailers ?? s.heldTrailers;
    s.heldTrailers = null;
    if (t) s.onTrailers?.(t);
    if (!s.closed) s.onEnd?.();
    if (s.localEnded && !s.closed) this.finish(s);
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const block = this.unpad(flags, payload, true);
    if (!block) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    if (flags & FLAG_END_HEADERS) return this.onHeaderBlock(streamId, flags, block);
    this.continuation = { streamId, flags, parts: [Buffer.from(block)], size: block.length };
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const c = this.continuation;
    if (!c || c.streamId !== streamId) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block in progress');
    c.size += payload.length;
    if (c.size > MAX_HEADER_BLOCK) return this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${MAX_HEADER_BLOCK} bytes`);
    c.parts.push(Buffer.from(payload));
    if (flags & FLAG_END_HEADERS) {
      this.continuation = null;
      this.onHeaderBlock(streamId, c.flags, Buffer.concat(c.parts));
    }
  }

  private onHeaderBlock(streamId: number, flags: number, block: Buffer): void {
    let headers: string[];
    try {
      headers = this.decoder.decode(block);
    } catch (e) {
      return this.connectionError(ErrorCode.COMPRESSION_ERROR, e instanceof HpackError ? e.message : String(e));
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const existing = this.streams.get(streamId);
    if (existing) {
      // Trailers: they must end the stream.
      if (existing.remoteEnded || !endStream) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'a second HEADERS without END_STREAM');
      existing.remoteEnded = true;
      this.remoteEnd(existing, headers);
      return;
    }
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

/** Fields RFC 9113 §8.2.2 forbids in HTTP/2 (connection-specific). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

/**
 * Why a request head is malformed (RFC 9113 §8.2, §8.3.1), or null. Malformed requests are
 * refused with a stream error before any handler sees them — what node:http2 did for us, and
 * what keeps a smuggled Transfer-Encoding or an uppercase twin of a header from reaching an
 * HTTP/1.1 upstream.
 */
export function malformedRequest(h: readonly string[]): string | null {
  let regular = false;
  let method: string | undefined;
  let path: string | undefined;
  let scheme: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (name.length === 0) return 'empty header name';
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `pseudo-header ${name} after regular headers`;
      if (!REQUEST_PSEUDO.has(name)) return `unknown pseudo-header ${name}`;
      if ((name === ':method' && method !== undefined) || (name === ':path' && path !== undefined) || (name === ':scheme' && scheme !== undefined)) return `repeated ${name}`;
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':scheme') scheme = value;
      continue;
    }
    regular = true;
    if (name !== name.toLowerCase()) return `header name ${JSON.stringify(name)} is not lowercase`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
    if (name === 'te' && value.toLowerCase() !== 'trailers') return 'te other than "trailers"';
    if (/[\r\n\0]/.test(value)) return `header ${name} holds CR, LF or NUL`;
  }
  if (method === undefined) return 'no :method';
  if (method === 'CONNECT') return null;
  if (path === undefined || path === '') return 'no :path';
  if (scheme === undefined) return 'no :scheme';
  return null;
}

function flushConnection(c: H2ServerConnection): void {
  c.flush();
}

export { encodeHeaders };
