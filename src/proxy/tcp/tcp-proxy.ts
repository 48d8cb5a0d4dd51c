/**
 * Opaque TCP proxying (Envoy tcp_proxy): one upstream connection per downstream connection to a
 * host of the listener's cluster (or the original destination), bytes piped both ways with
 * backpressure, counted into Istio's TCP metrics.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { ListenerSpec } from '../../config/snapshot.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { IstioMetrics } from '../../observability/metrics.js';
import type { OriginalDestination } from '../http/listener-runtime.js';

export interface TcpProxyDeps {
  readonly clusters: ClusterManager;
  readonly logger: Logger;
  readonly metrics: IstioMetrics;
  readonly connectTimeoutMs: number;
}

export function proxyTcp(
  down: net.Socket,
  spec: ListenerSpec,
  deps: TcpProxyDeps,
  originalDst: OriginalDestination | null,
  initial: Buffer | null,
): void {
  const cluster = deps.clusters.get(spec.tcpCluster || 'PassthroughCluster');
  let target: OriginalDestination | null = null;
  if (cluster && cluster.spec.type !== 'ORIGINAL_DST') {
    const h = cluster.pick({ hash: undefined, attempted: null });
    if (h) target = { address: h.address, port: h.port };
  } else target = originalDst;
  const clusterName = cluster?.name ?? spec.tcpCluster;
  if (target === null) {
    deps.logger.warn({ listener: spec.name, cluster: clusterName }, 'tcp proxy: no upstream for connection (no healthy host or unknown original destination); closing');
    down.destroy();
    return;
  }
  const dir = spec.direction;
  deps.metrics.recordTcpOpen(dir, clusterName);
  let sent = 0;
  let received = 0;
  const local = cluster?.spec.upstreamBindAddress ?? '';
  const up = net.connect(
    local !== '' && net.isIP(local) === net.isIP(target.address)
      ? { host: target.address, port: target.port, noDelay: true, localAddress: local }
      : { host: target.address, port: target.port, noDelay: true },
  );
  const timer = setTimeout(() => up.destroy(new Error('connect timeout')), deps.connectTimeoutMs);
  up.once('connect', () => clearTimeout(timer));
  if (initial !== null && initial.length > 0) {
    received += initial.length;
    up.write(initial);
  }
  down.on('data', (d: Buffer) => {
    received += d.length;
  });
  up.on('data', (d: Buffer) => {
    sent += d.length;
  });
  down.pipe(up);
  up.pipe(down);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    deps.metrics.recordTcpClose(dir, clusterName, sent, received);
  };
  up.on('error', (e) => {
    deps.logger.debug({ listener: spec.name, err: e.message }, 'tcp proxy upstream error');
    down.destroy();
  });
  down.on('error', () => up.destroy());
  up.on('close', () => {
    down.destroy();
    close();
  });
  down.on('close', () => {
    up.destroy();
    close();
  });
  down.resume();
}
