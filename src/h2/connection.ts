/**
 * What both ends of an HTTP/2 connection (RFC 9113) share, over a plain socket: framing,
 * SETTINGS/PING/WINDOW_UPDATE/RST_STREAM, flow control both ways with the backpressure contract
 * below, trailers, HPACK decoding, and the one-write-per-tick sending. H2ServerConnection and
 * H2ClientConnection add what differs: who opens streams (and with which ids), the prefaces,
 * what a HEADERS frame on a new or open stream means, and GOAWAY.
 *
 * Backpressure, for a proxy: write() returns false while bytes wait for the peer's window, the
 * socket is backed up or the tick queued OUT_LIMIT bytes, and onDrain says when to go on;
 * pause() holds a stream's DATA and withholds its WINDOW_UPDATE until resume() delivers it (the
 * stream window is given back as data is delivered, the connection window as it arrives, so
 * one paused stream never stalls the others).
 *
 * end() right after a write() in the same tick sets END_STREAM on that DATA frame rather than
 * sending an empty DATA frame after it (the frames of a tick are still unsent then).
 */
import type { Socket } from 'node:net';
import { IdTable } from '../inflight.js';
import { HpackDecoder, HpackError } from './hpack.js';
import { malformedTrailers } from './fields.js';

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

export const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 1;
export const SETTINGS_ENABLE_PUSH = 2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;

export const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** The largest frame we accept (the protocol default; we do not announce a bigger one). */
const MAX_FRAME_IN = 16_384;
/** A header block (with its CONTINUATIONs) beyond this ends the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** Bytes queued in one tick past which write() asks the writer to wait for the flush. */
const OUT_LIMIT = 256 * 1024;

/**
 * Why a stream ended without both sides completing it: the peer reset it, the connection went
 * away, or the peer broke the protocol on it and we reset it (a stream error, RFC 9113 §5.4.2:
 * e.g. a malformed response or trailers, DATA before the response head or after END_STREAM).
 */
export type StreamAbort = 'reset' | 'connection' | 'protocol';

export interface H2WindowSettings {
  /** Our receive window per stream (default 1 MiB) and for the connection (default 16 MiB). */
  readonly streamWindow?: number;
  readonly connectionWindow?: number;
}

/**
 * One stream, either end: body bytes both ways, trailers, pause/resume, reset. Data arrives as
 * Buffers that may share memory with the connection's read buffer (copy what you keep past the
 * call).
 */
export class H2StreamBase {
  onData: ((chunk: Buffer) => void) | null = null;
  onEnd: (() => void) | null = null;
  /** The peer reset the stream or the connection went away before we finished. */
  onAbort: ((why: StreamAbort, code: number) => void) | null = null;
  /** The peer's trailers (flat: [name0, value0, …]), just before onEnd. */
  onTrailers: ((trailers: string[]) => void) | null = null;
  /**
   * A write() returned false, and now the stream's queue is empty and the socket takes bytes
   * again: write more.
   */
  onDrain: (() => void) | null = null;

  /** @internal */ remoteEnded = false;
  /**
   * @internal The peer's (final) head arrived, so DATA may follow (RFC 9113 §8.1). A server's
   * streams open with their request head; a client's wait for the response.
   */
  headReceived = true;
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
  /** @internal The end of the stream (and its trailers) waits behind `inbox`. */
  endHeld = false;
  /** @internal */ heldTrailers: string[] | null = null;
  closed = false;

  constructor(
    public id: number,
    protected readonly conn: H2Connection<H2StreamBase>,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
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
   * Stops delivering the peer's DATA: it is held here and its window is not given back, so the
   * peer can send at most one stream window more (the connection window is replenished on
   * receipt, so other streams go on).
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

  /** Ends our side: with a trailers block (HPACK) or an empty END_STREAM DATA frame. */
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

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = (length >>> 16) & 0xff;
  b[1] = (length >>> 8) & 0xff;
  b[2] = length & 0xff;
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId, 5);
  return b;
}

/** Hooks a subclass passes up: the connection ended; a connection-level protocol error. */
export interface H2ConnectionHooks {
  readonly onClose?: () => void;
  readonly onError?: (message: string) => void;
}

