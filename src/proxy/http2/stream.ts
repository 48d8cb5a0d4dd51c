/**
 * Http2Stream: one HTTP/2 stream on a downstream h2c session, taken through the same machinery
 * as an HTTP/1.1 request (ProxyStream): route match, the reduced filter chain, the Router (which
 * forwards to HTTP/1.1 or HTTP/2 upstreams per cluster), StreamInfo and local replies. gRPC
 * requests get trailers-only local replies (`grpc-status`, `grpc-message`); trailers from the
 * upstream are passed on; a failure after the response started resets this stream only.
 * The chain handling is ChainStream's (shared with the HTTP/1.1 ProxyStream); this class owns the
 * h2 wire: respond / trailers / RST_STREAM and per-stream flow control.
 */
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { LocalReplyOptions } from '../../filters/types.js';
import { HeaderMap } from '../headers.js';
import type { ResponseHead } from '../http1/index.js';
import { addResponseFlag } from '../stream-info.js';
import type { ListenerRuntime, OriginalDestination } from '../http/listener-runtime.js';
import { ChainStream, EMPTY, grpcLocalReplyHeaders, httpToGrpc } from '../http/chain-stream.js';
import type { Router } from '../http/router.js';
import { httpDate } from '../http/date-cache.js';
import { h2ResponseHeaders, isTrailerSafe, synthRequestHead, toHeaderObject } from './headers.js';

/** The downstream connection as an h2 stream sees it: plain data. */
export interface H2ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress: string;
  readonly originalDst: OriginalDestination | null;
}

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** The Http2Stream a server stream belongs to (the shared listeners below find it through this). */
const kOwner = Symbol('capa.http2Stream');
type OwnedStream = ServerHttp2Stream & { [kOwner]?: Http2Stream };

// One set of listener functions for every stream (`this` is the node stream): no closures per stream.
function onData(this: OwnedStream, c: Buffer): void {
  this[kOwner]?.onRequestData(c);
}
function onEnd(this: OwnedStream): void {
  this[kOwner]?.onRequestEnd();
}
function onError(): void {
  /* 'close' follows */
}
function onClose(this: OwnedStream): void {
  const owner = this[kOwner];
  this[kOwner] = undefined;
  owner?.onDownstreamReset();
}
function onWantTrailers(this: OwnedStream): void {
  this[kOwner]?.sendTrailers();
}
/** Backpressure on the response: the router paused its upstream until this stream drains. */
function onDrain(this: OwnedStream): void {
  this[kOwner]?.resumeUpstream();
}

/** respond() options: node copies them, so shared objects serve every stream. */
const END_WITH_HEADERS = { endStream: true } as const;
const TRAILERS_FOLLOW = { waitForTrailers: true } as const;

/** Names never sent in trailers / response headers to an h2 client. */
const notTrailer = (k: string): boolean => !isTrailerSafe(k);

export class Http2Stream extends ChainStream {
  private readonly h2: ServerHttp2Stream;
  private responseEnded = false;
  private pausedBy = 0;
  private trailers: OutgoingHttpHeaders | null = null;
  /** The router whose response is paused until 'drain' (null when not paused). */
  private pausedRouter: Router | null = null;

  constructor(h2: ServerHttp2Stream, headers: HeaderMap, method: string, path: string, authority: string, endStream: boolean, rt: ListenerRuntime, conn: H2ConnectionInfo) {
    super(synthRequestHead(method, path, authority, headers, endStream), headers, rt, rt.config, conn, 'HTTP/2', endStream);
    this.h2 = h2;
    (h2 as OwnedStream)[kOwner] = this;
    h2.on('data', onData);
    h2.on('end', onEnd);
    h2.on('error', onError);
    h2.on('close', onClose);
    h2.on('wantTrailers', onWantTrailers);
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
    if (s.destroyed) return;
    if (!s.write(chunk) && this.router !== null && this.pausedRouter === null) {
      const router = (this.pausedRouter = this.router);
      router.pauseResponse();
      s.once('drain', onDrain);
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
    this.trailers = toHeaderObject(trailers, {}, notTrailer);
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
    const info = this.info;
    status = this.startResponse(status, h);
    const out = h2ResponseHeaders(status, h);
    if (out.date === undefined) out.date = httpDate();
    out.server = this.cfg.spec.http.serverName;
    if (contentLength >= 0) out['content-length'] = String(contentLength);
    const s = this.h2;
    if (s.destroyed || s.closed || s.headersSent) return;
    try {
      // waitForTrailers: the upstream's trailers (grpc-status) are known only at its end.
      s.respond(out, endStream ? END_WITH_HEADERS : TRAILERS_FOLLOW);
      if (endStream) this.responseEnded = true;
    } catch (e) {
      this.rt.logger.warn({ err: (e as Error).message, requestId: info.requestId }, 'cannot send HTTP/2 response headers');
      this.reset('UPE');
    }
  }

  private endResponse(body: Buffer | null): void {
    if (this.responseEnded) return;
    this.responseEnded = true;
    const s = this.h2;
    if (s.destroyed || s.writableEnded) return;
    if (body !== null) s.end(body);
    else s.end();
  }

  /** @internal 'wantTrailers': the upstream's trailers, or none (an empty DATA frame with END_STREAM). */
  sendTrailers(): void {
    const s = this.h2;
    if (s.destroyed || s.closed) return;
    try {
      s.sendTrailers(this.trailers ?? {});
    } catch {
      s.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  /** Abort mid-response: RST_STREAM on this stream; the session and its other streams go on. */
  protected reset(flag: string): void {
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    const s = this.h2;
    if (!s.destroyed && !s.closed) s.close(NGHTTP2_INTERNAL_ERROR);
    this.complete();
  }

  protected onCompleted(): void {
    // A response that ended before the request did: drain the rest of the request body.
    if (this.pausedBy > 0 && !this.h2.destroyed) {
      this.pausedBy = 0;
      this.h2.resume();
    }
  }
}

