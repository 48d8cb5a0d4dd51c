/**
 * The data plane of one process: clusters and listeners, fed whole Snapshots. Used directly in
 * single-process mode and by each worker when `concurrency > 1`.
 * A Snapshot is compiled before anything changes, so a bad one leaves the running one in force.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Snapshot } from '../config/snapshot.js';
import type { FilterRegistry } from '../filters/registry.js';
import type { ClusterStatus } from '../admin/types.js';
import { ClusterManager } from './cluster/cluster-manager.js';
import { ListenerManager } from './listener-manager.js';
import { loadOriginalDst, type SocketOriginalDst } from '../interception/original-dst/index.js';
import { TcpCopy } from '../filters/tcp-copy/index.js';

export class DataPlane {
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  private current: Snapshot | null = null;
  /** TCP copy of sampled capture-listener connections; rebuilt when its settings change. */
  private copy: { key: string; tc: TcpCopy } | null = null;

  constructor(
    readonly filters: FilterRegistry,
    readonly registry: Registry,
    readonly logger: Logger,
    /** SO_ORIGINAL_DST reader for capture listeners; default: the native addon, null when it cannot load. */
    socketOriginalDst: SocketOriginalDst | null = loadOriginalDst(logger),
  ) {
    this.clusters = new ClusterManager(logger, registry);
    this.listeners = new ListenerManager({
      filters,
      clusters: this.clusters,
      registry,
      logger,
      socketOriginalDst: socketOriginalDst ?? undefined,
      tcpCopy: () => this.copy?.tc ?? null,
    });
  }

  get snapshot(): Snapshot | null {
    return this.current;
  }

  /** Throws when a listener cannot be compiled or bound; what could be applied stays applied. */
  async apply(snap: Snapshot): Promise<void> {
    const prepared = this.listeners.prepare(snap);
    const clustersReady = this.clusters.apply(snap);
    this.current = snap;
    this.applyTcpCopy(snap);
    await this.listeners.commit(prepared);
    await clustersReady;
  }

  private applyTcpCopy(snap: Snapshot): void {
    const key = JSON.stringify(snap.tcpCopy);
    if (this.copy?.key === key) return;
    const old = this.copy;
    this.copy = { key, tc: new TcpCopy({ ...snap.tcpCopy, ports: [...snap.tcpCopy.ports] }, { logger: this.logger, registry: this.registry }) };
    if (old) void old.tc.close();
  }

  /** The running TCP copy (admin /tcpcopy switches it at run time). */
  get tcpCopy(): TcpCopy | null {
    return this.copy?.tc ?? null;
  }

  clusterStatus(): ClusterStatus[] {
    return this.clusters.all().map((c) => c.status());
  }

  /** Stop accepting and wait (at most `ms`) for open connections to finish. */
  async drain(ms: number): Promise<void> {
    this.listeners.startDrain();
    const deadline = Date.now() + ms;
    while (this.listeners.activeConnections > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.listeners.close();
    this.clusters.close();
    if (this.copy) void this.copy.tc.close();
    this.copy = null;
  }
}
