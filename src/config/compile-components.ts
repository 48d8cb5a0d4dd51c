/**
 * Checks `components:` against the component registry — known type (the error lists the known
 * ones), unique names, metadata valid for the type — and turns them into ComponentSpecs.
 */
import type { ComponentRegistry } from '../components/registry.js';
import type { ComponentSpec } from './snapshot.js';
import { problemsFromZod, type ProblemList } from './locate.js';
import type { ParsedComponent } from './schema-components.js';

export function compileComponents(list: readonly ParsedComponent[], registry: ComponentRegistry, problems: ProblemList): ComponentSpec[] {
  const out: ComponentSpec[] = [];
  const seen = new Set<string>();
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
    const parsed = def.metadataSchema.safeParse(c.metadata);
    if (!parsed.success) problems.addAll(problemsFromZod(parsed.error.issues, [...at, 'metadata']));
    out.push({ name: c.name, type: c.type, version: c.version, metadata: c.metadata });
  });
  return out;
}
