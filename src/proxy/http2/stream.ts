/**
 * Http2Stream: one HTTP/2 stream on a downstream h2c session, taken through the same machinery
 * as an HTTP/1.1 request (ProxyStream): route match, the reduced filter chain, the Router (which
 * forwards to HTTP/1.1 or HTTP/2 upstreams per cluster), StreamInfo and local replies. gRPC
 * requests get trailers-only local replies (`grpc-status`, `grpc-message`); trailers from the
 * upstream are passed on; a failure after the response started resets this stream only.
 * Longer than 400 lines because it mirrors ProxyStream's chain handling hook for hook (the HTTP/1
 * stream keeps its own copy, bound to socket framing); a shared chain runner would fold both.
 */
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { CapaError, localReplyFor } from '../../errors.js';
import type { FilterResult, HttpFilter, HttpStream, LocalReplyOptions, ResponseHead as FilterResponseHead } from '../../filters/types.js';
import { HeaderMap } from '../headers.js';
import type { RequestHead, ResponseHead } from '../http1/index.js';
import { newStreamInfo, addResponseFlag, type StreamInfo } from '../stream-info.js';
import { splitPath, type CompiledRoute } from '../router/route-table.js';
import type { HttpListenerConfig } from '../http/listener-config.js';
import type { ReducedChain, RouteData } from '../http/compiled-route.js';
import type { ListenerRuntime, OriginalDestination } from '../http/listener-runtime.js';
import { Router, type RouterCallbacks } from '../http/router.js';
import { applyMutations, httpToGrpc } from '../http/stream.js';
import { httpDate } from '../http/date-cache.js';
import { h2ResponseHeaders, isTrailerSafe, synthRequestHead, toHeaderObject } from './headers.js';
import { redirectLocation } from '../router/redirect.js';

/** The downstream connection as an h2 stream sees it: plain data. */
export interface H2ConnectionInfo {
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly originalDst: OriginalDestination | null;
}

const EMPTY = Buffer.alloc(0);
const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

export class Http2Stream implements HttpStream, RouterCallbacks {
  readonly info: StreamInfo;
  readonly requestHeaders: HeaderMap;
  method: string;
  path: string;
  authority: string;
  readonly isGrpc: boolean;
  routeName = '';
  clusterName = '';
  readonly head: RequestHead;
  readonly originalDst: OriginalDestination | null;

  private readonly h2: ServerHttp2Stream;
  private readonly rt: ListenerRuntime;
  private readonly cfg: HttpListenerConfig;
  private readonly remoteAddress: string;
  private route: CompiledRoute<RouteData> | null = null;
  private chain: ReducedChain;
  private filters: HttpFilter[] | null = null;
  private filterIndex = 0;
  private paused = false;
  private router: Router | null = null;
  private pendingBody: Buffer[] | null = null;
  private requestEnded: boolean;
  private responseStarted = false;
  private responseEnded = false;
  private done = false;
  private requestTimer: NodeJS.Timeout | null = null;
  private pausedBy = 0;
  private trailers: OutgoingHttpHeaders | null = null;

  constructor(h2: ServerHttp2Stream, headers: HeaderMap, method: string, path: string, authority: string, endStream: boolean, rt: ListenerRuntime, conn: H2ConnectionInfo) {
    this.h2 = h2;
    this.rt = rt;
    const cfg = (this.cfg = rt.config);
    this.method = method;
    this.path = path;
    this.authority = authority;
    this.requestHeaders = headers;
    this.requestEnded = endStream;
    this.remoteAddress = conn.remoteAddress;
    this.originalDst = conn.originalDst;
    this.head = synthRequestHead(method, path, authority, headers, endStream);
    const ct = headers.get('content-type');
    this.isGrpc = ct !== undefined && ct.startsWith('application/grpc');
    const info = (this.info = newStreamInfo());
    info.startTime = Date.now();
    info.startMono = performance.now();
    info.method = method;
    info.path = path;
    info.authority = authority;
    info.protocol = 'HTTP/2';
    info.direction = cfg.spec.direction;
    info.listenerName = cfg.spec.name;
    info.downstreamRemoteAddress = conn.remoteAddress;
    info.downstreamLocalAddress = conn.localAddress;
    this.chain = cfg.defaultChain;
    h2.on('data', (c: Buffer) => this.onRequestData(c));
    h2.on('end', () => this.onRequestEnd());
    h2.on('error', () => {
      /* 'close' follows */
    });
    h2.on('close', () => this.onDownstreamReset());
    h2.on('wantTrailers', () => this.sendTrailers());
  }

