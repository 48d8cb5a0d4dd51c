export * from './store.js';
export { checkSequencerKey } from './key.js';
export { memorySequencer, MemorySequencer } from './memory/index.js';
export { redisSequencer, RedisSequencer } from './redis/index.js';
export { postgresqlSequencer, PostgresqlSequencer } from './postgresql/index.js';
