/**
 * Binds the Snapshot's listeners and swaps their compiled configuration when a new Snapshot
 * arrives. A listener on the same address:port keeps its socket and connections; new requests
 * use the new routes, requests in flight finish on the config they started with.
 * Everything is compiled before anything is swapped, so a bad Snapshot changes nothing.
 */
import net from 'node:net';
import dns from 'node:dns';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ListenerSpec, Snapshot } from '../config/snapshot.js';
import type { FilterRegistry } from '../filters/registry.js';
import type { ClusterManager } from './cluster/cluster-manager.js';
import { compileHttpListener, type HttpListenerConfig } from './http/listener-config.js';
import { ServerConnection } from './http/server-connection.js';
import type { ListenerRuntime, OriginalDestination, OriginalDstQuery } from './http/listener-runtime.js';
import { resolveOriginalDestination } from './original-dst.js';
import { proxyTcp } from './tcp/tcp-proxy.js';
import { IstioMetrics } from '../observability/metrics.js';
import { newStreamInfo } from './stream-info.js';
import { looksLikeTls, parseClientHello } from './tls-client-hello.js';
import { looksLikeHttp1, looksLikeHttp2Preface, maybePartialHttp2Preface } from './sniff.js';
import { Http2Listener } from './http2/server.js';
import { tapSocket } from './tcp-copy-tap.js';
import type { TcpCopy } from '../filters/tcp-copy/index.js';

export interface ListenerManagerDeps {
  readonly filters: FilterRegistry;
  readonly clusters: ClusterManager;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Reads SO_ORIGINAL_DST of an accepted socket (issue "Transparent interception"); null when unknown. */
  readonly socketOriginalDst?: (socket: net.Socket) => OriginalDestination | null;
  /** The process's TCP copy, if any (sampled capture-listener connections are copied to pcap). */
  readonly tcpCopy?: () => TcpCopy | null;
}

const SNIFF_TIMEOUT_MS = 100;

export interface PreparedListeners {
  readonly snap: Snapshot;
  readonly compiled: Map<string, { spec: ListenerSpec; cfg: HttpListenerConfig }>;
}

class RunningListener implements ListenerRuntime {
  config: HttpListenerConfig;
  spec: ListenerSpec;
  draining = false;
  readonly server: net.Server;
  readonly connections = new Set<net.Socket>();
  readonly httpConnections = new Set<ServerConnection>();
  /** The h2c side (prior knowledge), created with the first connection that sends the preface. */
  private h2: Http2Listener | null = null;
  private app: { address: string; port: number };
  private readonly dnsCache = new Map<string, { ip: string; at: number }>();

