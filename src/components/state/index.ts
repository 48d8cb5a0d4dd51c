export * from './store.js';
export * from './errors.js';
export * from './features.js';
export { memoryState, MemoryStateStore } from './memory/index.js';
export { redisState, RedisStateStore } from './redis/index.js';
export { postgresqlState, PostgresqlStateStore } from './postgresql/index.js';
