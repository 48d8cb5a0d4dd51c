/** Builds a component through the real registry from the `components:` entry a user writes. */
import { parse } from 'yaml';
import { pino, type Logger } from 'pino';
import { builtinComponentRegistry } from '../../../src/components/index.js';
import { componentSchema } from '../../../src/config/schema-components.js';

export function buildComponent<T>(yaml: string, logger: Logger = pino({ level: 'silent' })): T {
  const spec = componentSchema.parse(parse(yaml));
  const def = builtinComponentRegistry().get(spec.type, spec.version);
  if (!def) throw new Error(`unknown component type ${spec.type}`);
  return def.create(def.metadataSchema.parse(spec.metadata), { name: spec.name, logger }) as T;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