  constructor(
    spec: ListenerSpec,
    config: HttpListenerConfig,
    app: { address: string; port: number },
    private readonly deps: ListenerManagerDeps,
    private readonly metrics: IstioMetrics,
  ) {
    this.spec = spec;
    this.config = config;
    this.app = app;
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.onConnection(s));
  }

  get clusters(): ClusterManager {
    return this.deps.clusters;
  }

  get logger(): Logger {
    return this.deps.logger;
  }

  update(spec: ListenerSpec, config: HttpListenerConfig, app: { address: string; port: number }): HttpListenerConfig {
    const old = this.config;
    this.spec = spec;
    this.config = config;
    this.app = app;
    return old;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      this.server.once('error', onErr);
      this.server.listen({ host: this.spec.address, port: this.spec.port, backlog: 1024 }, () => {
        this.server.off('error', onErr);
        resolve();
      });
    });
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : this.spec.port;
  }

  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.once('close', () => this.connections.delete(socket));
    if (this.draining) {
      socket.destroy();
      return;
    }
    // Capture listeners: where the connection was going before iptables redirected it (once).
    const kind = this.spec.kind;
    const capture = kind === 'outbound-capture' || kind === 'inbound-capture';
    const dst = capture ? (this.deps.socketOriginalDst?.(socket) ?? null) : null;
    if (capture) {
      const tc = this.deps.tcpCopy?.();
      if (tc) tapSocket(tc, socket, dst);
    }
    const proto = this.spec.protocol;
    if (proto === 'tcp') this.startTcp(socket, null, dst);
    else this.sniff(socket, dst, proto === 'http');
  }

  /**
   * Tell HTTP/2 (client preface), HTTP/1.x and opaque TCP apart from the first bytes. A first
   * packet that is a proper prefix of the preface waits for more within the sniff timeout.
   * `httpOnly` (protocol: http): anything that is not h2 is HTTP/1.x, silence included.
   */
  private sniff(socket: net.Socket, dst: OriginalDestination | null, httpOnly: boolean): void {
    socket.on('error', () => socket.destroy());
    let seen: Buffer | null = null;
    const timer = setTimeout(() => {
      socket.removeListener('data', onData);
      if (seen !== null) socket.pause();
      // Server-first protocols (MySQL, SMTP...): nothing arrives, so it is TCP.
      if (httpOnly) this.startHttp(socket, seen, dst);
      else this.startTcp(socket, seen, dst);
    }, SNIFF_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      const b = (seen = seen === null ? d : Buffer.concat([seen, d]));
      if (maybePartialHttp2Preface(b)) return;
      // TLS (tls_inspector): wait for the whole ClientHello record, read SNI/ALPN, pass through as TCP.
      const hello = !httpOnly && looksLikeTls(b) ? parseClientHello(b) : null;
      if (hello === 'incomplete') return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      if (hello !== null) {
        if (this.deps.logger.isLevelEnabled('debug')) this.deps.logger.debug({ listener: this.spec.name, sni: hello.sni, alpn: hello.alpn, dst }, 'TLS ClientHello: passing through as TCP');
        this.startTcp(socket, b, dst);
      } else if (looksLikeHttp2Preface(b)) (this.h2 ??= new Http2Listener(this)).accept(socket, b, dst);
      else if (httpOnly || looksLikeHttp1(b)) this.startHttp(socket, b, dst);
      else this.startTcp(socket, b, dst);
    };
    socket.on('data', onData);
  }

  private startHttp(socket: net.Socket, initial: Buffer | null, dst: OriginalDestination | null): void {
    const conn = new ServerConnection(socket, this, dst);
    this.httpConnections.add(conn);
    conn.onClosed = () => this.httpConnections.delete(conn);
    if (initial !== null) {
      conn.feed(initial);
      socket.resume();
    }
  }

  private startTcp(socket: net.Socket, initial: Buffer | null, dst: OriginalDestination | null): void {
    // Inbound capture delivers to the application's address with the original port, as for HTTP.
    if (dst !== null && this.spec.kind === 'inbound-capture') dst = { address: this.app.address, port: dst.port };
    proxyTcp(socket, this.spec, { clusters: this.deps.clusters, logger: this.deps.logger, metrics: this.metrics, connectTimeoutMs: 5000 }, dst, initial);
  }

  originalDestination(q: OriginalDstQuery): OriginalDestination | null {
    return resolveOriginalDestination(q, this.spec.kind, this.app);
  }

  resolve(host: string): Promise<string> {
    const hit = this.dnsCache.get(host);
    if (hit && Date.now() - hit.at < 5000) return Promise.resolve(hit.ip);
    return dns.promises.lookup(host).then((r) => {
      if (this.dnsCache.size > 1000) this.dnsCache.clear();
      this.dnsCache.set(host, { ip: r.address, at: Date.now() });
      return r.address;
    });
  }

  /** A request rejected before it became a stream still counts in Istio's metrics (as Envoy's do). */
  onProtocolError(status: number, flag: string, remoteAddress: string): void {
    this.deps.logger.debug({ listener: this.spec.name, status, flag, remoteAddress }, 'rejected a malformed request');
    const info = newStreamInfo();
    info.responseCode = status;
    info.responseFlags = flag;
    info.direction = this.spec.direction;
    info.listenerName = this.spec.name;
    info.downstreamRemoteAddress = remoteAddress;
    this.metrics.recordHttp(info);
  }

  /** Stop accepting; idle keep-alive connections close now, busy ones after their response. */
  startDrain(): void {
    this.draining = true;
    this.server.close();
    for (const c of this.httpConnections) c.closeIfIdle();
    this.h2?.drain();
  }

  /** Close everything now. */
  destroy(): void {
    this.draining = true;
    this.server.close();
    this.h2?.destroy();
    for (const s of this.connections) s.destroy();
  }
}

