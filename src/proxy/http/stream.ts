/**
 * ProxyStream: one request/response exchange on a downstream HTTP/1.1 connection. The chain,
 * routing and completion are ChainStream's (chain-stream.ts); this class writes the response (or
 * a local reply) back with HTTP/1.1 framing and hands the connection back when both sides end.
 */
import type { Socket } from 'node:net';
import type { LocalReplyOptions } from '../../filters/types.js';
import { HeaderMap } from '../headers.js';
import type { RequestHead, ResponseHead } from '../http1/index.js';
import { STATUS_TEXT } from '../http1/index.js';
import { addResponseFlag } from '../stream-info.js';
import type { HttpListenerConfig } from './listener-config.js';
import { httpDate } from './date-cache.js';
import { NOT_FORWARDED } from './hop-by-hop.js';
import type { ListenerRuntime, OriginalDestination } from './listener-runtime.js';
import { ChainStream, EMPTY, grpcLocalReplyHeaders, httpToGrpc } from './chain-stream.js';

/** The downstream connection as the stream sees it (no back-reference to its internals). */
export interface Downstream {
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress: string;
  /** SO_ORIGINAL_DST of a redirected connection (capture listeners); null when not redirected or unknown. */
  readonly originalDst?: OriginalDestination | null;
  /** Called once the response is fully written; `keepAlive` false closes the connection. */
  streamDone(keepAlive: boolean): void;
  /** 101: from now on bytes flow raw between the two sockets. */
  upgrade(upstream: Socket, upstreamRest: Buffer): void;
  pauseRequest(): void;
  resumeRequest(): void;
}

const RESP_NONE = 0;
const RESP_LENGTH = 1;
const RESP_CHUNKED = 2;
const RESP_CLOSE = 3;

export class ProxyStream extends ChainStream {
  private readonly down: Downstream;
  private responseMode = RESP_NONE;
  private responseKeepAlive = true;
  private finished = false;

  constructor(down: Downstream, head: RequestHead, rt: ListenerRuntime, cfg: HttpListenerConfig) {
    super(head, head.headers, rt, cfg, { remoteAddress: down.remoteAddress, remotePort: down.remotePort, localAddress: down.localAddress, originalDst: down.originalDst ?? null }, head.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', false);
    this.down = down;
  }

  protected override onHeadDecorated(): void {
    if (this.head.expectContinue) {
      this.requestHeaders.remove('expect');
      this.down.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    }
  }

  protected pauseRequest(): void {
    this.down.pauseRequest();
  }

  protected resumeRequest(): void {
    this.down.resumeRequest();
  }

  protected override onRequestEndAfterDone(): void {
    this.finishIfDone();
  }

  // === impl response path ===

  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    const h = this.beginLocalReply(opts);
    if (h === null) return;
    const info = this.info;
    let bodyBuf = EMPTY;
    if (this.isGrpc) {
      grpcLocalReplyHeaders(h, info, opts?.grpcStatus ?? httpToGrpc(status), body);
      status = 200;
    } else if (body.length > 0) {
      if (!h.has('content-type')) h.add('content-type', 'text/plain; charset=utf-8');
      bodyBuf = Buffer.from(body);
    }
    this.writeResponse(status, h, bodyBuf, true);
  }

