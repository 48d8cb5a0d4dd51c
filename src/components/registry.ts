/**
 * Component definitions by type name ("state.redis"), as Dapr's `cmd/daprd/components` and
 * Layotto's component registries key them. The config compiler checks a component's type and
 * metadata against this registry; the sidecar builds the components through it. Tests build
 * their own registry.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';

/** The building blocks a component can implement (the prefix of its type name). */
/** Dapr's type prefixes (and Layotto's `sequencer`). */
export type BuildingBlock = 'state' | 'pubsub' | 'configuration' | 'lock' | 'sequencer' | 'secretstores';

/** What every component has, whatever its block. */
export interface Component {
  /** Connect / prepare. May reject: the manager reports the error and calls `init` again later. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Current health, for /v1.0/metadata (a connection dropped after a good start shows here). */
  status?(): { readonly ready: boolean; readonly error?: string };
  /** The optional features it really has (state: ETAG, TRANSACTIONAL, TTL), for /v1.0/metadata. */
  features?(): readonly string[];
}

export interface ComponentContext {
  /** The component's name from the config (`statestore`). */
  readonly name: string;
  readonly logger: Logger;
}

export interface ComponentDefinition<C extends Component = Component, M = unknown> {
  /** `state.redis`: block, dot, backend. */
  readonly type: string;
  readonly block: BuildingBlock;
  /** Dapr's component version; `v1` unless the backend has a breaking successor. */
  readonly version: string;
  /** Parses the `metadata:` mapping; issues carry the key path inside `metadata`. */
  readonly metadataSchema: z.ZodType<M, unknown>;
  create(metadata: M, ctx: ComponentContext): C;
}

export class ComponentRegistry {
  private readonly byType = new Map<string, ComponentDefinition<any, any>>();

  register(d: ComponentDefinition<any, any>): void {
    const prev = this.byType.get(key(d.type, d.version));
    if (prev === d) return;
    if (prev) throw new Error(`component type ${d.type}/${d.version} is registered twice`);
    this.byType.set(key(d.type, d.version), d);
  }

  registerAll(list: readonly ComponentDefinition<any, any>[]): this {
    for (const d of list) this.register(d);
    return this;
  }

  /** By type and version (`v1` when not given). */
  get(type: string, version = 'v1'): ComponentDefinition<any, any> | undefined {
    return this.byType.get(key(type, version));
  }

  /** `state.memory, state.redis` (with `/v2` suffixes for non-v1 versions). */
  types(): string[] {
    return [...this.byType.values()].map((d) => (d.version === 'v1' ? d.type : `${d.type}/${d.version}`)).sort();
  }
}

function key(type: string, version: string): string {
  return `${type}/${version}`;
}
