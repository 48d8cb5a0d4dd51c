/**
 * ProxyStream: one request/response exchange on a downstream HTTP/1.1 connection. It runs the
 * reduced filter chain, resolves the route and hands forwarding to the Router (router.ts) through
 * narrow callbacks; it writes the response (or a local reply) back with the right framing.
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
import type { RedirectActionSpec } from '../../config/snapshot.js';
import type { HttpListenerConfig } from './listener-config.js';
import type { ReducedChain, RouteData } from './compiled-route.js';
import { httpDate } from './date-cache.js';
import { NOT_FORWARDED } from './hop-by-hop.js';
import { Router, type RouterCallbacks } from './router.js';
import type { ListenerRuntime, OriginalDestination } from './listener-runtime.js';
import { STATUS_TEXT } from '../http1/index.js';

/** The downstream connection as the stream sees it (no back-reference to its internals). */
export interface Downstream {
  readonly socket: Socket;
  readonly remoteAddress: string;
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

const EMPTY = Buffer.alloc(0);
const RESP_NONE = 0;
const RESP_LENGTH = 1;
const RESP_CHUNKED = 2;
const RESP_CLOSE = 3;

export class ProxyStream implements HttpStream, RouterCallbacks {
  readonly info: StreamInfo;
  readonly requestHeaders: HeaderMap;
  method: string;
  path: string;
  authority: string;
  readonly isGrpc: boolean;
  routeName = '';
  clusterName = '';
  /** The connection's original destination (OriginalDstQuery): preferred over the Host header. */
  readonly originalDst: OriginalDestination | null;

  readonly head: RequestHead;
  readonly rt: ListenerRuntime;
  readonly cfg: HttpListenerConfig;
  private readonly down: Downstream;
  private route: CompiledRoute<RouteData> | null = null;
  private chain: ReducedChain;
  private filters: HttpFilter[] | null = null;
  private filterIndex = 0;
  private paused = false;
  private router: Router | null = null;
  /** Request body received while no router was ready for it. */
  private pendingBody: Buffer[] | null = null;
  requestEnded = false;
  private responseStarted = false;
  private responseMode = RESP_NONE;
  private responseKeepAlive = true;
  private done = false;
  private requestTimer: NodeJS.Timeout | null = null;

  constructor(down: Downstream, head: RequestHead, rt: ListenerRuntime, cfg: HttpListenerConfig) {
    this.down = down;
    this.originalDst = down.originalDst ?? null;
    this.head = head;
    this.rt = rt;
    this.cfg = cfg;
    this.method = head.method;
    this.path = head.target;
    this.authority = head.host;
    this.requestHeaders = head.headers;
    const ct = head.headers.get('content-type');
    this.isGrpc = ct !== undefined && ct.startsWith('application/grpc');
    const info = (this.info = newStreamInfo());
    info.startTime = Date.now();
    info.startMono = performance.now();
    info.method = head.method;
    info.path = head.target;
    info.authority = head.host;
    info.protocol = head.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    info.direction = cfg.spec.direction;
    info.listenerName = cfg.spec.name;
    info.downstreamRemoteAddress = down.remoteAddress;
    info.downstreamLocalAddress = down.localAddress;
    this.chain = cfg.defaultChain;
  }

