/** `sequencer.postgresql` metadata: the connection fields of `state.postgresql` and the counters' table. */
import { z } from 'zod';
import { int } from '../../../config/schema-common.js';
import { connectionString, tableName } from '../../state/postgresql/pg.js';

export const postgresqlSequencerMetadata = z.strictObject({
  /** `host=127.0.0.1 port=5432 user=postgres dbname=test`, or a postgres:// URL. */
  connectionString,
  /** One row per key; created when missing. */
  tableName: tableName('sequencer'),
  /** Connect and per-query timeout. */
  timeoutInSeconds: int(1, 3600, 'seconds').default(20),
});

export type PostgresqlSequencerMetadata = z.output<typeof postgresqlSequencerMetadata>;