/**
 * Identity of a listener across Snapshots: its address:port, so a renamed listener keeps its
 * socket. Port 0 (an ephemeral port, in tests) is not an identity: several such listeners may
 * share an address, so they are told apart by name.
 */
function listenerKey(spec: ListenerSpec): string {
  return spec.port === 0 ? `${spec.address}:0/${spec.name}` : `${spec.address}:${spec.port}`;
}

export class ListenerManager {
  private readonly listeners = new Map<string, RunningListener>();
  private readonly deps: ListenerManagerDeps;
  private draining = false;

  constructor(deps: ListenerManagerDeps) {
    this.deps = deps;
  }

  /** Compile every listener of `snap` (throws on a bad one; nothing running is touched). */
  prepare(snap: Snapshot): PreparedListeners {
    const compiled = new Map<string, { spec: ListenerSpec; cfg: HttpListenerConfig }>();
    try {
      for (const spec of snap.listeners) {
        const cfg = compileHttpListener(spec, snap, this.deps.filters, {
          registry: this.deps.registry,
          logger: this.deps.logger,
          listenerName: spec.name,
          direction: spec.direction,
          node: snap.node,
          accessLog: snap.accessLog,
        });
        compiled.set(listenerKey(spec), { spec, cfg });
      }
    } catch (e) {
      for (const { cfg } of compiled.values()) cfg.close();
      throw e;
    }
    return { snap, compiled };
  }

  /** Bind new listeners, swap the config of kept ones, drain removed ones. */
  async commit(p: PreparedListeners): Promise<void> {
    const { snap, compiled } = p;
    const metrics = IstioMetrics.for(this.deps.registry, snap.node);
    const app = { address: snap.app.address, port: snap.app.port };
    const retired: HttpListenerConfig[] = [];
    const binding: Promise<void>[] = [];
    const failures: string[] = [];
    for (const [key, { spec, cfg }] of compiled) {
      const running = this.listeners.get(key);
      if (running) {
        retired.push(running.update(spec, cfg, app));
        continue;
      }
      const l = new RunningListener(spec, cfg, app, this.deps, metrics);
      binding.push(
        l.listen().then(
          () => {
            this.listeners.set(key, l);
            this.deps.logger.info({ listener: spec.name, address: spec.address, port: l.port, protocol: spec.protocol }, 'listener started');
          },
          (e: Error) => {
            cfg.close();
            failures.push(`listener ${spec.name} cannot bind ${spec.address}:${spec.port}: ${e.message}`);
          },
        ),
      );
    }
    for (const [key, l] of this.listeners) {
      if (!compiled.has(key)) {
        this.listeners.delete(key);
        l.startDrain();
        retired.push(l.config);
        this.deps.logger.info({ listener: l.spec.name }, 'listener removed');
      }
    }
    await Promise.all(binding);
    // Filters of the old config may still serve in-flight requests: release them a little later.
    if (retired.length > 0) setTimeout(() => retired.forEach((c) => c.close()), 60_000).unref();
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  /** Actual bound port of a listener by name (port 0 in tests). */
  portOf(name: string): number | undefined {
    for (const l of this.listeners.values()) if (l.spec.name === name) return l.port;
    return undefined;
  }

  get activeConnections(): number {
    let n = 0;
    for (const l of this.listeners.values()) n += l.connections.size;
    return n;
  }

  startDrain(): void {
    this.draining = true;
    for (const l of this.listeners.values()) l.startDrain();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  close(): void {
    for (const l of this.listeners.values()) {
      l.destroy();
      l.config.close();
    }
    this.listeners.clear();
  }
}
