/**
 * Builds the Snapshot's components through the registry and keeps them running. A component
 * whose secrets cannot be read or whose `init` fails is reported (log line, `/v1.0/metadata`,
 * readiness) and tried again every `retryMs` until it succeeds; the sidecar keeps serving.
 * Secret stores start first: other components read `secretKeyRef` metadata from them.
 * `update` applies a changed `components:` list (hot reload): removed and changed components are
 * closed, new and changed ones started; unchanged ones keep running untouched.
 * Lives in the primary process only.
 */
import type { Logger } from 'pino';
import type { ComponentSpec } from '../config/snapshot.js';
import type { BuildingBlock, Component, ComponentDefinition, ComponentRegistry } from './registry.js';
import type { StateStore } from './state/store.js';
import type { SecretStore } from './secretstores/store.js';

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
  /** Why a configured component cannot serve yet (its secrets could not be read); undefined otherwise. */
  notReady(name: string): string | undefined;
}

/** What `update` did, by component name. */
export interface ComponentChanges {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

interface Running {
  readonly spec: ComponentSpec;
  readonly def: ComponentDefinition<any, any>;
  /** null until its secrets were read and it was created. */
  component: Component | null;
  initialised: boolean;
  error: string;
  retry: NodeJS.Timeout | null;
  stopped: boolean;
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
    await this.startAll(specs);
  }

  /** Apply a new `components:` list; resolves when the new ones have succeeded or failed once. */
  async update(specs: readonly ComponentSpec[]): Promise<ComponentChanges> {
    const next = new Map(specs.map((s) => [s.name, s]));
    const changes: ComponentChanges = { added: [], removed: [], changed: [] };
    const changedStores = new Set<string>();
    for (const [name, r] of this.running) {
      const n = next.get(name);
      if (n === undefined) changes.removed.push(name);
      else if (specKey(n) !== specKey(r.spec)) {
        changes.changed.push(name);
        if (r.def.block === 'secretstores') changedStores.add(name);
      }
    }
    // A component reading secrets from a changed store reads them again.
    for (const [name, r] of this.running) {
      if (changes.changed.includes(name) || changes.removed.includes(name)) continue;
      if (Object.values(r.spec.secretRefs).some((ref) => changedStores.has(ref.store))) changes.changed.push(name);
    }
    for (const name of specs.map((s) => s.name)) if (!this.running.has(name)) changes.added.push(name);
    const stop = [...changes.removed, ...changes.changed];
    await Promise.all(stop.map((name) => this.stop(name)));
    await this.startAll(specs.filter((s) => changes.added.includes(s.name) || changes.changed.includes(s.name)));
    if (stop.length > 0 || changes.added.length > 0) this.logger.info(changes, 'components updated');
    return changes;
  }

  private async startAll(specs: readonly ComponentSpec[]): Promise<void> {
    const created: Running[] = [];
    for (const spec of specs) {
      const def = this.registry.get(spec.type, spec.version);
      if (!def) throw new Error(`component ${spec.name}: unknown type ${spec.type}/${spec.version} (known: ${this.registry.types().join(', ')})`);
      const r: Running = { spec, def, component: null, initialised: false, error: '', retry: null, stopped: false };
      this.running.set(spec.name, r);
      created.push(r);
    }
    await Promise.all(created.filter((r) => r.def.block === 'secretstores').map((r) => this.init(r)));
    await Promise.all(created.filter((r) => r.def.block !== 'secretstores').map((r) => this.init(r)));
  }

  private async init(r: Running): Promise<void> {
    r.retry = null;
    if (r.stopped) return;
    try {
      if (r.component === null) r.component = await this.create(r);
      await r.component.init();
      if (r.stopped) {
        await r.component.close().catch(() => undefined);
        return;
      }
      if (r.error) this.logger.info({ component: r.spec.name, type: r.spec.type }, 'component initialised');
      r.initialised = true;
      r.error = '';
    } catch (e) {
      r.error = (e as Error).message;
      this.logger.error({ component: r.spec.name, type: r.spec.type, error: r.error, retryMs: this.retryMs }, 'component failed to initialise; retrying');
      if (!this.closed && !r.stopped) r.retry = setTimeout(() => void this.init(r), this.retryMs).unref();
    }
  }

