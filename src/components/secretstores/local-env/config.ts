/** `secretstores.local.env` metadata, named as Dapr's environment secret store names it. */
import { z } from 'zod';
import { text } from '../../../config/schema-common.js';

export const localEnvSecretMetadata = z
  .strictObject({
    /** Only variables starting with it are secrets, named without it ('' = every variable). */
    prefix: text.default(''),
  })
  .prefault({});

export type LocalEnvSecretMetadata = z.output<typeof localEnvSecretMetadata>;