  /** Router callback: the response head to pass on (after retries were decided). */
  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    const h = head.headers;
    // 101: Connection/Upgrade are hop-by-hop, but the client needs them to switch protocols.
    const upgrade = head.status === 101 ? (h.get('upgrade') ?? this.head.upgrade) : '';
    this.decorateUpstreamHead(head);
    let mode: number;
    if (head.noBody) mode = RESP_NONE;
    else if (head.contentLength >= 0) mode = RESP_LENGTH;
    else if (this.head.versionMinor === 1) mode = RESP_CHUNKED;
    else mode = RESP_CLOSE;
    this.writeHead(head.status, h, mode, head.contentLength, head.reason, upgrade);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.done) return;
    if (this.chain.hasResponseData && this.filters !== null) this.observe(chunk, false, false);
    this.info.bytesSent += chunk.length;
    const sock = this.down.socket;
    let ok: boolean;
    if (this.responseMode === RESP_CHUNKED) {
      if (chunk.length === 0) return;
      sock.cork();
      sock.write(chunk.length.toString(16) + '\r\n', 'latin1');
      sock.write(chunk);
      ok = sock.write('\r\n', 'latin1');
      sock.uncork();
    } else ok = sock.write(chunk);
    if (sock.writableCorked > 0) sock.uncork();
    if (!ok && this.router !== null) {
      const router = this.router;
      router.pauseResponse();
      sock.once('drain', () => router.resumeResponse());
    }
  }

  onUpstreamEnd(): void {
    if (this.done) return;
    if (this.chain.hasResponseData && this.filters !== null) this.observe(EMPTY, true, false);
    const sock = this.down.socket;
    if (this.responseMode === RESP_CHUNKED) sock.write('0\r\n\r\n', 'latin1');
    if (sock.writableCorked > 0) sock.uncork();
    this.router = null;
    this.complete();
  }

  onUpstreamUpgrade(upstream: Socket, rest: Buffer): void {
    if (this.done) return;
    this.router = null;
    // Hand the sockets over first: completing the stream must not parse bytes the client sent
    // after its upgrade request as a new HTTP request (they belong to the tunnel).
    this.down.upgrade(upstream, rest);
    this.complete();
  }

  private writeHead(status: number, h: HeaderMap, mode: number, contentLength: number, reason?: string, upgrade = ''): void {
    const final = this.startResponse(status, h);
    if (final !== status) {
      status = final;
      reason = undefined;
    }
    let keepAlive = this.head.keepAlive && !this.rt.draining && mode !== RESP_CLOSE;
    if (!this.requestEnded) keepAlive = false;
    this.responseKeepAlive = keepAlive;
    this.responseMode = mode;
    const srv = this.cfg.spec.http.serverName;
    let out = `HTTP/1.1 ${status} ${reason || STATUS_TEXT[status] || 'Unknown'}\r\n`;
    const kv = h.kv;
    let hasDate = false;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      if (NOT_FORWARDED.has(k) || k === 'server') continue;
      if (k === 'date') hasDate = true;
      out += `${k}: ${kv[i + 1]}\r\n`;
    }
    if (!hasDate) out += `date: ${httpDate()}\r\n`;
    out += `server: ${srv}\r\n`;
    if (mode === RESP_LENGTH) out += `content-length: ${contentLength}\r\n`;
    else if (mode === RESP_CHUNKED) out += 'transfer-encoding: chunked\r\n';
    else if (mode === RESP_NONE && contentLength >= 0) out += `content-length: ${contentLength}\r\n`;
    if (upgrade !== '') out += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
    else if (!keepAlive) out += 'connection: close\r\n';
    else if (this.head.versionMinor === 0) out += 'connection: keep-alive\r\n';
    out += '\r\n';
    const sock = this.down.socket;
    if (mode !== RESP_NONE) {
      // Head and the first body bytes leave in one writev (one syscall instead of two).
      sock.cork();
      process.nextTick(uncork, sock);
    }
    sock.write(out, 'latin1');
  }

  private writeResponse(status: number, h: HeaderMap, body: Buffer, local: boolean): void {
    this.writeHead(status, h, this.method === 'HEAD' || status === 204 || status === 304 ? RESP_NONE : RESP_LENGTH, body.length);
    if (body.length > 0 && this.method !== 'HEAD') {
      this.info.bytesSent += body.length;
      this.down.socket.write(body);
    }
    const sock = this.down.socket;
    if (sock.writableCorked > 0) sock.uncork();
    if (local) this.complete();
  }

  /** Abort mid-response: the downstream sees the connection close. */
  protected reset(flag: string): void {
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    this.responseKeepAlive = false;
    this.down.socket.destroy();
    this.complete();
  }

  protected onCompleted(): void {
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (this.finished) return;
    // The connection can take the next request only when both directions are over.
    if (!this.requestEnded && this.responseKeepAlive) this.responseKeepAlive = false;
    this.finished = true;
    this.down.streamDone(this.responseKeepAlive);
  }
}

function uncork(sock: Socket): void {
  if (sock.writableCorked > 0) sock.uncork();
}
