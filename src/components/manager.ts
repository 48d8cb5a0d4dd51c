/**
 * Builds the Snapshot's components through the registry and keeps them running. A component
 * whose `init` fails is reported (log line, `/v1.0/metadata`) and initialised again every
 * `retryMs` until it succeeds; the sidecar keeps serving. Lives in the primary process only.
 */
import type { Logger } from 'pino';
import type { ComponentSpec } from '../config/snapshot.js';
import type { BuildingBlock, Component, ComponentRegistry } from './registry.js';
import type { StateStore } from './state/store.js';

export interface ComponentStatus {
  readonly name: string;
  readonly type: string;
  readonly version: string;
  readonly ready: boolean;
  readonly error?: string;
  /** The optional features (state: ETAG, TRANSACTIONAL, TTL). */
  readonly capabilities: readonly string[];
}

/** The components of one block, by name (what the front ends are given). */
export interface ComponentsOf<T> {
  get(name: string): T | undefined;
  names(): string[];
}

interface Running {
  readonly spec: ComponentSpec;
  readonly block: string;
  readonly component: Component;
  initialised: boolean;
  error: string;
  retry: NodeJS.Timeout | null;
}

export class ComponentManager {
  private readonly running = new Map<string, Running>();
  private closed = false;

  constructor(
    private readonly registry: ComponentRegistry,
    private readonly logger: Logger,
    private readonly retryMs = 5000,
  ) {}

  /** Create and initialise every component; resolves when each has succeeded or failed once. */
  async start(specs: readonly ComponentSpec[]): Promise<void> {
    for (const spec of specs) {
      const def = this.registry.get(spec.type, spec.version);
      if (!def) throw new Error(`component ${spec.name}: unknown type ${spec.type}/${spec.version} (known: ${this.registry.types().join(', ')})`);
      const metadata = def.metadataSchema.parse(spec.metadata);
      const component = def.create(metadata, { name: spec.name, logger: this.logger }) as Component;
      this.running.set(spec.name, { spec, block: def.block, component, initialised: false, error: '', retry: null });
    }
    await Promise.all([...this.running.values()].map((r) => this.init(r)));
  }

  private async init(r: Running): Promise<void> {
    try {
      await r.component.init();
      if (r.error) this.logger.info({ component: r.spec.name, type: r.spec.type }, 'component initialised');
      r.initialised = true;
      r.error = '';
    } catch (e) {
      r.error = (e as Error).message;
      this.logger.error({ component: r.spec.name, type: r.spec.type, error: r.error, retryMs: this.retryMs }, 'component failed to initialise; retrying');
      if (!this.closed) r.retry = setTimeout(() => void this.init(r), this.retryMs).unref();
    }
  }

  /** A state store by component name, or undefined (not configured, or not a state store). */
  stateStore(name: string): StateStore | undefined {
    return this.component<StateStore>('state', name);
  }

  stateStoreNames(): string[] {
    return this.names('state');
  }

  /** A component of `block` by name, or undefined (not configured, or of another block). */
  component<T extends Component>(block: BuildingBlock, name: string): T | undefined {
    const r = this.running.get(name);
    return r && r.block === block ? (r.component as T) : undefined;
  }

  /** The names of the configured components of `block`, in config order. */
  names(block: BuildingBlock): string[] {
    return [...this.running.values()].filter((r) => r.block === block).map((r) => r.spec.name);
  }

  /** A typed view of one block, as the front ends take it. */
  view<T extends Component>(block: BuildingBlock): ComponentsOf<T> {
    return { get: (n) => this.component<T>(block, n), names: () => this.names(block) };
  }

  statuses(): ComponentStatus[] {
    return [...this.running.values()].map((r) => {
      // A component that reports its own health (a reconnecting client) is believed over the last init.
      const live = r.component.status?.();
      const error = live ? (live.ready ? undefined : live.error || r.error || 'not ready') : r.initialised ? undefined : r.error || 'initialising';
      const capabilities = [...(r.component.features?.() ?? [])];
      return { name: r.spec.name, type: r.spec.type, version: r.spec.version, ready: error === undefined, ...(error ? { error } : {}), capabilities };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.running.values()) if (r.retry) clearTimeout(r.retry);
    await Promise.all([...this.running.values()].map((r) => r.component.close().catch(() => undefined)));
    this.running.clear();
  }
}
