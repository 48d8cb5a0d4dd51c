/**
 * The router (envoy.filters.http.router): picks the cluster and host, takes a pooled upstream
 * connection, forwards the request head and body, and decides retries. It reports to the stream
 * only through RouterCallbacks, and to the pool through the ResponseHandler it implements.
 */
import { performance } from 'node:perf_hooks';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { CapaError } from '../../errors.js';
import { parseGrpcTimeout } from '../../grpc-wire.js';
import type { HeaderMap } from '../headers.js';
import type { RequestHead, ResponseHead } from '../http1/index.js';
import { addResponseFlag, type StreamInfo, type UpstreamTry } from '../stream-info.js';
import type { Host } from '../cluster/host.js';
import type { Cluster } from '../cluster/cluster.js';
import { computeHash } from '../cluster/hash-policy.js';
import type { UpstreamConnection, ResponseHandler } from '../upstream/connection.js';
import type { PoolWaiter } from '../upstream/pool.js';
import { pickCluster, rewritePath, type CompiledForward, type RouteData } from './compiled-route.js';
import { splitPath } from '../router/route-table.js';
import { NOT_FORWARDED, IDEMPOTENT_METHODS } from './hop-by-hop.js';
import { applyMutations } from './chain-stream.js';
import type { ListenerRuntime } from './listener-runtime.js';
import type { OutgoingHttpHeaders } from 'node:http2';
import { h2RequestHeaders, isTrailerSafe } from '../http2/headers.js';
import { LAST_CHUNK, lastChunkWithTrailers } from '../http1/index.js';
import type { H2UpstreamHandler, H2UpstreamRequest } from '../http2/upstream-pool.js';

export interface RouterCallbacks {
  readonly info: StreamInfo;
  readonly head: RequestHead;
  readonly requestHeaders: HeaderMap;
  /** The request's trailers (set before the body ends): forwarded after the body. */
  readonly requestTrailers: HeaderMap | null;
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  onUpstreamHead(head: ResponseHead): void;
  onUpstreamData(chunk: Buffer): void;
  /** Trailers of an HTTP/2 upstream response (grpc-status); HTTP/1.1 downstreams drop them. */
  onUpstreamTrailers?(trailers: HeaderMap): void;
  onUpstreamEnd(): void;
  onUpstreamUpgrade(upstream: Socket, rest: Buffer): void;
  onRouterError(err: CapaError): void;
}


export class Router implements ResponseHandler, PoolWaiter, H2UpstreamHandler {
  private readonly s: RouterCallbacks;
  private readonly action: CompiledForward;
  private readonly data: RouteData;
  private readonly rt: ListenerRuntime;
  private cluster: Cluster | null = null;
  /** The try being recorded for StreamInfo.upstreamTries (null when nobody asked). */
  private currentTry: UpstreamTry | null = null;
  /** Forward over HTTP/2 (cluster protocol http2, or downstream and the request came over h2). */
  private useH2 = false;
  private hash: number | undefined = undefined;
  private headString = '';
  /** Body chunks: unwritten ones, and (while replayable) all of them for retries. */
  private chunks: Buffer[] = [];
  private written = 0;
  private bodyBytes = 0;
  private replayable = true;
  private ended = false;
  private readonly chunkedUp: boolean;
  private conn: UpstreamConnection | null = null;
  /** The attempt's stream when the cluster's protocol is http2 (instead of `conn`). */
  private h2: H2UpstreamRequest | null = null;
  private h2Headers: OutgoingHttpHeaders | null = null;
  private host: Host | null = null;
  private attempted: Host[] | null = null;
  private retriesDone = 0;
  private staleRetried = false;
  private headSent = false;
  private finished = false;
  private routeTimer: NodeJS.Timeout | null = null;
  /** The route timeout, or the gRPC deadline when the route honours `grpc-timeout`. */
  private readonly timeoutMs: number;
  private started = false;
  private tryTimer: NodeJS.Timeout | null = null;
  private backoffTimer: NodeJS.Timeout | null = null;
  private attemptStart = 0;
  cancelled = false;

  constructor(s: RouterCallbacks, action: CompiledForward, data: RouteData, rt: ListenerRuntime) {
    this.s = s;
    this.action = action;
    this.data = data;
    this.rt = rt;
    this.chunkedUp = s.head.chunked;
    this.timeoutMs = action.grpcTimeoutHeaderMaxMs < 0 ? action.timeoutMs : grpcDeadline(s.requestHeaders, action);
  }

  // === impl request side ===

