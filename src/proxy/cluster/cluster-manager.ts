/**
 * Owns the running clusters. `apply(snapshot)` reuses a cluster whose spec is unchanged
 * (updating only its endpoints), builds new ones and closes removed ones, so connection pools
 * and health state survive reloads. It also owns the DNS caches of dynamic forward proxy
 * clusters (shared by settings; a re-created cluster with the same settings keeps its cache).
 */
import type { Logger } from 'pino';
import type { Snapshot } from '../../config/snapshot.js';
import type { Registry } from 'prom-client';
import { Cluster, type ClusterHooks } from './cluster.js';
import { outlierEjectionsCounter } from './outlier.js';
import { DnsCacheManager } from './dns-cache.js';

export class ClusterManager {
  private clusters = new Map<string, Cluster>();
  private readonly hooks: ClusterHooks;
  constructor(
    private readonly logger: Logger,
    registry?: Registry,
    dnsCaches: DnsCacheManager = new DnsCacheManager(),
  ) {
    const ejections = registry ? outlierEjectionsCounter(registry) : null;
    this.hooks = ejections ? { onOutlierEjection: (cluster) => ejections.labels(cluster).inc(), dnsCaches } : { dnsCaches };
  }

  async apply(snap: Snapshot): Promise<void> {
    const next = new Map<string, Cluster>();
    const starting: Promise<void>[] = [];
    for (const [name, spec] of Object.entries(snap.clusters)) {
      const assignment = snap.endpoints[name];
      const prev = this.clusters.get(name);
      if (prev && prev.specKey === JSON.stringify(spec)) {
        if (prev.assignmentKey !== JSON.stringify(assignment ?? null)) prev.updateAssignment(assignment);
        next.set(name, prev);
        continue;
      }
      const c = new Cluster(spec, assignment, this.logger, this.hooks);
      next.set(name, c);
      starting.push(c.start());
    }
    const old = this.clusters;
    this.clusters = next;
    for (const [name, c] of old) if (next.get(name) !== c) c.close();
    await Promise.all(starting);
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): Cluster[] {
    return [...this.clusters.values()];
  }

  close(): void {
    for (const c of this.clusters.values()) c.close();
    this.clusters.clear();
  }
}