export abstract class H2Connection<S extends H2StreamBase> {
  /** Open streams by id (an IdTable, not a Map: a churned Map gets every stream promoted, src/inflight.ts). */
  protected readonly streams = new IdTable<S>();
  protected readonly decoder = new HpackDecoder();
  protected buf: Buffer = Buffer.alloc(0);
  /** The highest stream id the peer opened (what our GOAWAY reports). */
  protected lastStreamId = 0;
  protected goingAway = false;
  protected ended = false;
  protected peerInitialWindow = DEFAULT_WINDOW;
  protected peerMaxFrame = 16_384;
  protected connSendWindow = DEFAULT_WINDOW;
  protected connRecvUnacked = 0;
  protected readonly streamWindow: number;
  protected readonly connWindow: number;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs). */
  protected continuation: { streamId: number; flags: number; parts: Buffer[]; size: number } | null = null;
  /** Streams with DATA waiting for window, in order. */
  protected readonly blocked = new Set<S>();
  protected out: Buffer[] = [];
  /** Bytes in `out`. */
  protected outBytes = 0;
  /** Streams told to wait (write() returned false) only because the socket was backed up. */
  protected readonly drainWaiters = new Set<S>();
  protected flushScheduled = false;
  /**
   * The frame header of the last DATA frame queued this tick, and `out.length` right after its
   * payload: while nothing was queued behind it, an end of the stream can ride on it as
   * END_STREAM instead of an empty DATA frame of its own.
   */
  private lastData: Buffer | null = null;
  private lastDataAt = 0;

  constructor(
    readonly socket: Socket,
    windows: H2WindowSettings,
    protected readonly hooks: H2ConnectionHooks,
  ) {
    this.streamWindow = windows.streamWindow ?? 1024 * 1024;
    this.connWindow = windows.connectionWindow ?? 16 * 1024 * 1024;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('end', () => this.destroy());
    socket.on('drain', () => this.onSocketDrain());
  }

  /** A complete header block (decoded) arrived on `streamId`: the role decides what it is. */
  protected abstract onHeaderList(streamId: number, endStream: boolean, headers: string[]): void;
  /** A DATA frame on a stream we do not know: is that id one never opened (a protocol error)? */
  protected abstract isIdle(streamId: number): boolean;
  /** GOAWAY arrived (the payload is at least 8 bytes). */
  protected abstract onGoAway(lastStreamId: number, code: number): void;
  /** Our side of `s` ended while the peer's goes on. */
  protected abstract localEndedFirst(s: S): void;
  /** A setting the base does not handle itself (e.g. MAX_CONCURRENT_STREAMS). */
  protected onSetting(_id: number, _value: number): void {
    /* most are informational */
  }

  /** Bytes in: beforeFrames() (a server's preface check), then the frames they complete. */
  protected onBytes(chunk: Buffer): void {
    if (this.ended) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.beforeFrames()) return;
    this.parseFrames();
  }

  /** A hook run on the buffered bytes before frames are parsed; false stops (e.g. preface incomplete). */
  protected beforeFrames(): boolean {
    return true;
  }

  /** Our SETTINGS and the connection window raised from 65,535. */
  protected queueSettings(extra: readonly (readonly [number, number])[]): void {
    const all: (readonly [number, number])[] = [[SETTINGS_INITIAL_WINDOW_SIZE, this.streamWindow], [SETTINGS_ENABLE_PUSH, 0], ...extra];
    const settings = Buffer.alloc(6 * all.length);
    all.forEach(([id, v], i) => {
      settings.writeUInt16BE(id, i * 6);
      settings.writeUInt32BE(v, i * 6 + 2);
    });
    this.queue(frameHeader(settings.length, FrameType.SETTINGS, 0, 0), settings);
    if (this.connWindow > DEFAULT_WINDOW) this.queue(this.windowUpdate(0, this.connWindow - DEFAULT_WINDOW));
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Graceful close: GOAWAY (no new streams either way); ends once the open streams finish. */
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
  protected teardown(): void {
    this.ended = true;
    this.continuation = null;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) this.abort(s, 'connection', ErrorCode.CANCEL);
    this.hooks.onClose?.();
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  protected queue(...bufs: Buffer[]): void {
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
    this.lastData = null;
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    // Writers stopped by the tick's volume go on once the kernel took it; a backed-up socket
    // wakes them with 'drain' instead (a write taken at once never emits one).
    if (this.drainWaiters.size > 0 && !this.socket.writableNeedDrain) this.onSocketDrain();
  }

  protected windowUpdate(streamId: number, increment: number): Buffer {
    const b = frameHeader(4, FrameType.WINDOW_UPDATE, 0, streamId);
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    return Buffer.concat([b, p]);
  }

  /** @internal */
  sendHeaders(s: S, block: Buffer, endStream: boolean): void {
    this.headerFrames(s.id, block, endStream);
    if (endStream) this.localEnd(s);
  }

  protected headerFrames(streamId: number, block: Buffer, endStream: boolean): void {
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
  sendData(s: S, data: Buffer): boolean {
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
  protected congested(): boolean {
    return this.socket.writableNeedDrain || this.outBytes >= OUT_LIMIT;
  }

  protected onSocketDrain(): void {
    if (this.drainWaiters.size === 0) return;
    const ready: S[] = [];
    for (const s of this.drainWaiters) {
      if (s.closed || s.pending) continue;
      s.needDrain = false;
      ready.push(s);
    }
    this.drainWaiters.clear();
    for (const s of ready) s.onDrain?.();
  }

  /** Sends what the windows allow of `data`; returns what is left (or null). */
  protected sendAllowed(s: S, data: Buffer): Buffer | null {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) return data.subarray(off);
      const head = frameHeader(n, FrameType.DATA, 0, s.id);
      this.queue(head, off === 0 && n === data.length ? data : data.subarray(off, off + n));
      this.lastData = head;
      this.lastDataAt = this.out.length;
      s.sendWindow -= n;
      this.connSendWindow -= n;
      off += n;
    }
    return null;
  }

  /** @internal */
  sendEnd(s: S, trailers: Buffer | null): void {
    if (s.pending) {
      s.pendingEnd = trailers;
      return;
    }
    if (trailers) this.headerFrames(s.id, trailers, true);
    else {
      const last = this.lastData;
      // The stream's last DATA frame is still unsent and nothing is queued behind it: END_STREAM
      // goes on that frame (one frame instead of two: a gRPC request's message and its end).
      if (last !== null && this.lastDataAt === this.out.length && last.readUInt32BE(5) === s.id) last[4] |= FLAG_END_STREAM;
      else this.queue(frameHeader(0, FrameType.DATA, FLAG_END_STREAM, s.id));
    }
    this.localEnd(s);
  }

  protected localEnd(s: S): void {
    s.localEnded = true;
    if (s.remoteEnded) this.finish(s);
    else this.localEndedFirst(s);
  }

  /** After WINDOW_UPDATE: sends what waited, in order, and the ends that waited behind it. */
  protected unblock(): void {
    // onDrain runs after the loop: a writer it wakes may block again and re-enter `blocked`.
    let drained: S[] | null = null;
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
  resetStream(s: S, code: number, completed: boolean): void {
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

  /** A stream error of the peer's making: RST_STREAM, and the handler hears of it ('protocol'). */
  protected streamError(s: S, code: number): void {
    this.rstUnknown(s.id, code);
    this.abort(s, 'protocol', code);
    this.afterStreamClosed();
  }

  protected finish(s: S): void {
    s.closed = true;
    this.streams.delete(s.id);
    this.forget(s);
    this.afterStreamClosed();
  }

  protected abort(s: S, why: StreamAbort, code: number): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.forget(s);
    s.onAbort?.(why, code);
  }

  /** A closed stream's queues go: nothing more is sent or delivered for it. */
  protected forget(s: S): void {
    this.blocked.delete(s);
    this.drainWaiters.delete(s);
    s.inbox = null;
    s.heldTrailers = null;
  }

  protected afterStreamClosed(): void {
    if (this.goingAway && this.streams.size === 0) this.endSocket();
  }

  protected goAway(code: number, debug = ''): void {
    this.goingAway = true;
    const p = Buffer.allocUnsafe(8 + Buffer.byteLength(debug));
    p.writeUInt32BE(this.lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    p.write(debug, 8);
    this.queue(frameHeader(p.length, FrameType.GOAWAY, 0, 0), p);
  }

  protected endSocket(): void {
    this.flush();
    this.socket.end();
  }

  /** A connection error: GOAWAY with the code, then the connection closes. */
  protected connectionError(code: number, message: string): void {
    if (this.ended) return;
    this.hooks.onError?.(message);
    this.goAway(code, message.slice(0, 200));
    this.flush();
    // Streams abort now; the socket closes once the GOAWAY is written.
    this.socket.end();
    this.teardown();
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  private parseFrames(): void {
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

  protected onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
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
        // Neither end accepts push: the server never may, and a client announces ENABLE_PUSH 0.
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE received (push is disabled)');
      case FrameType.PING:
        if (streamId !== 0 || payload.length !== 8) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed PING frame');
        if ((flags & FLAG_ACK) === 0) this.queue(frameHeader(8, FrameType.PING, FLAG_ACK, 0), Buffer.from(payload));
        return;
      case FrameType.GOAWAY:
        if (streamId !== 0 || payload.length < 8) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed GOAWAY frame');
        return this.onGoAway(payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4));
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  protected onSettings(flags: number, streamId: number, payload: Buffer): void {
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
      } else this.onSetting(id, value);
      // HEADER_TABLE_SIZE: our encoder never uses the dynamic table, so any size suits it.
      void SETTINGS_HEADER_TABLE_SIZE;
    }
    this.queue(frameHeader(0, FrameType.SETTINGS, FLAG_ACK, 0));
    this.unblock();
  }

  protected onWindowUpdate(streamId: number, payload: Buffer): void {
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

  protected onRst(streamId: number, payload: Buffer): void {
    if (streamId === 0 || payload.length !== 4) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'malformed RST_STREAM frame');
    const s = this.streams.get(streamId);
    if (s) this.abort(s, 'reset', payload.readUInt32BE(0));
    if (this.goingAway && this.streams.size === 0) this.endSocket();
  }

  /** Strips padding (and the priority fields of HEADERS); null when the padding is invalid. */
  protected unpad(flags: number, payload: Buffer, priority: boolean): Buffer | null {
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

  protected onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole frame, padding included, whatever becomes of the stream.
    this.consumed(payload.length);
    const s = this.streams.get(streamId);
    if (!s || s.remoteEnded) {
      if (this.isIdle(streamId)) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we finished or reset: tell the peer it is closed, once it sends more.
      if (!s) this.rstUnknown(streamId, ErrorCode.STREAM_CLOSED);
      // DATA after the peer's END_STREAM (half-closed remote): a stream error (RFC 9113 §5.1).
      else this.streamError(s, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (!s.headReceived) {
      // DATA before the response head: a malformed response (RFC 9113 §8.1), a stream error.
      this.hooks.onError?.(`stream ${streamId}: DATA before the response HEADERS`);
      return this.streamError(s, ErrorCode.PROTOCOL_ERROR);
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
  protected credit(s: S, n: number): void {
    s.recvUnacked += n;
    if (s.remoteEnded || s.closed) return;
    if (s.recvUnacked >= this.streamWindow / 2) {
      this.queue(this.windowUpdate(s.id, s.recvUnacked));
      s.recvUnacked = 0;
    }
  }

  /** @internal resume(): deliver the held DATA in order until the consumer pauses again. */
  deliverHeld(s: S): void {
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

  protected consumed(n: number): void {
    this.connRecvUnacked += n;
    if (this.connRecvUnacked >= this.connWindow / 2) {
      this.queue(this.windowUpdate(0, this.connRecvUnacked));
      this.connRecvUnacked = 0;
    }
  }

  protected rstUnknown(streamId: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.queue(frameHeader(4, FrameType.RST_STREAM, 0, streamId), p);
  }

  protected remoteEnd(s: S, trailers: string[] | null = null): void {
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

  protected onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const block = this.unpad(flags, payload, true);
    if (!block) return this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    if (flags & FLAG_END_HEADERS) return this.onHeaderBlock(streamId, flags, block);
    this.continuation = { streamId, flags, parts: [Buffer.from(block)], size: block.length };
  }

  protected onContinuation(flags: number, streamId: number, payload: Buffer): void {
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
    this.onHeaderList(streamId, (flags & FLAG_END_STREAM) !== 0, headers);
  }

  /**
   * A header block on an open stream whose head was already seen: trailers, which must end it
   * and hold no pseudo-header or malformed field; otherwise the stream (only) is reset (RFC 9113
   * §8.1, §5.1).
   */
  protected onTrailerList(s: S, endStream: boolean, headers: string[]): void {
    if (s.remoteEnded) return this.streamError(s, ErrorCode.STREAM_CLOSED);
    const bad = endStream ? malformedTrailers(headers) : 'a second HEADERS without END_STREAM';
    if (bad !== null) {
      this.hooks.onError?.(`stream ${s.id}: malformed trailers: ${bad}`);
      return this.streamError(s, ErrorCode.PROTOCOL_ERROR);
    }
    s.remoteEnded = true;
    this.remoteEnd(s, headers);
  }
}


function flushConnection(c: H2Connection<H2StreamBase>): void {
  c.flush();
}
