/** `secretstores.local.file` metadata, named as Dapr's local file secret store names it. */
import { z } from 'zod';
import { bool, nonEmpty, text } from '../../../config/schema-common.js';

export const localFileSecretMetadata = z
  .strictObject({
    /** The JSON (or YAML) file; relative paths are from the sidecar's working directory. */
    secretsFile: nonEmpty,
    /** Joins the names of nested objects when flattening (`db:password`). */
    nestedSeparator: text.pipe(z.string().min(1, { error: 'must not be empty' })).default(':'),
    /** true: each top-level key is one secret whose (flattened) children are its keys. */
    multiValued: bool.default(false),
  });

export type LocalFileSecretMetadata = z.output<typeof localFileSecretMetadata>;
