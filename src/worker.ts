/**
 * A data-plane worker (concurrency > 1): applies the Snapshots the primary sends, accepts on the
 * shared listening sockets, and exposes its metrics to the primary's aggregator.
 */
import { AggregatorRegistry } from 'prom-client';
import { builtinFilterRegistry } from './filters/index.js';
import { createLogger, setLogLevel } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import { DataPlane } from './proxy/data-plane.js';
import { flushAccessLogs } from './filters/access-log/index.js';
import type { PrimaryMessage, WorkerMessage } from './worker-protocol.js';
import { applyTcpCopyCommand } from './filters/tcp-copy/admin.js';

export function runWorker(): void {
  const logger = createLogger('info').child({ worker: Number(process.env.CAPA_WORKER_ID ?? 0) });
  const registry = createMetricsRegistry();
  // Constructing one installs prom-client's IPC listener that answers the primary's aggregator.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const dp = new DataPlane(builtinFilterRegistry(), registry, logger);
  const reply = (m: WorkerMessage): void => {
    process.send?.(m);
  };
  process.on('message', (m: PrimaryMessage) => {
    switch (m.t) {
      case 'snapshot':
        setLogLevel(logger, process.env.CAPA_LOG_LEVEL || m.snap.logLevel);
        dp.apply(m.snap).then(
          () => reply({ t: 'applied', version: m.snap.version }),
          (e: Error) => {
            logger.error({ error: e.message }, 'worker could not apply the configuration');
            reply({ t: 'applied', version: m.snap.version, error: e.message });
          },
        );
        break;
      case 'drain':
        void dp.drain(m.ms).then(async () => {
          dp.close();
          await flushAccessLogs();
          process.exit(0);
        });
        break;
      case 'clusters':
        reply({ t: 'clusters', id: m.id, status: dp.clusterStatus() });
        break;
      case 'log':
        setLogLevel(logger, m.level);
        break;
      case 'tcpcopy': {
        const tc = dp.tcpCopy;
        reply({ t: 'tcpcopy', id: m.id, status: tc ? applyTcpCopyCommand(tc, m.cmd) : null });
        break;
      }
    }
  });
  reply({ t: 'hello' });
  // Signals go to the whole process group; the primary coordinates the drain.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
}
