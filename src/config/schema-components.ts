/**
 * `components:` — the runtime API backends (Dapr components): name, type (`state.redis`),
 * version, metadata and `auth.secretStore`. Metadata is a mapping, or Dapr's list of
 * `{name, value}` / `{name, secretKeyRef: {name, key}}`; a mapping value may also be
 * `{secretKeyRef: {...}}`. It is checked by the component's own schema in compile-components.ts,
 * where the registry is known; secret references are resolved when the component starts.
 */
import { z } from 'zod';
import { list, nonEmpty } from './schema-common.js';

export const secretKeyRefSchema = z.strictObject({ name: nonEmpty, key: nonEmpty.optional() });
export type ParsedSecretKeyRef = z.output<typeof secretKeyRefSchema>;

const daprMetadataEntry = z
  .strictObject({ name: nonEmpty, value: z.unknown().optional(), secretKeyRef: secretKeyRefSchema.optional() })
  .refine((e) => (e.value === undefined) !== (e.secretKeyRef === undefined), { error: "a metadata entry needs either 'value' or 'secretKeyRef'" });
const daprMetadataList = z.array(daprMetadataEntry);

const metadata = z.preprocess((v) => {
  if (!Array.isArray(v)) return v;
  const asList = daprMetadataList.safeParse(v);
  // An invalid list is left as it is, so the record schema below reports where it is wrong.
  if (!asList.success) return v;
  return Object.fromEntries(asList.data.map((e) => [e.name, e.secretKeyRef !== undefined ? { secretKeyRef: e.secretKeyRef } : e.value]));
}, z.record(z.string(), z.unknown()));

export const componentSchema = z.strictObject({
  name: nonEmpty.pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'letters, digits, ".", "_" and "-" only' })),
  type: nonEmpty,
  version: nonEmpty.default('v1'),
  metadata: metadata.default({}),
  /** Dapr: the secret store the `secretKeyRef`s of this component read from. */
  auth: z.strictObject({ secretStore: nonEmpty }).optional(),
});

export const componentsSchema = list(componentSchema).default([]);
export type ParsedComponent = z.output<typeof componentSchema>;

/** `{secretKeyRef: {name, key?}}` as a metadata value, or undefined. */
export function secretKeyRefOf(v: unknown): ParsedSecretKeyRef | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1 || keys[0] !== 'secretKeyRef') return undefined;
  const r = secretKeyRefSchema.safeParse((v as { secretKeyRef: unknown }).secretKeyRef);
  return r.success ? r.data : undefined;
}
