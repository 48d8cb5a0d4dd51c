/**
 * One downstream HTTP/1.1 connection: parses request heads with our strict codec, frames request
 * bodies, hands each request to a ProxyStream, and keeps the connection alive (pipelined requests
 * wait their turn). Malformed input gets a clear 4xx and the connection is closed.
 */
import type { Socket } from 'node:net';
import { CapaError, localReplyFor, type ErrorCode } from '../../errors.js';
import { parseRequestHead, ChunkedDecoder, STATUS_TEXT } from '../http1/index.js';
import { ProxyStream, type Downstream } from './stream.js';
import type { ListenerRuntime, OriginalDestination } from './listener-runtime.js';
import { httpDate } from './date-cache.js';

const S_HEAD = 0;
const S_BODY = 1;
const S_WAIT = 2;
const S_UPGRADED = 3;
const S_CLOSED = 4;

export class ServerConnection implements Downstream {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  /** Where the client was going before iptables redirected it (capture listeners), else null. */
  readonly originalDst: OriginalDestination | null;
  private readonly rt: ListenerRuntime;
  private state = S_HEAD;
  private buf: Buffer | null = null;
  private stream: ProxyStream | null = null;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private headTimer: NodeJS.Timeout | null = null;
  private pausedBy = 0;
  private readonly onBody = (c: Buffer): void => {
    this.stream?.onRequestData(c);
  };
  /** Called when the connection is gone, for drain accounting. */
  onClosed: (() => void) | null = null;

