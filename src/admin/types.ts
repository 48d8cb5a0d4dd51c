/**
 * What the admin, metrics and readiness servers read from the rest of the process. They get this
 * narrow object, never the proxy itself (STYLE.md §8).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HostStats } from '../proxy/cluster/host.js';

/** Envoy's server states, as /server_info reports them. */
export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

/** Per-host counters, as the cluster's hosts keep them. */
export type { HostStats };

export interface HostStatus {
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  /** Envoy health_flags text: 'healthy' or e.g. '/failed_active_hc'. '' means derive from `healthy`. */
  healthFlags: string;
  stats: HostStats;
}

export interface ClusterStatus {
  name: string;
  type: string;
  lbPolicy: string;
  hosts: HostStatus[];
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface AdminSources {
  /** The current Snapshot (plain data). */
  snapshot(): unknown;
  /** Raw inputs (xDS resources with versions, the YAML), shown in /config_dump when given. */
  rawConfig?(): unknown;
  /** May be async (with worker processes the primary asks each worker). */
  clusters(): ClusterStatus[] | Promise<ClusterStatus[]>;
  ready(): boolean;
  /** Finer than ready(): LIVE / DRAINING / PRE_INITIALIZING. Default: from ready() and quit. */
  state?(): ServerState;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  metricsContentType: string;
  /** false when `level` is not a level the logger knows. */
  setLogLevel(level: string): boolean;
  getLogLevel(): string;
  /** Begin graceful drain and exit. */
  quit(): void;
  /** More endpoints by path (e.g. '/debug/pools'), GET or POST. */
  extraHandlers?: Record<string, AdminHandler>;
}

export interface ListeningServer {
  /** The port actually bound (port 0 supported). */
  readonly port: number;
  close(): Promise<void>;
}

export type AdminServer = ListeningServer;

export interface AdminServerOptions {
  host: string;
  port: number;
  sources: AdminSources;
  logger: Logger;
  /** Reported by /server_info; default: package.json's version. */
  version?: string;
}
