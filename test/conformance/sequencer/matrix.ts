/**
 * Every sequencer backend. Redis and PostgreSQL run against the machine's real servers, under a
 * key prefix / table unique to the run, removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { PG_CONNECTION, REDIS_HOST, deleteRedisPrefix, dropPgTables, pgTestTable } from '../state/matrix.js';
import type { SequencerMatrixEntry } from './suite.js';

const redisPrefix = `capa-test-seq-${randomUUID().slice(0, 8)}:`;
const pgTable = pgTestTable('seq');

export const SEQUENCER_MATRIX: readonly SequencerMatrixEntry[] = [
  {
    type: 'sequencer.memory',
    shared: false,
    yaml: 'name: sequencer\ntype: sequencer.memory\n',
  },
  {
    type: 'sequencer.redis',
    shared: true,
    yaml: `name: sequencer\ntype: sequencer.redis\nmetadata:\n  - name: redisHost\n    value: "${REDIS_HOST}"\n  - name: keyPrefix\n    value: "${redisPrefix}"\n`,
    cleanup: () => deleteRedisPrefix(redisPrefix),
  },
  {
    type: 'sequencer.postgresql',
    shared: true,
    yaml: `name: sequencer\ntype: sequencer.postgresql\nmetadata:\n  - name: connectionString\n    value: "${PG_CONNECTION}"\n  - name: tableName\n    value: "${pgTable}"\n`,
    cleanup: () => dropPgTables(pgTable),
  },
];
