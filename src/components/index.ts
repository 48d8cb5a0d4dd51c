/**
 * The built-in components, registered explicitly from this one list (no import side effects).
 * A new backend is one folder plus one line here (and one line in the conformance matrix).
 */
import { ComponentRegistry, type ComponentDefinition } from './registry.js';
import { memoryState } from './state/memory/index.js';
import { redisState } from './state/redis/index.js';

export const BUILTIN_COMPONENTS: readonly ComponentDefinition<any, any>[] = [memoryState, redisState];

/** Idempotent: registering the same definitions again is a no-op. */
export function registerBuiltinComponents(registry: ComponentRegistry): ComponentRegistry {
  return registry.registerAll(BUILTIN_COMPONENTS);
}

export function builtinComponentRegistry(): ComponentRegistry {
  return registerBuiltinComponents(new ComponentRegistry());
}

export { ComponentRegistry } from './registry.js';
export type { Component, ComponentContext, ComponentDefinition, BuildingBlock } from './registry.js';
