/**
 * Access-log config. Both fields default to the Snapshot's accessLog settings; path '' turns
 * the log off.
 */
import { z } from 'zod';

export const accessLogConfigSchema = z.strictObject({
  /** '' = off, '/dev/stdout', '/dev/stderr' or a file path (appended to, directories made). */
  path: z.string().optional(),
  format: z.enum(['json', 'text']).optional(),
});

export type AccessLogConfig = Readonly<z.output<typeof accessLogConfigSchema>>;
