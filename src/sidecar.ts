/**
 * The sidecar process: owns the configuration (YAML + hot reload), the admin, metrics and
 * readiness servers, and the data plane — in-process when concurrency is 1, otherwise in N
 * worker processes (node:cluster, each accepting on the shared listening sockets) that receive
 * every Snapshot over IPC. Metrics of all workers are aggregated on the one endpoint.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ConfigWatcher } from './config/watcher.js';
import type { Snapshot } from './config/snapshot.js';
import { ConfigError } from './errors.js';
import { builtinFilterRegistry } from './filters/index.js';
import { createLogger, setLogLevel } from './observability/logger.js';
import { createMetricsRegistry } from './observability/metrics.js';
import { startAdminServer, startMetricsServer, startReadinessServer } from './admin/index.js';
import type { AdminSources, ClusterStatus, ListeningServer } from './admin/types.js';
import { DataPlane } from './proxy/data-plane.js';
import { flushAccessLogs } from './filters/access-log/index.js';
import { setupRateLimiterPrimary } from './filters/local-ratelimit/index.js';
import { parseTcpCopyCommand, tcpCopyAdminHandler } from './filters/tcp-copy/index.js';
import { policiesAdminHandler } from './filters/flow-control/admin.js';
import type { WorkerMessage, PrimaryMessage } from './worker-protocol.js';
import { Runtime } from './runtime/runtime.js';

/** glibc malloc settings for data-plane processes (see the README, "Benchmark"). */
export const GLIBC_TUNABLES = 'glibc.malloc.trim_threshold=536870912:glibc.malloc.top_pad=268435456';

export interface SidecarOptions {
  readonly configPath: string;
  /** Overrides `concurrency:` of the file (CLI --concurrency). */
  readonly concurrency?: number;
  readonly logger?: Logger;
  readonly env?: Record<string, string | undefined>;
  /** Fixed log level (CLI --log-level); when absent the file's `logLevel` applies. */
  readonly logLevel?: string;
  /** Watched FlowControlPolicy directories besides the config's (CLI --policy-dir). */
  readonly policyDirs?: readonly string[];
  /** Exit the process when drained (the CLI); tests keep the process. */
  readonly exitOnDrain?: boolean;
}

export class Sidecar {
  readonly logger: Logger;
  readonly registry: Registry;
  private readonly watcher: ConfigWatcher;
  private dataPlane: DataPlane | null = null;
  private readonly workers: Worker[] = [];
  private servers: ListeningServer[] = [];
  private admin: ListeningServer | null = null;
  /** Runtime API components and both front ends (primary only). */
  private runtime: Runtime | null = null;
  /**
   * Where the runtime's own metrics go (pub/sub counters): `registry` in one process; with worker
   * processes a registry of their own, served after the workers' aggregated metrics (the primary's
   * `registry` is not part of that aggregate).
   */
  private runtimeRegistry: Registry | null = null;
  private state: 'PRE_INITIALIZING' | 'LIVE' | 'DRAINING' = 'PRE_INITIALIZING';
  private concurrency = 1;
  private readonly opts: SidecarOptions;
  private reqId = 0;
  private drainPromise: Promise<void> | null = null;
  private readonly onSighup = (): void => {
    this.logger.info({}, 'SIGHUP: reloading configuration');
    this.watcher.reload();
  };

  private constructor(opts: SidecarOptions, logger: Logger) {
    this.opts = opts;
    this.logger = logger;
    this.registry = createMetricsRegistry();
    const filters = builtinFilterRegistry();
    this.watcher = new ConfigWatcher(
      opts.configPath,
      { filters, env: opts.env, policyDirs: opts.policyDirs },
      {
        onSnapshot: (s) => this.enqueueApply(s),
        onError: (e) => this.logger.error({ file: opts.configPath, error: e.message }, 'configuration rejected; the running configuration stays in force'),
      },
      logger,
    );
    this.filters = filters;
  }

  private readonly filters: ReturnType<typeof builtinFilterRegistry>;

