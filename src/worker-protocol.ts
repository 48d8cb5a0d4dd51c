/** Messages between the primary and data-plane workers (concurrency > 1). */
import type { Snapshot } from './config/snapshot.js';
import type { ClusterStatus } from './admin/types.js';
import type { TcpCopyCommand } from './filters/tcp-copy/admin.js';

export type PrimaryMessage =
  | { t: 'snapshot'; snap: Snapshot }
  | { t: 'drain'; ms: number }
  | { t: 'clusters'; id: number }
  | { t: 'log'; level: string }
  | { t: 'tcpcopy'; id: number; cmd: Exclude<TcpCopyCommand, { kind: 'error' }> };

export type WorkerMessage =
  | { t: 'hello' }
  | { t: 'applied'; version: string; error?: string }
  | { t: 'clusters'; id: number; status: ClusterStatus[] }
  | { t: 'tcpcopy'; id: number; status: unknown };