  // === impl request path ===

  begin(): void {
    const s = this.cfg.spec.http;
    const h = this.requestHeaders;
    const info = this.info;
    let rid = h.get('x-request-id');
    if (rid === undefined && s.generateRequestId) {
      rid = randomUUID();
      h.add('x-request-id', rid);
    }
    info.requestId = rid ?? '';
    info.userAgent = h.get('user-agent') ?? '';
    if (s.useRemoteAddress) {
      const xff = h.get('x-forwarded-for');
      const v = xff === undefined ? this.remoteAddress : `${xff}, ${this.remoteAddress}`;
      h.set('x-forwarded-for', v);
      info.xForwardedFor = v;
    } else info.xForwardedFor = h.get('x-forwarded-for') ?? '';
    if (!h.has('x-forwarded-proto')) h.add('x-forwarded-proto', 'http');
    const timeout = s.requestTimeoutMs;
    if (timeout > 0 && !this.requestEnded) this.requestTimer = setTimeout(() => this.onRequestTimeout(), timeout);
    const [path, query] = splitPath(this.path);
    const route = this.cfg.routes.match(this.authority, this.method, path, query, h);
    if (route !== null) {
      this.route = route;
      this.routeName = route.name;
      info.routeName = route.name;
      this.chain = route.data.chain;
      const a = route.data.action;
      if (a.kind === 'route' && a.clusters.length === 1) this.clusterName = a.clusters[0]!;
    }
    const create = this.chain.create;
    if (create.length > 0) {
      const fs: HttpFilter[] = new Array(create.length);
      for (let i = 0; i < create.length; i++) fs[i] = create[i]!();
      this.filters = fs;
    }
    this.runRequestFilters();
  }

  private runRequestFilters(): void {
    const fs = this.filters;
    if (fs !== null) {
      while (this.filterIndex < fs.length) {
        const f = fs[this.filterIndex++]!;
        if (f.onRequestHeaders === undefined) continue;
        let r: FilterResult;
        try {
          r = f.onRequestHeaders(this, this.requestEnded);
        } catch (e) {
          this.filterFailed(e);
          return;
        }
        if (this.done || this.responseStarted) return;
        if (r === 'stop') {
          this.paused = true;
          return;
        }
        if (r !== undefined && r !== 'continue') {
          this.paused = true;
          (r as Promise<unknown>).then(
            (v) => {
              if (v !== 'stop') this.continueRequest();
            },
            (e) => this.filterFailed(e),
          );
          return;
        }
      }
    }
    this.decodeComplete();
  }

  continueRequest(): void {
    if (!this.paused || this.done || this.responseStarted) return;
    this.paused = false;
    this.runRequestFilters();
  }

  private filterFailed(e: unknown): void {
    this.rt.logger.error({ err: e instanceof Error ? e.message : String(e), route: this.routeName, requestId: this.info.requestId }, 'http filter threw; failing the request');
    if (this.responseStarted) this.reset('FF');
    else this.localError(new CapaError('CAPA_ERR_FILTER_FAILED', 'a filter failed while handling the request'));
  }

  private decodeComplete(): void {
    const route = this.route;
    if (route === null) {
      this.localError(new CapaError('CAPA_ERR_NO_ROUTE', `no route matched ${this.method} ${this.authority}${this.path}`));
      return;
    }
    const a = route.data.action;
    if (a.kind === 'directResponse') {
      this.sendLocalReply(a.status, a.body, { details: 'direct_response' });
      return;
    }
    if (a.kind === 'redirect') {
      const location = redirectLocation(a, this.path, this.authority, this.requestHeaders.get('x-forwarded-proto') ?? 'http', route.spec.match.prefix);
      this.sendLocalReply(a.responseCode, '', { headers: { location }, details: 'redirect' });
      return;
    }
    const router = (this.router = new Router(this, a, route.data, this.rt));
    router.pauseDownstream = () => this.pauseRequest();
    router.resumeDownstream = () => this.resumeRequest();
    const pending = this.pendingBody;
    this.pendingBody = null;
    if (pending !== null) {
      for (const c of pending) router.writeBody(c);
      this.resumeRequest();
    }
    if (this.requestEnded) router.endBody();
    router.start();
  }

