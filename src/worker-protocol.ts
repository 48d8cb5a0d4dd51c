/** Messages between the primary and data-plane workers (concurrency > 1). */
import type { Snapshot } from './config/snapshot.js';
import type { ClusterStatus } from './admin/types.js';

export type PrimaryMessage =
  | { t: 'snapshot'; snap: Snapshot }
  | { t: 'drain'; ms: number }
  | { t: 'clusters'; id: number }
  | { t: 'log'; level: string };

export type WorkerMessage =
  | { t: 'hello' }
  | { t: 'applied'; version: string; error?: string }
  | { t: 'clusters'; id: number; status: ClusterStatus[] };
