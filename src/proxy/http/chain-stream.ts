/**
 * ChainStream: what an HTTP/1.1 exchange (ProxyStream) and an HTTP/2 stream (Http2Stream) share —
 * request decoration, route match, the reduced filter chain (request hooks in order, response
 * hooks in reverse, onComplete), handing the request to the Router, request timeout, local
 * errors and completion. Subclasses own the wire: how a response head, body, trailers and a
 * reset are written, and how the downstream is paused (Envoy: the HCM's ActiveStream vs. the
 * codec's stream encoder).
 */
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { CapaError, localReplyFor } from '../../errors.js';
import type { FilterResult, HttpFilter, HttpStream, LocalReplyOptions, ResponseHead as FilterResponseHead } from '../../filters/types.js';
import { HeaderMap } from '../headers.js';
import type { RequestHead, ResponseHead } from '../http1/index.js';
import { newStreamInfo, addResponseFlag, type StreamInfo } from '../stream-info.js';
import { splitPath, type CompiledRoute } from '../router/route-table.js';
import { redirectLocation } from '../router/redirect.js';
import type { HttpListenerConfig } from './listener-config.js';
import type { ReducedChain, RouteData } from './compiled-route.js';
import { Router, type RouterCallbacks } from './router.js';
import type { ListenerRuntime, OriginalDestination } from './listener-runtime.js';

export const EMPTY = Buffer.alloc(0);

/** Request bodies buffered before a router is ready: past this many chunks the downstream is paused. */
const PENDING_CHUNKS_BEFORE_PAUSE = 16;

export abstract class ChainStream implements HttpStream, RouterCallbacks {
  readonly info: StreamInfo;
  readonly requestHeaders: HeaderMap;
  method: string;
  path: string;
  authority: string;
  readonly isGrpc: boolean;
  routeName = '';
  clusterName = '';
  readonly head: RequestHead;
  /** The connection's original destination (OriginalDstQuery): preferred over the Host header. */
  readonly originalDst: OriginalDestination | null;
  readonly rt: ListenerRuntime;
  readonly cfg: HttpListenerConfig;
  requestEnded: boolean;
  /** The request's trailers (HTTP/2 trailers, an HTTP/1.1 chunked trailer section), once they came. */
  requestTrailers: HeaderMap | null = null;

  protected route: CompiledRoute<RouteData> | null = null;
  protected chain: ReducedChain;
  protected filters: HttpFilter[] | null = null;
  protected router: Router | null = null;
  protected responseStarted = false;
  protected done = false;
  private filterIndex = 0;
  private paused = false;
  /** Request body received while no router was ready for it. */
  private pendingBody: Buffer[] | null = null;
  private requestTimer: NodeJS.Timeout | null = null;
  private readonly remoteAddress: string;

  constructor(head: RequestHead, headers: HeaderMap, rt: ListenerRuntime, cfg: HttpListenerConfig, conn: { remoteAddress: string; remotePort?: number; localAddress: string; originalDst: OriginalDestination | null }, protocol: StreamInfo['protocol'], requestEnded: boolean) {
    this.head = head;
    this.rt = rt;
    this.cfg = cfg;
    this.method = head.method;
    this.path = head.target;
    this.authority = head.host;
    this.requestHeaders = headers;
    this.requestEnded = requestEnded;
    this.remoteAddress = conn.remoteAddress;
    this.originalDst = conn.originalDst;
    const ct = headers.get('content-type');
    this.isGrpc = ct !== undefined && ct.startsWith('application/grpc');
    const info = (this.info = newStreamInfo());
    info.startTime = Date.now();
    info.startMono = performance.now();
    info.method = head.method;
    info.path = head.target;
    info.authority = head.host;
    info.protocol = protocol;
    info.direction = cfg.spec.direction;
    info.listenerName = cfg.spec.name;
    info.downstreamRemoteAddress = conn.remoteAddress;
    info.downstreamRemotePort = conn.remotePort ?? 0;
    info.downstreamLocalAddress = conn.localAddress;
    this.chain = cfg.defaultChain;
  }

  // === the wire, per protocol ===

  abstract sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void;
  abstract onUpstreamHead(head: ResponseHead): void;
  abstract onUpstreamData(chunk: Buffer): void;
  abstract onUpstreamEnd(): void;
  abstract onUpstreamUpgrade(upstream: Socket, rest: Buffer): void;
  /** Abort mid-response with `flag`: the downstream sees a reset; must call complete(). */
  protected abstract reset(flag: string): void;
  protected abstract pauseRequest(): void;
  protected abstract resumeRequest(): void;
  /** The head was decorated, before routing (HTTP/1.1: answer `Expect: 100-continue`). */
  protected onHeadDecorated(): void {}
  /** The request ended after the exchange completed (HTTP/1.1: the connection may go on). */
  protected onRequestEndAfterDone(): void {}
  /** complete() ran the filters' onComplete. */
  protected abstract onCompleted(): void;

  // === request path ===

  /** The head arrived: decorate it, resolve the route, run the chain. */
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
    this.onHeadDecorated();
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

