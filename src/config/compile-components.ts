/**
 * Checks `components:` against the component registry — known type (the error lists the known
 * ones), unique names, metadata valid for the type, secret references pointing at a declared
 * secret store — and turns them into ComponentSpecs.
 */
import type { ComponentRegistry } from '../components/registry.js';
import type { ComponentSpec, SecretRef } from './snapshot.js';
import { problemsFromZod, type ProblemList } from './locate.js';
import { secretKeyRefOf, type ParsedComponent } from './schema-components.js';

export function compileComponents(list: readonly ParsedComponent[], registry: ComponentRegistry, problems: ProblemList): ComponentSpec[] {
  const out: ComponentSpec[] = [];
  const seen = new Set<string>();
  const secretStores = list.filter((c) => registry.get(c.type, c.version)?.block === 'secretstores').map((c) => c.name);
  list.forEach((c, i) => {
    const at = ['components', i];
    if (seen.has(c.name)) problems.add([...at, 'name'], `duplicate component name '${c.name}'`);
    seen.add(c.name);
    const def = registry.get(c.type, c.version);
    if (!def) {
      const sameType = registry.get(c.type) !== undefined;
      problems.add(
        [...at, sameType ? 'version' : 'type'],
        sameType ? `component type ${c.type} has no version ${c.version}` : `unknown component type '${c.type}' (known: ${registry.types().join(', ')})`,
      );
      return;
    }
    const metadata: Record<string, unknown> = {};
    const secretRefs: Record<string, SecretRef> = {};
    for (const [k, v] of Object.entries(c.metadata)) {
      const ref = secretKeyRefOf(v);
      if (ref === undefined) {
        metadata[k] = v;
        continue;
      }
      const store = c.auth?.secretStore ?? (secretStores.length === 1 ? secretStores[0]! : undefined);
      if (store === undefined) {
        problems.add([...at, 'auth', 'secretStore'], `metadata '${k}' reads a secret: name the secret store in auth.secretStore (declared secret stores: ${secretStores.join(', ') || 'none'})`);
      } else if (!secretStores.includes(store)) {
        problems.add([...at, 'auth', 'secretStore'], `'${store}' is not a secret store declared in components (declared: ${secretStores.join(', ') || 'none'})`);
      } else if (def.block === 'secretstores') {
        problems.add([...at, 'metadata', k], 'a secret store cannot read its own metadata from a secret store');
      } else secretRefs[k] = { store, name: ref.name, key: ref.key ?? ref.name };
    }
    // Values from secrets are not known yet: check the rest, and leave out what the missing keys cause.
    const parsed = def.metadataSchema.safeParse(metadata);
    if (!parsed.success) {
      const issues = parsed.error.issues.filter((iss) => !(typeof iss.path[0] === 'string' && iss.path[0] in secretRefs));
      problems.addAll(problemsFromZod(issues, [...at, 'metadata']));
    }
    out.push({ name: c.name, type: c.type, version: c.version, metadata, secretRefs });
  });
  return out;
}