  start(): void {
    const s = this.s;
    const a = this.action;
    const name = pickCluster(a);
    s.info.upstreamCluster = name;
    const cluster = this.rt.clusters.get(name);
    if (cluster === undefined) {
      this.fail(new CapaError('CAPA_ERR_NO_CLUSTER', `route ${s.info.routeName} points at cluster ${name}, which does not exist`));
      return;
    }
    this.cluster = cluster;
    // Envoy use_downstream_protocol_config (Istio's passthrough clusters): h2 in → h2c out.
    const p = cluster.spec.protocol;
    this.useH2 = p === 'http2' || (p === 'downstream' && s.info.protocol === 'HTTP/2');
    if (a.hashPolicy.length > 0) {
      const [p] = splitPath(s.path);
      this.hash = computeHash(a.hashPolicy as never, { headers: s.requestHeaders, sourceIp: s.info.downstreamRemoteAddress, path: s.path.length > p.length ? s.path : p });
    }
    this.headString = this.buildHead(null);
    this.started = true;
    if (this.ended) this.armRouteTimer();
    this.attempt();
  }

  private buildHead(host: Host | null): string {
    const s = this.s;
    const a = this.action;
    const h = s.requestHeaders;
    const m = this.data.requestHeaders;
    if (m.add.length > 0 || m.remove.length > 0) applyMutations(h, m.add, m.remove);
    let target = s.path;
    if (a.prefixRewrite !== undefined || a.regexRewrite !== undefined) {
      const [p, q] = splitPath(target);
      const np = rewritePath(a, p);
      if (np !== p) {
        if (!h.has('x-envoy-original-path')) h.add('x-envoy-original-path', target);
        target = q ? `${np}?${q}` : np;
      }
    }
    let authority = s.authority;
    if (a.hostRewrite !== undefined) authority = a.hostRewrite;
    else if (a.autoHostRewrite && host !== null) authority = host.key;
    if (this.useH2) {
      this.h2Headers = h2RequestHeaders(s.method, target, authority, h, s.head);
      return '';
    }
    const tokens = s.head.connectionTokens;
    let out = `${s.method} ${target} HTTP/1.1\r\nhost: ${authority}\r\n`;
    const kv = h.kv;
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      if (k === 'host' || NOT_FORWARDED.has(k)) continue;
      if (tokens.length > 0 && tokens.includes(k)) continue;
      out += `${k}: ${kv[i + 1]}\r\n`;
    }
    const head = s.head;
    if (head.upgrade !== '') out += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
    if (head.chunked) out += 'transfer-encoding: chunked\r\n';
    else if (head.contentLength >= 0) out += `content-length: ${head.contentLength}\r\n`;
    if (h.get('te') === 'trailers') out += 'te: trailers\r\n';
    return out + '\r\n';
  }

  writeBody(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bodyBytes += chunk.length;
    if (this.replayable && this.bodyBytes > this.rt.config.spec.http.maxReplayBufferBytes) this.replayable = false;
    this.chunks.push(chunk);
    if (this.conn !== null || this.h2 !== null) this.flushBody();
  }

  endBody(): void {
    this.ended = true;
    if (this.started) this.armRouteTimer();
    if (this.conn !== null || this.h2 !== null) this.flushBody();
  }

  private flushBody(): void {
    if (this.h2 !== null) {
      this.flushH2(this.h2);
      return;
    }
    const conn = this.conn!;
    const chunks = this.chunks;
    let ok = true;
    while (this.written < chunks.length) {
      const c = chunks[this.written++]!;
      if (this.chunkedUp) {
        conn.socket.cork();
        conn.write(c.length.toString(16) + '\r\n');
        conn.write(c);
        ok = conn.write('\r\n');
        conn.socket.uncork();
      } else ok = conn.write(c);
    }
    if (!this.replayable) {
      this.chunks = [];
      this.written = 0;
    }
    if (this.ended && !this.endWritten) {
      this.endWritten = true;
      // Trailers travel only in a chunked body (Envoy drops them for HTTP/1 otherwise).
      if (this.chunkedUp) {
        const t = this.s.requestTrailers;
        ok = conn.write(t === null ? LAST_CHUNK : lastChunkWithTrailers(t, isTrailerSafe));
      }
    }
    if (!ok) {
      this.pauseDownstream?.();
      conn.socket.once('drain', () => this.resumeDownstream?.());
    }
  }

  /** HTTP/2 upstream: DATA frames carry the body; stream backpressure pauses the downstream. */
  private flushH2(req: H2UpstreamRequest): void {
    const chunks = this.chunks;
    let ok = true;
    while (this.written < chunks.length) ok = req.write(chunks[this.written++]!);
    if (!this.replayable) {
      this.chunks = [];
      this.written = 0;
    }
    if (this.ended && !this.endWritten) {
      this.endWritten = true;
      req.end(this.s.requestTrailers);
    }
    if (!ok) {
      this.pauseDownstream?.();
      req.onceDrain(() => this.resumeDownstream?.());
    }
  }

  private endWritten = false;
  /** Set by the connection to apply backpressure on the request body. */
  pauseDownstream: (() => void) | null = null;
  resumeDownstream: (() => void) | null = null;

  // === impl attempts ===

  private attempt(): void {
    const cluster = this.cluster!;
    if (cluster.spec.type === 'ORIGINAL_DST') {
      this.originalDst(cluster);
      return;
    }
    if (cluster.spec.type === 'DYNAMIC_FORWARD_PROXY') {
      // The host comes from the cluster's DNS cache by the request's Host (synchronously when cached).
      cluster.dynamicHost(this.s.authority, { hash: this.hash, attempted: this.attempted }, (err, host) => {
        if (this.finished) return;
        if (err !== null) this.fail(err);
        else if (host === null) this.fail(new CapaError('CAPA_ERR_NO_HEALTHY_UPSTREAM', `no healthy upstream in cluster ${cluster.name}`));
        else this.useHost(host);
      });
      return;
    }
    const host = cluster.pick({ hash: this.hash, attempted: this.attempted });
    if (host === null) {
      this.fail(new CapaError('CAPA_ERR_NO_HEALTHY_UPSTREAM', `no healthy upstream in cluster ${cluster.name}`));
      return;
    }
    this.useHost(host);
  }

  private originalDst(cluster: Cluster): void {
    const dst = this.rt.originalDestination(this.s);
    if (dst === null) {
      this.fail(new CapaError('CAPA_ERR_NO_HEALTHY_UPSTREAM', 'original destination unknown: no SO_ORIGINAL_DST and no usable Host header'));
      return;
    }
    if (isIP(dst.address) !== 0) {
      this.useHost(cluster.originalDstHost(dst.address, dst.port));
      return;
    }
    this.rt.resolve(dst.address).then(
      (ip) => {
        if (this.finished) return;
        this.useHost(cluster.originalDstHost(ip, dst.port));
      },
      (e: Error) => this.fail(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', `cannot resolve original destination ${dst.address}: ${e.message}`)),
    );
  }

  private useHost(host: Host): void {
    const cluster = this.cluster!;
    const res = cluster.resources;
    if (res.rqActive >= res.limits.maxRequests) {
      this.fail(new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `cluster ${cluster.name} request limit (maxRequests ${res.limits.maxRequests}) reached`));
      return;
    }
    this.host = host;
    const info = this.s.info;
    info.upstreamHost = host.key;
    info.attempts++;
    if (info.upstreamTries !== null) {
      this.currentTry = { host: host.key, startTime: Date.now(), durationMs: 0, status: 0, failure: '' };
      info.upstreamTries.push(this.currentTry);
    }
    host.stats.rqTotal++;
    host.stats.rqActive++;
    res.rqActive++;
    this.cancelled = false;
    if (this.action.autoHostRewrite) this.headString = this.buildHead(host);
    if (this.useH2) this.startH2(cluster, host);
    else cluster.pool(host).acquire(this);
  }

  /** HTTP/2 upstream: a stream on the host's pooled session (no per-request connection wait). */
  private startH2(cluster: Cluster, host: Host): void {
    this.written = 0;
    this.endWritten = false;
    this.attemptStart = performance.now();
    const r = this.action.retry;
    if (r !== null && r.perTryTimeoutMs > 0) this.tryTimer = setTimeout(() => this.onTryTimeout(), r.perTryTimeoutMs);
    const endStream = this.ended && this.bodyBytes === 0 && this.s.requestTrailers === null;
    if (endStream) this.endWritten = true;
    this.h2 = cluster.h2Pool(host).request(this.h2Headers!, endStream, this);
    if (!endStream) this.flushBody();
  }

  onResponseTrailers(trailers: HeaderMap): void {
    this.s.onUpstreamTrailers?.(trailers);
  }

  /** PoolWaiter: a connection for this attempt. */
  onReady(conn: UpstreamConnection): void {
    if (this.finished || this.cancelled) {
      // Nobody wants it anymore: give it back by closing it.
      conn.destroy();
      return;
    }
    this.conn = conn;
    this.written = 0;
    this.endWritten = false;
    this.attemptStart = performance.now();
    const r = this.action.retry;
    if (r !== null && r.perTryTimeoutMs > 0) this.tryTimer = setTimeout(() => this.onTryTimeout(), r.perTryTimeoutMs);
    if (this.chunks.length > 0) {
      conn.socket.cork();
      conn.start(this.s.method, this.headString, this, false);
      this.flushBody();
      conn.socket.uncork();
    } else {
      conn.start(this.s.method, this.headString, this, false);
      if (this.ended) this.flushBody();
    }
  }

  /** PoolWaiter: no connection (connect failure, overflow). */
  onFail(err: CapaError): void {
    if (this.finished) return;
    this.attemptFailed(err, false);
  }

  private endAttempt(failure = ''): void {
    const t = this.currentTry;
    if (t !== null) {
      t.durationMs = Date.now() - t.startTime;
      if (failure !== '') t.failure = failure;
      this.currentTry = null;
    }
    if (this.host !== null) {
      this.host.stats.rqActive--;
      this.cluster!.resources.rqActive--;
      (this.attempted ??= []).push(this.host);
      this.host = null;
    }
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
    this.conn = null;
    this.h2 = null;
  }

  private canRetry(): boolean {
    const r = this.action.retry;
    if (r === null || this.retriesDone >= r.numRetries) return false;
    const res = this.cluster!.resources;
    if (res.rqRetryActive >= res.limits.maxRetries) {
      res.overflowRetry++;
      return false;
    }
    return true;
  }

  /** Request may be sent again: nothing unreplayable was lost and the method is safe to repeat. */
  private get replaySafe(): boolean {
    return this.replayable && IDEMPOTENT_METHODS.has(this.s.method);
  }

  private attemptFailed(err: CapaError, headReceived: boolean): void {
    const conn = this.conn;
    const host = this.host;
    if (host !== null) host.stats.rqError++;
    const reused = (conn !== null && conn.requests > 1) || (this.h2?.reused ?? false);
    this.endAttempt(err.code);
    const r = this.action.retry;
    const info = this.s.info;
    if (err.code === 'CAPA_ERR_UPSTREAM_CONNECT') info.upstreamTransportFailureReason = err.message;
    // A keep-alive connection the upstream had just closed: replay once on a fresh one (not a retry).
    if (err.code === 'CAPA_ERR_UPSTREAM_RESET' && !headReceived && reused && !this.staleRetried && this.replaySafe) {
      this.staleRetried = true;
      this.attempted = null;
      this.useHost(host!);
      return;
    }
    if (host !== null && !headReceived && err.code !== 'CAPA_ERR_UPSTREAM_OVERFLOW') this.cluster!.reportOutcome(host, 0);
    let retriable = false;
    if (r !== null && !headReceived) {
      if (err.code === 'CAPA_ERR_UPSTREAM_CONNECT') retriable = r.onConnectFailure && (this.replayable || this.written === 0);
      else if (err.code === 'CAPA_ERR_UPSTREAM_RESET' || err.code === 'CAPA_ERR_UPSTREAM_PROTOCOL') retriable = r.onReset && this.replaySafe;
      else if (err.code === 'CAPA_ERR_UPSTREAM_TIMEOUT') retriable = (r.on5xx || r.onGatewayError || r.onReset) && this.replaySafe;
    }
    if (retriable) {
      if (this.canRetry()) {
        this.scheduleRetry();
        return;
      }
      addResponseFlag(info, 'URX');
    }
    this.fail(err);
  }

  private scheduleRetry(): void {
    const r = this.action.retry!;
    this.retriesDone++;
    const res = this.cluster!.resources;
    res.rqRetryActive++;
    const n = this.retriesDone;
    const ceiling = Math.min(r.backoffMaxMs, r.backoffBaseMs * (2 ** n - 1));
    const delay = Math.floor(Math.random() * ceiling);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      res.rqRetryActive--;
      if (this.finished) return;
      this.written = 0;
      this.attempt();
    }, delay);
  }

  private onTryTimeout(): void {
    this.tryTimer = null;
    if (this.headSent || this.finished) return;
    this.conn?.abort();
    this.h2?.abort();
    this.s.info.upstreamServiceTimeMs = -1;
    this.attemptFailed(new CapaError('CAPA_ERR_UPSTREAM_TIMEOUT', `upstream per-try timeout (${this.action.retry!.perTryTimeoutMs}ms)`), false);
  }

  /**
   * Envoy's route timeout spans from the end of the downstream request to the end of the
   * response, so a long upload is not cut by it (the listener's requestTimeout covers that).
   */
  private armRouteTimer(): void {
    const ms = this.timeoutMs;
    if (ms > 0 && this.routeTimer === null && !this.finished) this.routeTimer = setTimeout(() => this.onRouteTimeout(), ms);
  }

  private onRouteTimeout(): void {
    this.routeTimer = null;
    if (this.finished) return;
    this.conn?.abort();
    this.h2?.abort();
    if (!this.headSent && this.host !== null) this.cluster!.reportOutcome(this.host, 0);
    this.endAttempt('CAPA_ERR_UPSTREAM_TIMEOUT');
    this.cancelled = true;
    this.fail(new CapaError('CAPA_ERR_UPSTREAM_TIMEOUT', `upstream request timeout: no complete response within ${this.timeoutMs}ms`));
  }

  // === impl ResponseHandler ===

  onResponseHead(head: ResponseHead): void {
    if (this.currentTry !== null) this.currentTry.status = head.status;
    const info = this.s.info;
    info.upstreamServiceTimeMs = Math.round(performance.now() - this.attemptStart);
    if (this.host !== null) this.cluster!.reportOutcome(this.host, head.status);
    const r = this.action.retry;
    if (r !== null && head.status >= 500 || (r !== null && r.onRetriableStatus && r.statusCodes.has(head.status))) {
      const st = head.status;
      const want = (r!.on5xx && st >= 500) || (r!.onGatewayError && st >= 502 && st <= 504) || (r!.onRetriableStatus && r!.statusCodes.has(st));
      if (want && this.replaySafe) {
        if (this.canRetry()) {
          this.host!.stats.rqError++;
          this.conn?.abort();
          this.h2?.abort();
          this.endAttempt();
          this.scheduleRetry();
          return;
        }
        addResponseFlag(info, 'URX');
      }
    }
    if (head.status >= 500 && this.host !== null) this.host.stats.rqError++;
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
    this.headSent = true;
    this.s.onUpstreamHead(head);
  }

  onResponseData(chunk: Buffer): void {
    this.s.onUpstreamData(chunk);
  }

  onResponseEnd(): void {
    this.endAttempt();
    this.clearTimers();
    this.finished = true;
    this.s.onUpstreamEnd();
  }

  onUpgrade(socket: Socket, rest: Buffer): void {
    this.endAttempt();
    this.clearTimers();
    this.finished = true;
    this.s.onUpstreamUpgrade(socket, rest);
  }

  onError(err: CapaError, headReceived: boolean): void {
    if (this.finished) return;
    if (this.headSent) {
      this.endAttempt(err.code);
      this.fail(err);
      return;
    }
    this.attemptFailed(err, headReceived);
  }

  pauseResponse(): void {
    this.conn?.pause();
    this.h2?.pause();
  }

  resumeResponse(): void {
    this.conn?.resume();
    this.h2?.resume();
  }

  private clearTimers(): void {
    if (this.routeTimer !== null) clearTimeout(this.routeTimer);
    if (this.tryTimer !== null) clearTimeout(this.tryTimer);
    if (this.backoffTimer !== null) {
      clearTimeout(this.backoffTimer);
      this.cluster!.resources.rqRetryActive--;
    }
    this.routeTimer = this.tryTimer = this.backoffTimer = null;
  }

  private fail(err: CapaError): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimers();
    this.s.onRouterError(err);
  }

  /** The stream is gone (downstream reset, local reply, timeout): drop everything. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    this.conn?.abort();
    this.h2?.abort();
    this.endAttempt();
    this.clearTimers();
  }
}

/**
 * Envoy's finalTimeout for a route with grpc_timeout_header_max: a gRPC request's deadline is its
 * `grpc-timeout` (absent = none), capped at the max when the max is > 0, minus the offset when
 * the offset is smaller. The upstream gets the deadline it has left as its own `grpc-timeout`.
 * Requests that are not gRPC keep the route timeout.
 */
function grpcDeadline(h: HeaderMap, a: CompiledForward): number {
  const ct = h.get('content-type');
  if (ct === undefined || !ct.startsWith('application/grpc')) return a.timeoutMs;
  const t = parseGrpcTimeout(h.get('grpc-timeout'));
  let ms = t === undefined ? 0 : Math.max(1, Math.ceil(t));
  const max = a.grpcTimeoutHeaderMaxMs;
  if (max > 0 && (ms === 0 || ms > max)) ms = max;
  const offset = a.grpcTimeoutHeaderOffsetMs;
  if (offset > 0 && offset < ms) ms -= offset;
  if (ms > 0) h.set('grpc-timeout', `${ms}m`);
  return ms;
}