  /** All request-header filters passed: the router's turn. */
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
      if (pending.length >= PENDING_CHUNKS_BEFORE_PAUSE) this.resumeRequest();
    }
    if (this.requestEnded) router.endBody();
    router.start();
  }

  onRequestData(chunk: Buffer): void {
    if (this.done) return;
    this.info.bytesReceived += chunk.length;
    if (this.chain.hasRequestData && this.filters !== null) this.observe(chunk, false, true);
    if (this.done) return;
    if (this.router !== null) this.router.writeBody(chunk);
    else {
      const pending = (this.pendingBody ??= []);
      pending.push(chunk);
      // Paused once (the pause is counted); decodeComplete resumes it once.
      if (pending.length === PENDING_CHUNKS_BEFORE_PAUSE) this.pauseRequest();
    }
  }

  /** The request's trailers, just before onRequestEnd: the router sends them after the body. */
  onRequestTrailers(trailers: HeaderMap): void {
    if (this.done || this.requestEnded) return;
    this.requestTrailers = trailers;
  }

  onRequestEnd(): void {
    // END_STREAM on the headers / no body: the request was complete from the start.
    if (this.requestEnded) return;
    this.requestEnded = true;
    if (this.requestTimer !== null) {
      clearTimeout(this.requestTimer);
      this.requestTimer = null;
    }
    if (this.done) {
      this.onRequestEndAfterDone();
      return;
    }
    if (this.chain.hasRequestData && this.filters !== null) this.observe(EMPTY, true, true);
    if (this.done) return;
    this.router?.endBody();
  }

  protected observe(chunk: Buffer, end: boolean, request: boolean): void {
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

  /**
   * The downstream went away (connection closed, RST_STREAM) before the exchange completed;
   * `flag` DPE when we reset it for breaking the protocol (e.g. malformed HTTP/2 trailers).
   */
  onDownstreamReset(flag = 'DC'): void {
    if (this.done) return;
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    this.complete();
  }

  // === response path ===

  get hasResponseStarted(): boolean {
    return this.responseStarted;
  }

  /** The common start of a local reply: its headers, or null when it is too late for one. */
  protected beginLocalReply(opts: LocalReplyOptions | undefined): HeaderMap | null {
    if (this.done || this.responseStarted) return null;
    this.router?.abort();
    this.router = null;
    if (opts?.flag) addResponseFlag(this.info, opts.flag);
    this.info.responseCodeDetails = opts?.details ?? 'local_reply';
    const h = new HeaderMap();
    if (opts?.headers) for (const k of Object.keys(opts.headers)) h.add(k.toLowerCase(), opts.headers[k]!);
    return h;
  }

  protected localError(err: CapaError): void {
    const r = localReplyFor(err);
    this.sendLocalReply(r.status, r.body, { flag: r.flag, details: r.details, grpcStatus: r.grpcStatus });
  }

  /** Router callback: forwarding failed for good (after retries). */
  onRouterError(err: CapaError): void {
    if (this.done) return;
    this.router = null;
    if (!this.responseStarted) this.localError(err);
    else this.reset(err.spec.flag);
  }

  /** What every upstream head gets before it is written: hop-by-hop removal, route mutations, timing. */
  protected decorateUpstreamHead(head: ResponseHead): void {
    const h = head.headers;
    const tokens = head.connectionTokens;
    for (let i = 0; i < tokens.length; i++) h.remove(tokens[i]!);
    const info = this.info;
    info.responseCodeDetails = 'via_upstream';
    if (this.isGrpc) {
      const g = h.get('grpc-status');
      if (g !== undefined) info.grpcStatus = Number(g);
    }
    const r = this.route!.data.responseHeaders;
    if (r.remove.length > 0 || r.add.length > 0) applyMutations(h, r.add, r.remove);
    if (info.upstreamServiceTimeMs >= 0) h.set('x-envoy-upstream-service-time', String(info.upstreamServiceTimeMs));
  }

  /** Marks the response started and runs the response-header filters in reverse; returns the final status. */
  protected startResponse(status: number, h: HeaderMap): number {
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
    return status;
  }

  protected complete(): void {
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
    this.onCompleted();
  }
}

/** Local replies and upstream heads: `grpc-message` is percent-encoded as gRPC requires. */
export function grpcLocalReplyHeaders(h: HeaderMap, info: StreamInfo, grpcStatus: number, body: string): void {
  info.grpcStatus = grpcStatus;
  h.set('content-type', 'application/grpc');
  h.set('grpc-status', String(grpcStatus));
  h.set('grpc-message', encodeURIComponent(body.trim()));
}

export function applyMutations(h: HeaderMap, add: readonly { name: string; value: string; action: string }[], remove: readonly string[]): void {
  for (const r of remove) h.remove(r);
  for (const a of add) {
    const name = a.name.toLowerCase();
    if (a.action === 'overwrite') h.set(name, a.value);
    else if (a.action === 'addIfAbsent') {
      if (!h.has(name)) h.add(name, a.value);
    } else h.add(name, a.value);
  }
}

/** Envoy's HTTP → gRPC status mapping for local replies. */
export function httpToGrpc(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}
