/** `state.postgresql` metadata, named as Dapr's PostgreSQL state store names it. */
import { z } from 'zod';
import { int, text } from '../../../config/schema-common.js';
import { connectionString, tableName } from './pg.js';

export const postgresqlStateMetadata = z.strictObject({
  /** `host=127.0.0.1 port=5432 user=postgres dbname=test`, or a postgres:// URL. */
  connectionString,
  /** Created (with its version sequence and expiry index) when missing. */
  tableName: tableName('state'),
  /** Connect and per-query timeout. */
  timeoutInSeconds: int(1, 3600, 'seconds').default(20),
  /** How often expired rows are deleted (reads never see them anyway); 0 = never. */
  cleanupIntervalInSeconds: int(0, 86_400 * 7, 'seconds').default(3600),
  /** Prepended to every key; '' = none. */
  keyPrefix: text.default(''),
});

export type PostgresqlStateMetadata = z.output<typeof postgresqlStateMetadata>;
