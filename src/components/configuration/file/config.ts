/** `configuration.file` metadata. */
import { z } from 'zod';
import { int, nonEmpty } from '../../../config/schema-common.js';

export const fileConfigurationMetadata = z
  .strictObject({
    /** The YAML file of items; relative paths are from the sidecar's working directory. */
    path: nonEmpty,
    /** The stat fallback's period (fs.watch catches most changes at once). */
    pollIntervalMs: int(50, 60_000, 'milliseconds').default(400),
  });

export type FileConfigurationMetadata = z.output<typeof fileConfigurationMetadata>;
