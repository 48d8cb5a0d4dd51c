/**
 * Http2Stream: one HTTP/2 stream on a downstream h2c session, taken through the same machinery
 * as an HTTP/1.1 request (ProxyStream): route match, the reduced filter chain, the Router (which
 * forwards to HTTP/1.1 or HTTP/2 upstreams per cluster), StreamInfo and local replies. gRPC
 * requests get trailers-only local replies (`grpc-status`, `grpc-message`); trailers are passed
 * on both ways (the client's to the router, the upstream's to the client); a failure after the
 * response started resets this stream only.
 * The chain handling is ChainStream's (shared with the HTTP/1.1 ProxyStream); this class owns the
 * h2 wire: respond / trailers / RST_STREAM and per-stream flow control.
 */
import type { Socket } from 'node:net';
import type { LocalReplyOptions } from '../../filters/types.js';
import { ErrorCode, type H2Stream } from '../../h2/server-connection.js';
import { HeaderMap } from '../headers.js';
import type { ResponseHead } from '../http1/index.js';
import { addResponseFlag } from '../stream-info.js';
import type { ListenerRuntime, OriginalDestination } from '../http/listener-runtime.js';
import { ChainStream, EMPTY, grpcLocalReplyHeaders, httpToGrpc } from '../http/chain-stream.js';
import type { Router } from '../http/router.js';
import { httpDate } from '../http/date-cache.js';
import { h2ResponseBlock, h2TrailersBlock, headerMapFromRaw, synthRequestHead } from './headers.js';

/** The downstream connection as an h2 stream sees it: plain data. */
export interface H2ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress: string;
  readonly originalDst: OriginalDestination | null;
}

export class Http2Stream extends ChainStream {
  private readonly h2: H2Stream;
  private responseEnded = false;
  private pausedBy = 0;
  /** The upstream's trailers as an HPACK block (sent when the upstream ends). */
  private trailers: Buffer | null = null;
  /** The router whose response is paused until the stream drains (null when not paused). */
  private pausedRouter: Router | null = null;

  constructor(h2: H2Stream, headers: HeaderMap, method: string, path: string, authority: string, endStream: boolean, rt: ListenerRuntime, conn: H2ConnectionInfo) {
    super(synthRequestHead(method, path, authority, headers, endStream), headers, rt, rt.config, conn, 'HTTP/2', endStream);
    this.h2 = h2;
    h2.onData = (c) => this.onRequestData(c);
    h2.onEnd = () => this.onRequestEnd();
    h2.onTrailers = (t) => this.onRequestTrailers(headerMapFromRaw(t));
    h2.onAbort = (why) => this.onDownstreamReset(why === 'protocol' ? 'DPE' : 'DC');
    h2.onDrain = () => this.resumeUpstream();
  }

  protected pauseRequest(): void {
    if (this.pausedBy++ === 0) this.h2.pause();
  }

  protected resumeRequest(): void {
    if (this.pausedBy > 0 && --this.pausedBy === 0) this.h2.resume();
  }

  // === impl response path ===

  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    const h = this.beginLocalReply(opts);
    if (h === null) return;
    const info = this.info;
    if (this.isGrpc) {
      // gRPC trailers-only response: the status travels in the (only) HEADERS frame.
      grpcLocalReplyHeaders(h, info, opts?.grpcStatus ?? httpToGrpc(status), body);
      this.writeHead(200, h, true, -1);
    } else {
      const buf = this.method === 'HEAD' || body.length === 0 ? EMPTY : Buffer.from(body);
      if (buf.length > 0 && !h.has('content-type')) h.add('content-type', 'text/plain; charset=utf-8');
      const bodyless = buf.length === 0;
      this.writeHead(status, h, bodyless, bodyless ? (body.length > 0 ? Buffer.byteLength(body) : 0) : buf.length);
      if (!bodyless) {
        info.bytesSent += buf.length;
        this.endResponse(buf);
      }
    }
    this.complete();
  }

  /** Router callback: the response head (after retries were decided). */
  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    this.decorateUpstreamHead(head);
    this.writeHead(head.status, head.headers, head.noBody, head.noBody ? -1 : head.contentLength);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.done || this.responseEnded) return;
    if (this.chain.hasResponseData && this.filters !== null) this.observe(chunk, false, false);
    this.info.bytesSent += chunk.length;
    const s = this.h2;
    if (s.closed) return;
    // false: the bytes wait for the client's window (or a backed-up socket); onDrain resumes.
    if (!s.write(chunk) && this.router !== null && this.pausedRouter === null) {
      const router = (this.pausedRouter = this.router);
      router.pauseResponse();
    }
  }

  /** @internal The response drained: let the router read from its upstream again. */
  resumeUpstream(): void {
    const r = this.pausedRouter;
    this.pausedRouter = null;
    r?.resumeResponse();
  }

  onUpstreamTrailers(trailers: HeaderMap): void {
    if (this.done) return;
    const g = trailers.get('grpc-status');
    if (g !== undefined) this.info.grpcStatus = Number(g);
    const block = h2TrailersBlock(trailers);
    this.trailers = block.length > 0 ? block : null;
  }

  onUpstreamEnd(): void {
    if (this.done) return;
    if (this.chain.hasResponseData && this.filters !== null) this.observe(EMPTY, true, false);
    this.router = null;
    this.endResponse(null);
    this.complete();
  }

  onUpstreamUpgrade(upstream: Socket): void {
    // HTTP/1 upgrades have no meaning on an h2 stream (extended CONNECT is not supported).
    upstream.destroy();
    this.router = null;
    this.reset('UPE');
  }

  private writeHead(status: number, h: HeaderMap, endStream: boolean, contentLength: number): void {
    status = this.startResponse(status, h);
    const s = this.h2;
    if (s.closed || s.headersSent) return;
    s.respond(h2ResponseBlock(status, h, httpDate(), this.cfg.spec.http.serverName, contentLength), endStream);
    if (endStream) this.responseEnded = true;
  }

  /** Ends the response: `body` (a local reply's), then the upstream's trailers or END_STREAM. */
  private endResponse(body: Buffer | null): void {
    if (this.responseEnded) return;
    this.responseEnded = true;
    const s = this.h2;
    if (s.closed) return;
    if (body !== null) s.write(body);
    const t = this.trailers;
    this.trailers = null;
    s.end(t ?? undefined);
  }

  /** Abort mid-response: RST_STREAM on this stream; the connection and its other streams go on. */
  protected reset(flag: string): void {
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    this.h2.reset(ErrorCode.INTERNAL_ERROR);
    this.complete();
  }

  protected onCompleted(): void {
    // A response that ended before the request did: the connection resets the rest of the
    // request (RST_STREAM NO_ERROR); nothing held for it matters any more.
    if (this.pausedBy > 0) {
      this.pausedBy = 0;
      this.h2.resume();
    }
  }
}
