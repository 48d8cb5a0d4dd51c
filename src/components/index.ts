/**
 * The built-in components, registered explicitly from this one list (no import side effects).
 * A new backend is one folder plus one line here (and one line in the conformance matrix).
 */
import { ComponentRegistry, type ComponentDefinition } from './registry.js';
import { memoryState } from './state/memory/index.js';
import { redisState } from './state/redis/index.js';
import { memoryPubSub } from './pubsub/memory/index.js';
import { jetstreamPubSub } from './pubsub/jetstream/index.js';
import { redisPubSub } from './pubsub/redis/index.js';
import { memoryLock } from './lock/memory/index.js';
import { redisLock } from './lock/redis/index.js';
import { fileConfiguration } from './configuration/file/index.js';
import { redisConfiguration } from './configuration/redis/index.js';
import { localFileSecretStore } from './secretstores/local-file/index.js';
import { localEnvSecretStore } from './secretstores/local-env/index.js';
import { postgresqlState } from './state/postgresql/index.js';
import { memorySequencer } from './sequencer/memory/index.js';
import { redisSequencer } from './sequencer/redis/index.js';
import { postgresqlSequencer } from './sequencer/postgresql/index.js';

export const BUILTIN_COMPONENTS: readonly ComponentDefinition<any, any>[] = [memoryState, redisState, memoryPubSub, jetstreamPubSub, redisPubSub, postgresqlState, memorySequencer, redisSequencer, postgresqlSequencer, memoryLock, redisLock, fileConfiguration, redisConfiguration, localFileSecretStore, localEnvSecretStore];

/** Idempotent: registering the same definitions again is a no-op. */
export function registerBuiltinComponents(registry: ComponentRegistry): ComponentRegistry {
  return registry.registerAll(BUILTIN_COMPONENTS);
}

export function builtinComponentRegistry(): ComponentRegistry {
  return registerBuiltinComponents(new ComponentRegistry());
}

export { ComponentRegistry } from './registry.js';
export type { Component, ComponentContext, ComponentDefinition, BuildingBlock } from './registry.js';
