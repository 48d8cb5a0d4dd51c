import { z } from 'zod';
import { FilterRegistry } from '../../../src/filters/registry.js';
import type { HttpFilterFactory } from '../../../src/filters/types.js';
import { loadConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

function fake(name: string, config: z.ZodType, perRoute?: z.ZodType): HttpFilterFactory {
  return {
    name,
    typeUrl: `type.googleapis.com/test.${name}`,
    parseConfig: (raw) => config.parse(raw),
    ...(perRoute ? { parsePerRoute: (raw: unknown) => perRoute.parse(raw) } : {}),
    build: () => ({ forRoute: () => null }),
  };
}

const fault = z.strictObject({
  abort: z.strictObject({ httpStatus: z.number().int().min(200).max(599), percentage: z.number().optional() }).optional(),
  delay: z.strictObject({ fixedDelay: z.string() }).optional(),
});

/** A registry with tiny fakes: router, istio.stats, access log, and a fault filter with per-route config. */
export function testRegistry(): FilterRegistry {
  return new FilterRegistry().registerAll([
    { ...fake('envoy.filters.http.router', z.strictObject({ suppressEnvoyHeaders: z.boolean().optional() })), typeUrl: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', aliases: ['envoy.router'] },
    fake('istio.stats', z.strictObject({})),
    fake('capa.filters.http.access_log', z.strictObject({ format: z.string().optional() })),
    { ...fake('envoy.filters.http.fault', fault, fault), typeUrl: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' },
  ]);
}

export const registry = testRegistry();

/** Load YAML text with the test registry and an empty environment (plus `env`). */
export function load(text: string, env: Record<string, string> = {}) {
  return loadConfigText(text, 'sidecar.yaml', { filters: registry, env });
}

/** The ConfigError details of loading `text`; fails the test when it loads. */
export function errorsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    load(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.details];
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

/** Strip a common indentation so YAML in tests can be indented with the code. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indent = Math.min(...text.split('\n').filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return text
    .split('\n')
    .map((l) => l.slice(indent))
    .join('\n');
}

/**
 * "sidecar.yaml:LINE:COL" of the `nth` occurrence of `needle` in `text` (1-based, as in
 * messages), so tests state *what* an error points at rather than counting columns.
 */
export function at(text: string, needle: string, nth = 0): string {
  let i = -1;
  for (let k = 0; k <= nth; k++) {
    i = text.indexOf(needle, i + 1);
    if (i < 0) throw new Error(`${JSON.stringify(needle)} (#${nth}) not in the text`);
  }
  const before = text.slice(0, i).split('\n');
  return `sidecar.yaml:${before.length}:${before[before.length - 1]!.length + 1}`;
}

export const CLUSTER = 'clusters: [{ name: b, endpoints: ["127.0.0.1:80"] }]\n';

/** A listener with one inline route whose `route:` body is `action`. */
export function withRoute(route: string): string {
  return (
    yaml`
    listeners:
      - name: l
        port: 8000
        routes:
          virtualHosts:
            - name: v
              routes:
                - ${route}
    ` + CLUSTER
  );
}
