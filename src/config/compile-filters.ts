/**
 * HTTP filter chains and per-route filter overrides, checked against the FilterRegistry: names
 * must be registered, each `config` must satisfy the factory's parseConfig, each per-route entry
 * its parsePerRoute, and the chain must end with the router. Problems point at the YAML.
 */
import { ROUTER_FILTER_NAME, type HttpFilterFactory } from '../filters/types.js';
import type { FilterRegistry } from '../filters/registry.js';
import type { FilterConfigSpec } from './snapshot.js';
import { problemsFromZod, type ConfigPath, type ProblemList } from './locate.js';
import type { ParsedHttpFilter } from './schema.js';

/** The chain a listener gets when it lists no `httpFilters` (unregistered ones are left out, except the router). */
export const DEFAULT_HTTP_FILTERS = ['istio.stats', 'capa.filters.http.access_log', ROUTER_FILTER_NAME] as const;

function knownNames(reg: FilterRegistry): string {
  const names = reg.names();
  return names.length ? names.join(', ') : 'none registered';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Split Envoy's `@type` off a typed config. */
function splitType(raw: unknown): { typeUrl: unknown; body: unknown } {
  if (!isPlainObject(raw) || !('@type' in raw)) return { typeUrl: undefined, body: raw };
  const { '@type': typeUrl, ...body } = raw;
  return { typeUrl, body };
}

/** Run a factory's parser; its ZodError issues (or plain error) become problems under `at`. */
function tryParse(parse: (raw: unknown) => unknown, raw: unknown, at: ConfigPath, problems: ProblemList): boolean {
  try {
    parse(raw);
    return true;
  } catch (err) {
    const issues = (err as { issues?: unknown }).issues;
    if (Array.isArray(issues)) problems.addAll(problemsFromZod(issues, at));
    else problems.add(at, err instanceof Error ? err.message : String(err));
    return false;
  }
}

/**
 * Compile one listener's chain. `base` is the YAML path of the `httpFilters` list (or of the
 * listener when the default chain is used).
 */
export function compileHttpFilters(
  list: readonly ParsedHttpFilter[] | undefined,
  base: ConfigPath,
  reg: FilterRegistry,
  problems: ProblemList,
): FilterConfigSpec[] {
  if (list === undefined) {
    if (!reg.get(ROUTER_FILTER_NAME)) problems.add(base, `the default http filter ${ROUTER_FILTER_NAME} is not registered (known: ${knownNames(reg)})`);
    return DEFAULT_HTTP_FILTERS.filter((n) => reg.get(n)).map((name) => ({ name, config: {}, disabled: false }));
  }
  const out: FilterConfigSpec[] = [];
  const seen = new Set<string>();
  list.forEach((f, j) => {
    const at = [...base, j];
    const { typeUrl, body } = splitType(f.config);
    let factory: HttpFilterFactory | undefined = reg.get(f.name) ?? (typeof typeUrl === 'string' ? reg.getByType(typeUrl) : undefined);
    if (!factory) {
      problems.add([...at, 'name'], `unknown http filter '${f.name}' (known: ${knownNames(reg)})`);
      return;
    }
    if (typeUrl !== undefined && typeUrl !== factory.typeUrl) {
      problems.add([...at, f.configKey, '@type'], `type ${String(typeUrl)} does not belong to filter ${factory.name} (expected ${factory.typeUrl})`);
      factory = undefined;
    }
    if (!factory) return;
    if (seen.has(factory.name)) problems.add([...at, 'name'], `filter ${factory.name} appears more than once in the chain`);
    seen.add(factory.name);
    const config = body ?? {};
    const ok = tryParse((r) => factory.parseConfig(r), config, [...at, f.configKey], problems);
    const isRouter = factory.name === ROUTER_FILTER_NAME;
    if (isRouter && j !== list.length - 1) problems.add([...at, 'name'], `${ROUTER_FILTER_NAME} must be the last http filter`);
    if (isRouter && f.disabled) problems.add([...at, 'disabled'], `${ROUTER_FILTER_NAME} cannot be disabled`);
    if (ok) out.push({ name: factory.name, config, disabled: f.disabled });
  });
  const last = list[list.length - 1];
  if (!last) problems.add(base, `the http filter chain must end with ${ROUTER_FILTER_NAME}, got an empty list`);
  else if ((reg.get(last.name)?.name ?? last.name) !== ROUTER_FILTER_NAME && reg.get(last.name)) {
    problems.add([...base, list.length - 1, 'name'], `the last http filter must be ${ROUTER_FILTER_NAME}, got '${last.name}'`);
  }
  return out;
}

/**
 * Check a `typedPerFilterConfig` map (of a virtual host or a route) and key it by canonical
 * filter names. `base` is the path of the map itself.
 */
export function compilePerFilterConfig(
  map: Readonly<Record<string, unknown>>,
  base: ConfigPath,
  reg: FilterRegistry,
  problems: ProblemList,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(map)) {
    const at = [...base, key];
    const factory = reg.get(key);
    if (!factory) {
      problems.add(at, `unknown http filter '${key}' (known: ${knownNames(reg)})`, { atKey: true });
      continue;
    }
    // Per-route configs often have their own type (…PerRouteConfig), so `@type` is only dropped.
    const value = splitType(raw).body ?? {};
    const disabledOnly = isPlainObject(value) && Object.keys(value).length === 1 && value.disabled === true;
    if (!disabledOnly) {
      const parse = factory.parsePerRoute;
      if (!parse) {
        problems.add(at, `filter ${factory.name} takes no per-route config; only {disabled: true} is accepted`);
        continue;
      }
      if (!tryParse((r) => parse.call(factory, r), value, at, problems)) continue;
    }
    out[factory.name] = value;
  }
  return out;
}
