/**
 * Loading a YAML config: parse (keeping source positions), substitute `${ENV}`, validate with
 * the zod schema, compile. Every problem of a stage is reported at once as one ConfigError whose
 * details read `sidecar.yaml:12:7: clusters[0].connectTimeout: expected a duration ...`.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import type { FilterRegistry } from '../filters/registry.js';
import type { FlowControlSettings, Snapshot } from './snapshot.js';
import { substituteEnv, type Env } from './env.js';
import { problemsFromZod, problemsToError, yamlLocator } from './locate.js';
import { configSchema, type ParsedConfig } from './schema.js';
import { compileConfig } from './compile.js';
import { compilePolicies, policyDirsOf, readPolicySources, type PolicySource } from './policies.js';

export interface LoadOptions {
  readonly filters: FilterRegistry;
  /** Snapshot.version; default "1". */
  readonly version?: string;
  /** For `${NAME}` substitution and node defaults; default process.env. */
  readonly env?: Env;
  /** More policy directories (CLI `--policy-dir`), relative to the working directory. */
  readonly policyDirs?: readonly string[];
  /** Flow control in force: an invalid policy document keeps its last good version from here. */
  readonly previousFlowControl?: FlowControlSettings;
}

export interface Loaded {
  readonly snapshot: Snapshot;
  readonly config: ParsedConfig;
  /** The policy files read (the watcher compares them to see whether anything changed). */
  readonly policySources: readonly PolicySource[];
}

/** Parse, validate and compile YAML text. `file` names the source in messages. Throws ConfigError. */
export function loadConfigText(text: string, file: string, opts: LoadOptions): Loaded {
  const env = opts.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, keepSourceTokens: false });
  if (doc.errors.length) {
    const details = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return `${file}:${pos.line}:${pos.col}: ${firstLine(e.message)}`;
    });
    throw new ConfigError(`invalid YAML in ${file}`, details);
  }
  const locate = yamlLocator(doc, lineCounter);

  const envProblems = substituteEnv(doc, env);
  if (envProblems.length) {
    throw problemsToError(file, envProblems.map((p) => ({ path: [], message: p.message, offset: p.offset })), locate);
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(`invalid YAML in ${file}`, [`${file}: ${(err as Error).message}`]);
  }
  // An empty file (or one holding only comments) is a valid config: all defaults.
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw problemsToError(file, problemsFromZod(parsed.error.issues), locate);

  const dirs = policyDirsOf(parsed.data.flowControl.policyDirs, dirname(file), opts.policyDirs);
  const { sources, unreadable } = readPolicySources(dirs);
  const flowControl = compilePolicies({
    mainFile: file,
    inline: parsed.data.flowControl.policies,
    mainLocate: locate,
    dirs,
    sources,
    unreadable,
    previous: opts.previousFlowControl,
  });
  const snapshot = compileConfig(parsed.data, { filters: opts.filters, version: opts.version ?? '1', env, file, locate, flowControl });
  return { snapshot, config: parsed.data, policySources: sources };
}

/** Read and load a file; a read failure is a ConfigError too. */
export function loadConfigFile(path: string, opts: LoadOptions): Loaded {
  return loadConfigText(readConfigText(path), path, opts);
}

/** The file's text, or a ConfigError saying why it cannot be read. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).replace(/ at line \d+, column \d+:?$/, '');
}