  constructor(socket: Socket, rt: ListenerRuntime, originalDst: OriginalDestination | null = null) {
    this.socket = socket;
    this.rt = rt;
    this.originalDst = originalDst;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`;
    socket.setNoDelay(true);
    const idle = rt.config.spec.http.idleTimeoutMs;
    if (idle > 0) {
      // 'on', not setTimeout's callback (a 'once'): the timer re-arms on activity and must keep
      // working after it fired while a request was in flight.
      socket.setTimeout(idle);
      socket.on('timeout', () => this.onIdle());
    }
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {
      /* 'close' follows */
    });
    socket.on('end', () => {
      if (this.stream === null) socket.end();
    });
    socket.on('close', () => this.onClose());
  }

  /** Idle with no request in flight: close (Envoy idle_timeout). A half-received head gets a 408. */
  private onIdle(): void {
    if (this.stream !== null) return;
    if (this.buf !== null && this.state === S_HEAD) this.reject('CAPA_ERR_REQUEST_TIMEOUT', 'the request head was not received before the idle timeout');
    else this.socket.destroy();
  }

  /** Draining: close now when idle; otherwise the current response carries connection: close. */
  closeIfIdle(): void {
    if (this.stream === null && this.state === S_HEAD) this.socket.destroy();
  }

  /** Bytes already read by a sniffer. */
  feed(d: Buffer): void {
    this.onData(d);
  }

  private onData(d: Buffer): void {
    if (this.state === S_CLOSED || this.state === S_UPGRADED) return;
    if (this.buf !== null) {
      d = Buffer.concat([this.buf, d]);
      this.buf = null;
    }
    this.process(d, 0);
  }

  private process(d: Buffer, off: number): void {
    while (true) {
      if (this.state === S_HEAD) {
        if (off >= d.length) return;
        const cfg = this.rt.config;
        const r = parseRequestHead(d, off, cfg.spec.http.maxRequestHeadersBytes);
        if (r.kind === 'incomplete') {
          this.buf = off === 0 ? d : d.subarray(off);
          this.armHeadTimer();
          return;
        }
        if (r.kind === 'error') {
          this.reject(r.code as ErrorCode, r.reason);
          return;
        }
        this.clearHeadTimer();
        off += r.consumed;
        const head = r.head;
        const stream = new ProxyStream(this, head, this.rt, cfg);
        this.stream = stream;
        if (head.chunked) {
          this.decoder = new ChunkedDecoder(this.onBody);
          this.state = S_BODY;
        } else if (head.contentLength > 0) {
          this.remaining = head.contentLength;
          this.state = S_BODY;
        } else {
          // No body: the request is complete with its head.
          this.state = S_WAIT;
          this.buf = off < d.length ? d.subarray(off) : null;
          stream.requestEnded = true;
          stream.begin();
          return;
        }
        stream.begin();
        if (this.stream !== stream || this.state !== S_BODY) return;
        continue;
      }
      if (this.state === S_BODY) {
        if (off >= d.length) return;
        const stream = this.stream!;
        if (this.decoder !== null) {
          const dec = this.decoder;
          off += dec.push(d, off);
          if (dec.error) {
            this.decoder = null;
            this.bodyError(dec.error);
            return;
          }
          if (!dec.done) return;
          this.decoder = null;
          if (dec.trailers !== null) stream.onRequestTrailers(dec.trailers);
        } else {
          const n = Math.min(this.remaining, d.length - off);
          this.remaining -= n;
          stream.onRequestData(off === 0 && n === d.length ? d : d.subarray(off, off + n));
          off += n;
          if (this.remaining > 0) return;
        }
        this.state = S_WAIT;
        this.buf = off < d.length ? d.subarray(off) : null;
        stream.onRequestEnd();
        return;
      }
      // S_WAIT: a pipelined request waits until the current response is done.
      if (off < d.length) {
        this.buf = off === 0 ? d : d.subarray(off);
        if (this.buf.length > 256 * 1024) this.pauseRequest();
      }
      return;
    }
  }

  /** ProxyStream: the exchange is over. */
  streamDone(keepAlive: boolean): void {
    this.stream = null;
    if (this.state === S_UPGRADED || this.state === S_CLOSED) return;
    if (!keepAlive || this.state === S_BODY || this.rt.draining) {
      this.state = S_CLOSED;
      this.socket.end();
      return;
    }
    this.state = S_HEAD;
    this.pausedBy = 0;
    this.socket.resume();
    const b = this.buf;
    if (b !== null) {
      this.buf = null;
      this.process(b, 0);
    }
  }

  upgrade(upstream: Socket, upstreamRest: Buffer): void {
    this.state = S_UPGRADED;
    const down = this.socket;
    down.setTimeout(0);
    down.removeAllListeners('data');
    down.removeAllListeners('end');
    if (upstreamRest.length > 0) down.write(upstreamRest);
    if (this.buf !== null) {
      upstream.write(this.buf);
      this.buf = null;
    }
    upstream.on('error', () => down.destroy());
    down.on('error', () => upstream.destroy());
    upstream.on('close', () => down.destroy());
    down.on('close', () => upstream.destroy());
    upstream.pipe(down);
    down.pipe(upstream);
    down.resume();
    upstream.resume();
  }

  pauseRequest(): void {
    if (this.pausedBy++ === 0) this.socket.pause();
  }

  resumeRequest(): void {
    if (this.pausedBy > 0 && --this.pausedBy === 0) this.socket.resume();
  }

  private bodyError(reason: string): void {
    const s = this.stream;
    this.stream = null;
    if (s !== null && s.hasResponseStarted) {
      this.state = S_CLOSED;
      this.socket.destroy();
    } else this.reject('CAPA_ERR_BAD_REQUEST', `malformed chunked request body: ${reason}`);
    s?.onDownstreamReset();
  }

  /** A local reply for input we could not parse; the connection closes after it. */
  private reject(code: ErrorCode, reason: string): void {
    if (this.state === S_CLOSED) return;
    this.state = S_CLOSED;
    this.clearHeadTimer();
    const r = localReplyFor(new CapaError(code, reason));
    const text = r.body;
    this.socket.end(
      `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\ndate: ${httpDate()}\r\nserver: ${this.rt.config.spec.http.serverName}\r\nconnection: close\r\n\r\n${text}`,
    );
    this.rt.onProtocolError?.(r.status, r.flag, this.remoteAddress);
  }

  private armHeadTimer(): void {
    if (this.headTimer !== null) return;
    const ms = this.rt.config.spec.http.requestHeadersTimeoutMs;
    if (ms <= 0) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      if (this.state === S_HEAD && this.buf !== null) this.reject('CAPA_ERR_REQUEST_TIMEOUT', `the request head was not received within ${ms}ms`);
    }, ms);
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
  }

  private onClose(): void {
    this.clearHeadTimer();
    const prev = this.state;
    this.state = S_CLOSED;
    const s = this.stream;
    this.stream = null;
    if (s !== null && prev !== S_UPGRADED) s.onDownstreamReset();
    this.onClosed?.();
  }
}