  /** Reads the component's secrets, then builds it from the complete metadata. */
  private async create(r: Running): Promise<Component> {
    const metadata: Record<string, unknown> = { ...r.spec.metadata };
    for (const [k, ref] of Object.entries(r.spec.secretRefs)) {
      const store = this.component<SecretStore>('secretstores', ref.store);
      if (store === undefined) throw new Error(`metadata ${k}: secret store ${ref.store} is not running`);
      let secret: Record<string, string>;
      try {
        secret = await store.get({ key: ref.name });
      } catch (e) {
        throw new Error(`metadata ${k}: cannot read secret ${ref.name} from ${ref.store}: ${(e as Error).message}`, { cause: e });
      }
      const value = secret[ref.key];
      if (value === undefined) throw new Error(`metadata ${k}: secret ${ref.name} in ${ref.store} has no key ${ref.key}`);
      metadata[k] = value;
    }
    const parsed = r.def.metadataSchema.safeParse(metadata);
    if (!parsed.success) {
      // Only a value read from a secret can be wrong here: the rest was checked with the config.
      const issue = parsed.error.issues[0]!;
      throw new Error(`metadata ${issue.path.join('.')}: ${issue.message} (the value read from its secret)`);
    }
    return r.def.create(parsed.data, { name: r.spec.name, logger: this.logger }) as Component;
  }

  private async stop(name: string): Promise<void> {
    const r = this.running.get(name);
    if (!r) return;
    this.running.delete(name);
    r.stopped = true;
    if (r.retry) clearTimeout(r.retry);
    await r.component?.close().catch(() => undefined);
  }

  /** A state store by component name, or undefined (not configured, or not a state store). */
  stateStore(name: string): StateStore | undefined {
    return this.component<StateStore>('state', name);
  }

  /** A component of `block` by name, or undefined (not configured, of another block, or not created yet). */
  component<T extends Component>(block: BuildingBlock, name: string): T | undefined {
    const r = this.running.get(name);
    return r && r.def.block === block && r.component !== null ? (r.component as T) : undefined;
  }

  /** The names of the configured components of `block`, in config order. */
  names(block: BuildingBlock): string[] {
    return [...this.running.values()].filter((r) => r.def.block === block).map((r) => r.spec.name);
  }

  /** A typed view of one block, as the front ends take it. */
  view<T extends Component>(block: BuildingBlock): ComponentsOf<T> {
    return { get: (n) => this.component<T>(block, n), names: () => this.names(block), notReady: (n) => this.notReady(block, n) };
  }

  /** Why the configured component `name` of `block` has not been created yet; undefined when it has (or is not configured). */
  notReady(block: BuildingBlock, name: string): string | undefined {
    const r = this.running.get(name);
    if (!r || r.def.block !== block || r.component !== null) return undefined;
    return r.error || 'starting';
  }

  statuses(): ComponentStatus[] {
    return [...this.running.values()].map((r) => {
      // A component that reports its own health (a reconnecting client) is believed over the last init.
      const live = r.initialised ? r.component?.status?.() : undefined;
      const error = live ? (live.ready ? undefined : live.error || r.error || 'not ready') : r.initialised ? undefined : r.error || 'initialising';
      const capabilities = [...(r.component?.features?.() ?? [])];
      return { name: r.spec.name, type: r.spec.type, version: r.spec.version, ready: error === undefined, ...(error ? { error } : {}), capabilities };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.keys()].map((name) => this.stop(name)));
  }
}

function specKey(s: ComponentSpec): string {
  return JSON.stringify([s.type, s.version, s.metadata, s.secretRefs]);
}
