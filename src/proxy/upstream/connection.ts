/**
 * One keep-alive HTTP/1.1 connection to an upstream host. It writes one request at a time and
 * parses the response with our strict codec, handing the response to a narrow handler (no
 * back-reference to the router). When the response ends and both sides allow keep-alive, it
 * tells its pool it is idle again.
 */
import type { Socket } from 'node:net';
import { CapaError } from '../../errors.js';
import { parseResponseHead, ChunkedDecoder, type ResponseHead } from '../http1/index.js';

export interface ResponseHandler {
  /** The final response head (1xx other than 101 are swallowed). */
  onResponseHead(head: ResponseHead): void;
  /** Decoded body bytes (a slice of what arrived; copy it to keep it). */
  onResponseData(chunk: Buffer): void;
  onResponseEnd(): void;
  /** 101 Switching Protocols: the socket now belongs to the handler; `rest` is already-read bytes. */
  onUpgrade(socket: Socket, rest: Buffer): void;
  /** `headReceived` is false when nothing of the response arrived (retry decisions). */
  onError(err: CapaError, headReceived: boolean): void;
}

export interface ConnectionOwner {
  onIdle(conn: UpstreamConnection): void;
  onClosed(conn: UpstreamConnection): void;
}

const MAX_RESPONSE_HEAD = 96 * 1024;
const BODY_NONE = 0;
const BODY_LENGTH = 1;
const BODY_CHUNKED = 2;
const BODY_CLOSE = 3;

export class UpstreamConnection {
  readonly socket: Socket;
  requests = 0;
  closed = false;
  /** Set when the connection can not be reused after the current exchange. */
  private noReuse = false;
  private handler: ResponseHandler | null = null;
  private method = 'GET';
  private buf: Buffer | null = null;
  private headDone = false;
  private bodyMode = BODY_NONE;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private readonly owner: ConnectionOwner;
  private readonly onDecoded = (chunk: Buffer): void => {
    this.handler?.onResponseData(chunk);
  };

  constructor(socket: Socket, owner: ConnectionOwner) {
    this.socket = socket;
    this.owner = owner;
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {
      /* 'close' follows */
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => this.onClose());
  }

  get busy(): boolean {
    return this.handler !== null;
  }

  /** Send a request head (a complete serialised head string); body follows through write()/end(). */
  start(method: string, head: string, handler: ResponseHandler, lastRequest: boolean): void {
    this.handler = handler;
    this.method = method;
    this.headDone = false;
    this.requests++;
    if (lastRequest) this.noReuse = true;
    this.socket.write(head, 'latin1');
  }

  write(chunk: Buffer | string): boolean {
    return this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Abandon the current exchange (timeout, downstream reset): the connection is closed, never reused. */
  abort(): void {
    this.handler = null;
    this.noReuse = true;
    this.socket.destroy();
  }

  destroy(): void {
    this.abort();
  }

  private onData(d: Buffer): void {
    if (this.handler === null) {
      // Bytes with no request outstanding: the upstream is confused; never reuse this connection.
      this.noReuse = true;
      this.socket.destroy();
      return;
    }
    if (this.buf !== null) {
      d = Buffer.concat([this.buf, d]);
      this.buf = null;
    }
    let off = 0;
    while (off < d.length && this.handler !== null) {
      if (!this.headDone) {
        const r = parseResponseHead(d, off, MAX_RESPONSE_HEAD, this.method);
        if (r.kind === 'incomplete') {
          this.buf = off === 0 ? d : d.subarray(off);
          return;
        }
        if (r.kind === 'error') {
          this.fail(new CapaError('CAPA_ERR_UPSTREAM_PROTOCOL', `upstream sent a malformed response: ${r.reason}`), false);
          return;
        }
        off += r.consumed;
        const head = r.head;
        if (head.status < 200 && head.status !== 101) continue; // 100 Continue and friends
        if (head.status === 101) {
          const h = this.handler;
          this.handler = null;
          this.noReuse = true;
          this.socket.removeAllListeners('data');
          this.socket.removeAllListeners('close');
          this.socket.removeAllListeners('end');
          this.closed = true;
          this.owner.onClosed(this);
          h.onResponseHead(head);
          h.onUpgrade(this.socket, d.subarray(off));
          return;
        }
        this.headDone = true;
        if (!head.keepAlive) this.noReuse = true;
        if (head.noBody) this.bodyMode = BODY_NONE;
        else if (head.chunked) {
          this.bodyMode = BODY_CHUNKED;
          this.decoder = new ChunkedDecoder(this.onDecoded);
        } else if (head.contentLength >= 0) {
          this.bodyMode = BODY_LENGTH;
          this.remaining = head.contentLength;
        } else {
          this.bodyMode = BODY_CLOSE;
          this.noReuse = true;
        }
        this.handler.onResponseHead(head);
        if (this.handler === null) return; // aborted from within
        if (this.bodyMode === BODY_NONE || (this.bodyMode === BODY_LENGTH && this.remaining === 0)) {
          this.finish(off < d.length);
          return;
        }
        continue;
      }
      switch (this.bodyMode) {
        case BODY_LENGTH: {
          const n = Math.min(this.remaining, d.length - off);
          this.remaining -= n;
          this.handler.onResponseData(off === 0 && n === d.length ? d : d.subarray(off, off + n));
          off += n;
          if (this.remaining === 0 && this.handler !== null) {
            this.finish(off < d.length);
            return;
          }
          break;
        }
        case BODY_CHUNKED: {
          const dec = this.decoder!;
          off += dec.push(d, off);
          if (dec.error) {
            this.fail(new CapaError('CAPA_ERR_UPSTREAM_PROTOCOL', `upstream sent a malformed chunked body: ${dec.error}`), true);
            return;
          }
          if (dec.done && this.handler !== null) {
            this.finish(off < d.length);
            return;
          }
          break;
        }
        default:
          this.handler.onResponseData(off === 0 ? d : d.subarray(off));
          off = d.length;
      }
    }
  }

  private finish(extraBytes: boolean): void {
    const h = this.handler!;
    this.handler = null;
    this.decoder = null;
    this.bodyMode = BODY_NONE;
    if (extraBytes) this.noReuse = true;
    h.onResponseEnd();
    if (this.noReuse || this.closed) this.socket.destroy();
    else {
      // Backpressure may have paused the socket on the last body chunk, and the 'drain' that
      // would resume it now finds no exchange: a paused idle connection would never read the
      // next response from the pool.
      if (this.socket.isPaused()) this.socket.resume();
      this.owner.onIdle(this);
    }
  }

  private fail(err: CapaError, headReceived: boolean): void {
    const h = this.handler;
    this.handler = null;
    this.noReuse = true;
    this.socket.destroy();
    h?.onError(err, headReceived);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const h = this.handler;
    this.handler = null;
    if (h !== null) {
      if (this.headDone && this.bodyMode === BODY_CLOSE) h.onResponseEnd();
      else
        h.onError(
          new CapaError('CAPA_ERR_UPSTREAM_RESET', this.headDone ? 'upstream connection closed in the middle of the response body' : 'upstream connection closed before the response head'),
          this.headDone,
        );
    }
    this.owner.onClosed(this);
  }

  get reusable(): boolean {
    return !this.noReuse && !this.closed;
  }
}
