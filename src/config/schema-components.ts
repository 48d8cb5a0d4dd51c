/**
 * `components:` — the runtime API backends (Dapr components): name, type (`state.redis`),
 * version and metadata. Metadata is a mapping, or Dapr's list of `{name, value}`; it is checked
 * by the component's own schema in compile-components.ts, where the registry is known.
 */
import { z } from 'zod';
import { list, nonEmpty } from './schema-common.js';

const daprMetadataList = z.array(z.strictObject({ name: nonEmpty, value: z.unknown() }));

const metadata = z.preprocess((v) => {
  const asList = daprMetadataList.safeParse(v);
  return asList.success ? Object.fromEntries(asList.data.map((e) => [e.name, e.value])) : v;
}, z.record(z.string(), z.unknown()));

export const componentSchema = z.strictObject({
  name: nonEmpty.pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'letters, digits, ".", "_" and "-" only' })),
  type: nonEmpty,
  version: nonEmpty.default('v1'),
  metadata: metadata.default({}),
});

export const componentsSchema = list(componentSchema).default([]);
export type ParsedComponent = z.output<typeof componentSchema>;
