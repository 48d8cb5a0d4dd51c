/**
 * Building blocks shared by the YAML schema files: numbers and booleans that also accept their
 * string spelling (after `${ENV}` substitution every value is a string), ports, regexes,
 * "exactly one of" checks and a by-input-type dispatcher that keeps zod's issue paths exact
 * (a plain z.union would report every branch's failure at once).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { describe } from './units.js';
import type { HeaderValueOption } from './snapshot.js';

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

function numberish(v: unknown): unknown {
  return typeof v === 'string' && NUMERIC.test(v.trim()) ? Number(v.trim()) : v;
}

/** An integer in [min, max]; "8080" (a substituted string) is accepted too. */
export function int(min: number, max: number = Number.MAX_SAFE_INTEGER, what = 'an integer'): z.ZodType<number, unknown> {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}-${max}`;
  const message = `expected ${what} ${range}`;
  return z.preprocess(
    numberish,
    z.number({ error: (iss) => `${message}, got ${describe(iss.input)}` }).int({ error: message }).min(min, { error: message }).max(max, { error: message }),
  );
}

/** A TCP port 1-65535. */
export const port = int(1, 65535, 'a port number');
/** A TCP port, or 0 (ephemeral for listeners, off for sidecar servers). */
export const portOrZero = int(0, 65535, 'a port number');

/** A boolean; "true" / "false" strings are accepted too. */
export const bool = z.preprocess(
  (v) => (v === 'true' ? true : v === 'false' ? false : v),
  z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` }),
);

/** A string scalar; numbers are taken as their decimal spelling (YAML reads `v: 1` as a number). */
export const text = z.preprocess(
  (v) => (typeof v === 'number' || typeof v === 'boolean' ? String(v) : v),
  z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` }),
);

export const nonEmpty = text.pipe(z.string().min(1, { error: 'must not be empty' }));

/** A regular expression source that compiles (JavaScript syntax, which covers RE2's). */
export const regex = text.superRefine((src, ctx) => {
  try {
    new RegExp(src);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid regex: ${(e as Error).message}` });
  }
});

/** An IPv4 or IPv6 address literal. */
export const ipAddress = nonEmpty.superRefine((s, ctx) => {
  if (!isIP(s)) ctx.addIssue({ code: 'custom', message: `expected an IP address, got ${describe(s)}` });
});

/** A list (an empty YAML value, null, counts as an empty list). */
export function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (v === null ? [] : v), z.array(item, { error: (iss) => `expected a list, got ${describe(iss.input)}` }));
}

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array';

/**
 * Choose the schema by the input's YAML type (scalar string, mapping, list...). Issues of the
 * chosen branch keep their own paths, unlike z.union.
 */
export function byType<O>(what: string, branches: Partial<Record<Kind, z.ZodType<O, any>>>): z.ZodType<O, unknown> {
  return z.unknown().transform((v, ctx): O => {
    const kind = v === null || v === undefined ? undefined : Array.isArray(v) ? 'array' : (typeof v as Kind);
    const schema = kind ? branches[kind] : undefined;
    if (!schema) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${describe(v)}` });
      return z.NEVER;
    }
    const r = schema.safeParse(v);
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ ...(issue as any) });
      return z.NEVER;
    }
    return r.data;
  });
}

/**
 * Issue unless exactly one of `keys` is set on `v`; returns the one that is set.
 * `at` is the path of `v` relative to the value being checked.
 */
export function exactlyOne(v: Record<string, unknown>, keys: readonly string[], ctx: z.RefinementCtx, at: PropertyKey[] = []): string | undefined {
  const set = keys.filter((k) => v[k] !== undefined);
  if (set.length === 1) return set[0];
  const names = keys.map((k) => `'${k}'`).join(', ');
  ctx.addIssue({
    code: 'custom',
    message: set.length === 0 ? `expected one of ${names}` : `only one of ${names} may be set, got ${set.map((k) => `'${k}'`).join(' and ')}`,
    path: set.length > 1 ? [...at, set[1]!] : at,
  });
  return undefined;
}

/** Issue if both `a` and `b` are set. */
export function notBoth(v: Record<string, unknown>, a: string, b: string, ctx: z.RefinementCtx): boolean {
  if (v[a] === undefined || v[b] === undefined) return true;
  ctx.addIssue({ code: 'custom', message: `'${a}' and '${b}' cannot both be set`, path: [b] });
  return false;
}

// === Header manipulation (Envoy HeaderValueOption) ===

const APPEND_ACTIONS = {
  APPEND_IF_EXISTS_OR_ADD: 'append',
  OVERWRITE_IF_EXISTS_OR_ADD: 'overwrite',
  ADD_IF_ABSENT: 'addIfAbsent',
  append: 'append',
  overwrite: 'overwrite',
  addIfAbsent: 'addIfAbsent',
} as const;

const headerName = nonEmpty.transform((s) => s.toLowerCase());

/** `{name, value, action?}` or Envoy's `{header: {key, value}, appendAction?, append?}`. */
export const headerValueOption: z.ZodType<HeaderValueOption, unknown> = z
  .strictObject({
    name: headerName.optional(),
    value: text.optional(),
    action: z.enum(['append', 'overwrite', 'addIfAbsent']).optional(),
    header: z.strictObject({ key: headerName, value: text.prefault('') }).optional(),
    appendAction: z.enum(Object.keys(APPEND_ACTIONS) as [keyof typeof APPEND_ACTIONS]).optional(),
    append: bool.optional(),
    keepEmptyValue: bool.optional(),
  })
  .transform((h, ctx): HeaderValueOption => {
    if (h.header && h.name !== undefined) {
      ctx.addIssue({ code: 'custom', message: "use either 'name'/'value' or Envoy's 'header: {key, value}', not both", path: ['header'] });
      return z.NEVER;
    }
    const name = h.header?.key ?? h.name;
    if (name === undefined) {
      ctx.addIssue({ code: 'custom', message: "expected 'name' (or Envoy's 'header: {key, value}')" });
      return z.NEVER;
    }
    const value = h.header?.value ?? h.value ?? '';
    const action = h.action ?? (h.appendAction ? APPEND_ACTIONS[h.appendAction] : h.append === false ? 'overwrite' : 'append');
    return { name, value, action };
  });

export const headersToAdd = list(headerValueOption).default([]);
export const headersToRemove = list(headerName).default([]);

/** Per-filter overrides keyed by filter name; values are checked by the filter factories at compile time. */
export const typedPerFilterConfig = z
  .record(z.string(), z.unknown(), { error: (iss) => `expected a mapping of filter name to config, got ${describe(iss.input)}` })
  .default({});
