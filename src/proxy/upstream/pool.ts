/**
 * Connection pool for one upstream host: idle keep-alive connections (LIFO, so the warmest is
 * reused and the rest time out), a bounded queue of waiters, and the cluster-wide circuit
 * breaker counters (max connections / pending / requests) shared by all hosts of a cluster.
 */
import net from 'node:net';
import { CapaError } from '../../errors.js';
import type { CircuitBreakerThresholds, PoolSettings } from '../../config/snapshot.js';
import type { Host } from '../cluster/host.js';
import { UpstreamConnection, type ConnectionOwner } from './connection.js';

/** Counters shared by every host pool of one cluster (Envoy's per-cluster resource manager). */
export class ClusterResources {
  cxActive = 0;
  rqPending = 0;
  rqActive = 0;
  rqRetryActive = 0;
  /** Counted overflows, shown in /clusters and metrics. */
  overflowCx = 0;
  overflowPending = 0;
  overflowRetry = 0;
  constructor(readonly limits: CircuitBreakerThresholds) {}
}

export interface PoolWaiter {
  onReady(conn: UpstreamConnection): void;
  onFail(err: CapaError): void;
  /** Set by the pool; call to withdraw from the queue. */
  cancelled?: boolean;
}

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  /** Local address to connect from ('' = any). */
  readonly bindAddress: string;
  readonly settings: PoolSettings;
  readonly resources: ClusterResources;
}

export class HostPool implements ConnectionOwner {
  readonly host: Host;
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiters: PoolWaiter[] = [];
  private waitHead = 0;
  private connecting = 0;
  private total = 0;
  private readonly opts: PoolOptions;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly idleSince = new WeakMap<UpstreamConnection, number>();
  private closed = false;

  constructor(host: Host, opts: PoolOptions) {
    this.host = host;
    this.opts = opts;
  }

  get size(): number {
    return this.total;
  }

  /** Hand `w` a connection now or later; fails fast with UO when the cluster's limits are hit. */
  acquire(w: PoolWaiter): void {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.reusable) {
        w.onReady(c);
        return;
      }
    }
    const res = this.opts.resources;
    if (res.cxActive < res.limits.maxConnections) {
      this.connect();
    } else if (this.connecting === 0 && this.total === 0) {
      res.overflowCx++;
      w.onFail(new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `cluster connection limit (maxConnections ${res.limits.maxConnections}) reached`));
      return;
    }
    if (res.rqPending >= res.limits.maxPendingRequests) {
      res.overflowPending++;
      w.onFail(new CapaError('CAPA_ERR_UPSTREAM_OVERFLOW', `cluster pending request limit (maxPendingRequests ${res.limits.maxPendingRequests}) reached`));
      return;
    }
    res.rqPending++;
    this.waiters.push(w);
  }

  private nextWaiter(): PoolWaiter | null {
    while (this.waitHead < this.waiters.length) {
      const w = this.waiters[this.waitHead]!;
      this.waiters[this.waitHead++] = undefined as unknown as PoolWaiter;
      if (this.waitHead > 1024 && this.waitHead * 2 > this.waiters.length) {
        this.waiters.splice(0, this.waitHead);
        this.waitHead = 0;
      }
      this.opts.resources.rqPending--;
      if (!w.cancelled) return w;
    }
    return null;
  }

  private connect(): void {
    const res = this.opts.resources;
    const host = this.host;
    res.cxActive++;
    this.total++;
    this.connecting++;
    host.stats.cxTotal++;
    host.stats.cxActive++;
    const local = this.opts.bindAddress;
    const socket = net.connect(
      local !== '' && net.isIP(local) === net.isIP(host.address)
        ? { host: host.address, port: host.port, noDelay: true, localAddress: local }
        : { host: host.address, port: host.port, noDelay: true },
    );
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      socket.destroy();
      this.connectFailed(`connect timeout after ${this.opts.connectTimeoutMs}ms to ${host.key}`);
    }, this.opts.connectTimeoutMs);
    socket.once('connect', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.connecting--;
      socket.removeAllListeners('error');
      socket.setKeepAlive(true, 60_000);
      const conn = new UpstreamConnection(socket, this);
      this.onIdle(conn);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.connectFailed(`${e.code ?? e.message} connecting to ${host.key}`);
    });
  }

  private connectFailed(reason: string): void {
    const res = this.opts.resources;
    this.connecting--;
    this.total--;
    res.cxActive--;
    this.host.stats.cxActive--;
    this.host.stats.cxConnectFail++;
    // One failed connect fails one waiter (Envoy fails the pending request that triggered it).
    const w = this.nextWaiter();
    w?.onFail(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', `upstream connect error: ${reason}`));
  }

  onIdle(conn: UpstreamConnection): void {
    if (this.closed) {
      conn.destroy();
      return;
    }
    const max = this.opts.settings.maxRequestsPerConnection;
    if (max > 0 && conn.requests >= max) {
      conn.destroy();
      return;
    }
    const w = this.nextWaiter();
    if (w) {
      w.onReady(conn);
      return;
    }
    this.idle.push(conn);
    this.idleSince.set(conn, Date.now());
    this.armIdleTimer();
  }

  onClosed(conn: UpstreamConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.total--;
    this.opts.resources.cxActive--;
    this.host.stats.cxActive--;
    // A waiter may be stuck if this freed the last connection slot.
    if (this.waitHead < this.waiters.length && this.connecting === 0 && this.opts.resources.cxActive < this.opts.resources.limits.maxConnections && !this.closed) {
      this.connect();
    }
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== null) return;
    const ms = this.opts.settings.idleTimeoutMs;
    if (ms <= 0) return;
    const tick = Math.min(ms, 1000);
    this.idleTimer = setInterval(() => {
      const now = Date.now();
      for (let i = this.idle.length - 1; i >= 0; i--) {
        const c = this.idle[i]!;
        if (now - (this.idleSince.get(c) ?? now) >= ms) c.destroy();
      }
      if (this.idle.length === 0 && this.idleTimer) {
        clearInterval(this.idleTimer);
        this.idleTimer = null;
      }
    }, tick);
    this.idleTimer.unref();
  }

  /** Close idle connections now; busy ones close when their exchange ends. */
  close(): void {
    this.closed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    for (const c of this.idle.splice(0)) c.destroy();
    let w: PoolWaiter | null;
    while ((w = this.nextWaiter()) !== null) w.onFail(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', 'cluster was removed'));
  }
}