  private pauseRequest(): void {
    if (this.pausedBy++ === 0) this.h2.pause();
  }

  private resumeRequest(): void {
    if (this.pausedBy > 0 && --this.pausedBy === 0) this.h2.resume();
  }

  private onRequestData(chunk: Buffer): void {
    if (this.done) return;
    this.info.bytesReceived += chunk.length;
    if (this.chain.hasRequestData && this.filters !== null) this.observe(chunk, false, true);
    if (this.done) return;
    if (this.router !== null) this.router.writeBody(chunk);
    else {
      (this.pendingBody ??= []).push(chunk);
      if (this.pendingBody.length === 16) this.pauseRequest();
    }
  }

  private onRequestEnd(): void {
    // END_STREAM on the headers: the request was complete from the start.
    if (this.requestEnded) return;
    this.requestEnded = true;
    if (this.requestTimer !== null) {
      clearTimeout(this.requestTimer);
      this.requestTimer = null;
    }
    if (this.done) return;
    if (this.chain.hasRequestData && this.filters !== null) this.observe(EMPTY, true, true);
    this.router?.endBody();
  }

  private observe(chunk: Buffer, end: boolean, request: boolean): void {
    const fs = this.filters!;
    for (let i = 0; i < fs.length; i++) {
      const f = fs[i]!;
      try {
        if (request) f.onRequestData?.(this, chunk, end);
        else f.onResponseData?.(this, chunk, end);
      } catch (e) {
        this.filterFailed(e);
        return;
      }
    }
  }

  private onRequestTimeout(): void {
    this.requestTimer = null;
    if (this.requestEnded || this.done) return;
    this.router?.abort();
    this.router = null;
    if (!this.responseStarted) this.localError(new CapaError('CAPA_ERR_REQUEST_TIMEOUT', `the request was not received within ${this.cfg.spec.http.requestTimeoutMs}ms`));
    else this.reset('DT');
  }

  /** The h2 stream closed (client RST_STREAM, session gone) before the exchange completed. */
  private onDownstreamReset(): void {
    if (this.done) return;
    addResponseFlag(this.info, 'DC');
    this.router?.abort();
    this.router = null;
    this.complete();
  }

  // === impl response path ===