  /** Load the config (throws ConfigError when it is bad), start everything, resolve when ready. */
  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const logger = opts.logger ?? createLogger('info');
    const s = new Sidecar(opts, logger);
    await s.boot();
    return s;
  }

  get snapshot(): Snapshot {
    return this.watcher.current;
  }

  private async boot(): Promise<void> {
    const snap = this.watcher.start();
    this.applyLogLevel(snap);
    this.concurrency = Math.max(1, this.opts.concurrency ?? snap.concurrency);
    if (this.concurrency === 1) {
      this.dataPlane = new DataPlane(this.filters, this.registry, this.logger);
      await this.dataPlane.apply(snap);
    } else {
      await this.startWorkers(snap);
    }
    await this.startServers(snap);
    await this.startRuntime();
    process.on('SIGHUP', this.onSighup);
    this.state = 'LIVE';
    // bin/capa-runtime picks the GC threads for the CPUs the process has (CAPA_GC_THREADS).
    const gc = process.execArgv.includes('--single-threaded-gc') ? 'single-threaded' : 'parallel';
    this.logger.info({ version: snap.version, listeners: snap.listeners.map((l) => `${l.name}@${l.address}:${l.port}`), concurrency: this.concurrency, gc }, 'capa-runtime ready');
  }

  /** Snapshots are applied one at a time, in the order the watcher produced them. */
  private applying: Promise<void> = Promise.resolve();
  private enqueueApply(snap: Snapshot): void {
    this.applying = this.applying.then(() => this.apply(snap));
  }

  private async apply(snap: Snapshot): Promise<void> {
    try {
      this.applyLogLevel(snap);
      if (this.dataPlane) await this.dataPlane.apply(snap);
      else for (const w of this.workers) this.send(w, { t: 'snapshot', snap });
      await this.runtime?.apply(snap);
      this.logger.info({ version: snap.version }, 'configuration applied');
    } catch (e) {
      this.logger.error({ version: snap.version, error: (e as Error).message }, 'configuration could not be fully applied');
    }
  }

  private applyLogLevel(snap: Snapshot): void {
    setLogLevel(this.logger, this.opts.logLevel ?? snap.logLevel);
  }

  // === impl workers ===

  private async startWorkers(snap: Snapshot): Promise<void> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    // Rate limits are counted in the primary so N workers do not multiply them.
    setupRateLimiterPrimary();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.concurrency; i++) {
      const w = cluster.fork({
        CAPA_WORKER: '1',
        CAPA_WORKER_ID: String(i),
        CAPA_WORKER_COUNT: String(this.concurrency),
        CAPA_LOG_LEVEL: this.opts.logLevel ?? '',
        // Keep freed socket buffers in the heap instead of trimming it back to the kernel after each
        // GC: without it, bulk TCP runs at 0.2 GB/s on page faults (bench/README.md, TCP suite).
        GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? GLIBC_TUNABLES,
      });
      this.workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.on('message', (m: WorkerMessage) => {
            if (m.t === 'hello') this.send(w, { t: 'snapshot', snap: this.watcher.current });
            else if (m.t === 'applied' && m.version === snap.version) {
              if (m.error) reject(new Error(`worker ${i}: ${m.error}`));
              else resolve();
            } else if (m.t === 'clusters' || m.t === 'tcpcopy') this.onReply(m.id, m.status);
          });
          w.once('exit', (code) => {
            if (this.state !== 'DRAINING') {
              this.logger.error({ worker: i, code }, 'worker exited unexpectedly');
              reject(new Error(`worker ${i} exited with ${code}`));
            }
          });
        }),
      );
    }
    await Promise.all(ready);
  }

  private send(w: Worker, m: PrimaryMessage): void {
    if (w.isConnected()) w.send(m);
  }

  private readonly asks = new Map<number, { n: number; got: unknown[]; done: (r: unknown[]) => void }>();

  private onReply(id: number, value: unknown): void {
    const p = this.asks.get(id);
    if (!p) return;
    p.got.push(value);
    if (p.got.length === p.n) {
      this.asks.delete(id);
      p.done(p.got);
    }
  }

  /** Send one message to every worker and collect their answers (at most 1 s). */
  private askWorkers<T>(message: (id: number) => PrimaryMessage): Promise<T[]> {
    const id = ++this.reqId;
    return new Promise((resolve) => {
      this.asks.set(id, { n: this.workers.length, got: [], done: (r) => resolve(r as T[]) });
      for (const w of this.workers) this.send(w, message(id));
      setTimeout(() => {
        const p = this.asks.get(id);
        if (p) {
          this.asks.delete(id);
          resolve(p.got as T[]);
        }
      }, 1000).unref();
    });
  }

  private async clusterStatus(): Promise<ClusterStatus[]> {
    if (this.dataPlane) return this.dataPlane.clusterStatus();
    return mergeClusterStatus(await this.askWorkers<ClusterStatus[]>((id) => ({ t: 'clusters', id })));
  }

  // === impl admin ===

  private async startServers(snap: Snapshot): Promise<void> {
    const sc = snap.sidecar;
    const aggregator = this.dataPlane ? null : new AggregatorRegistry();
    const runtimeRegistry = (this.runtimeRegistry = aggregator === null ? this.registry : new Registry());
    const sources: AdminSources = {
      snapshot: () => this.watcher.current,
      clusters: () => this.clusterStatus(),
      ready: () => this.state === 'LIVE',
      state: () => this.state,
      metrics: async () => {
        if (aggregator === null) return this.registry.metrics();
        const agg = await aggregator.clusterMetrics();
        return agg + (await runtimeRegistry.metrics());
      },
      metricsContentType: this.registry.contentType,
      setLogLevel: (level) => {
        const ok = setLogLevel(this.logger, level);
        if (ok) for (const w of this.workers) this.send(w, { t: 'log', level });
        return ok;
      },
      getLogLevel: () => this.logger.level,
      quit: () => void this.drain('admin /quitquitquit'),
      extraHandlers: {
        '/policies': policiesAdminHandler({ flowControl: () => this.watcher.current.flowControl, metricsText: () => sources.metrics() }),
        '/tcpcopy': (req, res) => {
          if (this.dataPlane) {
            const tc = this.dataPlane.tcpCopy;
            if (tc !== null) return tcpCopyAdminHandler(tc)(req, res);
            res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
            return res.end('tcpcopy: not ready\n');
          }
          // Worker processes each own a TCP copy: relay the command, answer with every worker's status.
          const cmd = parseTcpCopyCommand(req.method, new URL(req.url ?? '/', 'http://admin').searchParams);
          if (cmd.kind === 'error') {
            res.writeHead(cmd.status, { 'content-type': 'text/plain; charset=utf-8' });
            return res.end(cmd.message);
          }
          void this.askWorkers<unknown>((id) => ({ t: 'tcpcopy', id, cmd })).then((workers) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(`${JSON.stringify({ workers }, null, 2)}\n`);
          });
        },
      },
    };
    this.admin = await startAdminServer({ host: sc.adminAddress, port: sc.adminPort, sources, logger: this.logger });
    this.servers.push(this.admin);
    this.servers.push(await startMetricsServer('0.0.0.0', sc.prometheusPort, ['/stats/prometheus'], sources));
    if (sc.metricsPort !== sc.prometheusPort) this.servers.push(await startMetricsServer('0.0.0.0', sc.metricsPort, ['/metrics', '/stats/prometheus'], sources));
    this.servers.push(await startReadinessServer('0.0.0.0', sc.readinessPort, sources));
  }

  // === impl runtime API ===

  /** Components, pub/sub, invocation and both runtime front ends (src/runtime/runtime.ts). */
  private async startRuntime(): Promise<void> {
    this.runtime = await Runtime.start({
      logger: this.logger,
      registry: this.runtimeRegistry ?? this.registry,
      current: () => this.watcher.current,
      healthy: () => this.state === 'LIVE',
      listenerPort: (name) => this.listenerPort(name),
    });
  }

  /** Actual port of the runtime HTTP API (sidecar.port 0 in tests). */
  get runtimeHttpPort(): number {
    return this.runtime?.httpPort ?? 0;
  }

  /** Actual port of the runtime gRPC API (sidecar.grpcPort 0 in tests). */
  get runtimeGrpcPort(): number {
    return this.runtime?.grpcPort ?? 0;
  }

  get adminPort(): number {
    return this.admin?.port ?? 0;
  }

  /** Actual port of a listener by name (for port 0 in tests; single-process mode). */
  listenerPort(name: string): number | undefined {
    return this.dataPlane?.listeners.portOf(name);
  }

  /** SIGTERM / quitquitquit: stop accepting, let in-flight requests finish, then stop. */
  drain(reason: string): Promise<void> {
    if (this.drainPromise) return this.drainPromise;
    this.state = 'DRAINING';
    const ms = this.watcher.current.drainTimeMs;
    this.logger.info({ reason, drainTimeMs: ms }, 'draining');
    this.drainPromise = (async () => {
      if (this.dataPlane) await this.dataPlane.drain(ms);
      else await this.drainWorkers(ms);
      await this.stop();
      if (this.opts.exitOnDrain) {
        this.logger.info({}, 'drained; exiting');
        process.exit(0);
      }
    })();
    return this.drainPromise;
  }

  private async drainWorkers(ms: number): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            this.send(w, { t: 'drain', ms });
            setTimeout(() => {
              w.kill();
              resolve();
            }, ms + 2000).unref();
          }),
      ),
    );
  }

  async stop(): Promise<void> {
    process.off('SIGHUP', this.onSighup);
    this.watcher.close();
    this.dataPlane?.close();
    for (const w of this.workers) if (!w.isDead()) w.kill();
    await Promise.all(this.servers.map((s) => s.close()));
    this.servers = [];
    await this.runtime?.close();
    this.runtime = null;
    await flushAccessLogs();
  }
}

function mergeClusterStatus(all: ClusterStatus[][]): ClusterStatus[] {
  if (all.length === 0) return [];
  const base: ClusterStatus[] = JSON.parse(JSON.stringify(all[0]));
  for (const other of all.slice(1)) {
    for (const c of other) {
      const b = base.find((x) => x.name === c.name);
      if (!b) continue;
      for (const h of c.hosts) {
        const bh = b.hosts.find((x) => x.address === h.address && x.port === h.port);
        if (!bh) continue;
        for (const k of Object.keys(h.stats) as (keyof typeof h.stats)[]) bh.stats[k] += h.stats[k];
        bh.healthy &&= h.healthy;
      }
    }
  }
  return base;
}

export { ConfigError };