  // === impl request path ===

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
      const v = xff === undefined ? this.down.remoteAddress : `${xff}, ${this.down.remoteAddress}`;
      h.set('x-forwarded-for', v);
      info.xForwardedFor = v;
    } else info.xForwardedFor = h.get('x-forwarded-for') ?? '';
    if (!h.has('x-forwarded-proto')) h.add('x-forwarded-proto', 'http');
    if (this.head.expectContinue) {
      h.remove('expect');
      this.down.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    }
    const timeout = s.requestTimeoutMs;
    if (timeout > 0 && !this.requestEnded) {
      this.requestTimer = setTimeout(() => this.onRequestTimeout(), timeout);
    }
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
    if (this.responseStarted) {
      this.reset('FF');
      return;
    }
    this.localError(new CapaError('CAPA_ERR_FILTER_FAILED', 'a filter failed while handling the request'));
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
      this.sendRedirect(a);
      return;
    }
    const router = (this.router = new Router(this, a, route.data, this.rt));
    router.pauseDownstream = () => this.down.pauseRequest();
    router.resumeDownstream = () => this.down.resumeRequest();
    const pending = this.pendingBody;
    this.pendingBody = null;
    if (pending !== null) {
      for (const c of pending) router.writeBody(c);
      this.down.resumeRequest();
    }
    if (this.requestEnded) router.endBody();
    router.start();
  }

  onRequestData(chunk: Buffer): void {
    this.info.bytesReceived += chunk.length;
    if (this.chain.hasRequestData && this.filters !== null) this.observe(chunk, false, true);
    if (this.done) return;
    if (this.router !== null) this.router.writeBody(chunk);
    else {
      (this.pendingBody ??= []).push(chunk);
      if (this.pendingBody.length > 16) this.down.pauseRequest();
    }
  }

  onRequestEnd(): void {
    this.requestEnded = true;
    if (this.requestTimer !== null) {
      clearTimeout(this.requestTimer);
      this.requestTimer = null;
    }
    if (this.chain.hasRequestData && this.filters !== null) this.observe(EMPTY, true, true);
    if (this.done) {
      this.finishIfDone();
      return;
    }
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
    if (!this.responseStarted) this.localError(new CapaError('CAPA_ERR_REQUEST_TIMEOUT', `the request was not received within ${this.cfg.spec.http.requestTimeoutMs}ms`));
    else this.reset('DT');
  }

  /** The downstream went away. */
  onDownstreamReset(): void {
    if (this.done) return;
    addResponseFlag(this.info, 'DC');
    this.router?.abort();
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
    let bodyBuf = EMPTY;
    if (this.isGrpc) {
      const grpc = opts?.grpcStatus ?? httpToGrpc(status);
      info.grpcStatus = grpc;
      h.set('content-type', 'application/grpc');
      h.set('grpc-status', String(grpc));
      h.set('grpc-message', encodeURIComponent(body.trim()));
      status = 200;
    } else if (body.length > 0) {
      if (!h.has('content-type')) h.add('content-type', 'text/plain; charset=utf-8');
      bodyBuf = Buffer.from(body);
    }
    this.writeResponse(status, h, bodyBuf, true);
  }

  private localError(err: CapaError): void {
    const r = localReplyFor(err);
    this.sendLocalReply(r.status, r.body, { flag: r.flag, details: r.details, grpcStatus: r.grpcStatus });
  }

  /**
   * Envoy's redirect URL (RouteEntryImplBase::newUri): `scheme://host[:portRedirect]path`.
   * Without hostRedirect the request's Host is kept, minus its port when portRedirect is set or
   * when the scheme changes and the port was the default of the original one (http://a:80 →
   * https://a). A query in pathRedirect replaces the request's and survives stripQuery.
   */
  private sendRedirect(a: RedirectActionSpec): void {
    const location = redirectLocation(a, this.path, this.authority, this.requestHeaders.get('x-forwarded-proto') ?? 'http', this.route?.spec.match.prefix);
    this.sendLocalReply(a.responseCode, '', { headers: { location }, details: 'redirect' });
  }


  /** Router callback: the response head to pass on (after retries were decided). */
  onUpstreamHead(head: ResponseHead): void {
    if (this.done) return;
    const h = head.headers;
    // 101: Connection/Upgrade are hop-by-hop, but the client needs them to switch protocols.
    const upgrade = head.status === 101 ? (h.get('upgrade') ?? this.head.upgrade) : '';
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

  /** Router callback: forwarding failed for good (after retries). */
  onRouterError(err: CapaError): void {
    if (this.done) return;
    this.router = null;
    if (!this.responseStarted) this.localError(err);
    else this.reset(err.spec.flag);
  }

  private writeHead(status: number, h: HeaderMap, mode: number, contentLength: number, reason?: string, upgrade = ''): void {
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
      if (fh.status !== status) {
        status = fh.status;
        info.responseCode = status;
        reason = undefined;
      }
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
  private reset(flag: string): void {
    addResponseFlag(this.info, flag);
    this.router?.abort();
    this.router = null;
    this.responseKeepAlive = false;
    this.down.socket.destroy();
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
    this.finishIfDone();
  }

  private finished = false;
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