  get hasResponseStarted(): boolean {
    return this.responseStarted;
  }

  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    if (this.done || this.responseStarted) return;
    this.router?.abort();
    this.router = null;
    const info = this.info;
    if (opts?.flag) addResponseFlag(info, opts.flag);
    info.responseCodeDetails = opts?.details ?? 'local_reply';
    const h = new HeaderMap();
    if (opts?.headers) for (const k of Object.keys(opts.headers)) h.add(k.toLowerCase(), opts.headers[k]!);
    if (this.isGrpc) {
      // gRPC trailers-only response: the status travels in the (only) HEADERS frame.
      const grpc = opts?.grpcStatus ?? httpToGrpc(status);
      info.grpcStatus = grpc;
      h.set('content-type', 'application/grpc');
      h.set('grpc-status', String(grpc));
      h.set('grpc-message', encodeURIComponent(body.trim()));
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

  private localError(err: CapaError): void {
    const r = localReplyFor(err);
    this.sendLocalReply(r.status, r.body, { flag: r.flag, details: r.details, grpcStatus: r.grpcStatus });
  }

  /** Router callback: the response head (after retries were decided). */
  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    const h = head.headers;
    const tokens = head.connectionTokens;
    for (let i = 0; i < tokens.length; i++) h.remove(tokens[i]!);
    const info = this.info;
    info.responseCodeDetails = 'via_upstream';
    const g = h.get('grpc-status');
    if (g !== undefined) info.grpcStatus = Number(g);
    const r = this.route!.data.responseHeaders;
    if (r.remove.length > 0 || r.add.length > 0) applyMutations(h, r.add, r.remove);
    if (info.upstreamServiceTimeMs >= 0) h.set('x-envoy-upstream-service-time', String(info.upstreamServiceTimeMs));
    this.writeHead(head.status, h, head.noBody, head.noBody ? -1 : head.contentLength);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.done || this.responseEnded) return;
    if (this.chain.hasResponseData && this.filters !== null) this.observe(chunk, false, false);
    this.info.bytesSent += chunk.length;
    const s = this.h2;
    if (s.destroyed) return;
    if (!s.write(chunk) && this.router !== null) {
      const router = this.router;
      router.pauseResponse();
      s.once('drain', () => router.resumeResponse());
    }
  }

  onUpstreamTrailers(trailers: HeaderMap): void {
    if (this.done) return;
    const g = trailers.get('grpc-status');
    if (g !== undefined) this.info.grpcStatus = Number(g);
    this.trailers = toHeaderObject(trailers, {}, (k) => !isTrailerSafe(k));
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

  onRouterError(err: CapaError): void {
    if (this.done) return;
    this.router = null;
    if (!this.responseStarted) this.localError(err);
    else this.reset(err.spec.flag);
  }

  private writeHead(status: number, h: HeaderMap, endStream: boolean, contentLength: number): void {
    const info = this.info;
    info.responseCode = status;
    this.responseStarted = true;
    const fs = this.filters;
    if (fs !== null && this.chain.hasResponseHeaders) {
      const fh: FilterResponseHead = { status, headers: h };
      for (let i = fs.length - 1; i >= 0; i--) {
        const f = fs[i]!;
        if (f.onResponseHeaders === undefined) continue;
        try {
          f.onResponseHeaders(this, fh);
        } catch (e) {
          this.rt.logger.error({ err: (e as Error).message, requestId: info.requestId }, 'http filter threw on response headers');
        }
      }
      status = info.responseCode = fh.status;
    }
    const out = h2ResponseHeaders(status, h);
    if (out.date === undefined) out.date = httpDate();
    out.server = this.cfg.spec.http.serverName;
    if (contentLength >= 0) out['content-length'] = String(contentLength);
    const s = this.h2;
    if (s.destroyed || s.closed || s.headersSent) return;
    try {
      // waitForTrailers: the upstream's trailers (grpc-status) are known only at its end.
      s.respond(out, endStream ? { endStream: true } : { waitForTrailers: true });
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

  /** 'wantTrailers': the upstream's trailers, or none (an empty DATA frame with END_STREAM). */
  private sendTrailers(): void {
    const s = this.h2;
    if (s.destroyed || s.closed) return;
    try {
      s.sendTrailers(this.trailers ?? {});
    } catch {
      s.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  /** Abort mid-response: RST_STREAM on this stream; the session and its other streams go on. */
  private reset(flag: string): void {
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    const s = this.h2;
    if (!s.destroyed && !s.closed) s.close(NGHTTP2_INTERNAL_ERROR);
    this.complete();
  }

  private complete(): void {
    if (this.done) return;
    this.done = true;
    if (this.requestTimer !== null) {
      clearTimeout(this.requestTimer);
      this.requestTimer = null;
    }
    const info = this.info;
    info.durationMs = Math.round(performance.now() - info.startMono);
    if (info.responseCode === 0) info.responseCode = this.responseStarted ? 200 : 0;
    const fs = this.filters;
    if (fs !== null && this.chain.hasComplete) {
      for (let i = 0; i < fs.length; i++) {
        const f = fs[i]!;
        if (f.onComplete === undefined) continue;
        try {
          f.onComplete(this);
        } catch (e) {
          this.rt.logger.error({ err: (e as Error).message }, 'http filter threw in onComplete');
        }
      }
    }
    // A response that ended before the request did: drain the rest of the request body.
    if (this.pausedBy > 0 && !this.h2.destroyed) {
      this.pausedBy = 0;
      this.h2.resume();
    }
  }
}

