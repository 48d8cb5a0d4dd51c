/**
 * FlowControlPolicy documents: inline in the main config (`flowControl.policies`) and in YAML
 * files of the policy directories (`flowControl.policyDirs`, CLI `--policy-dir`), several
 * documents per file allowed (`---`).
 *
 * Unlike the main config, documents stand alone: an invalid one is rejected (named, with
 * `file:line:col: field: reason`) and the others stay in force. When a document that was valid
 * becomes invalid, its previous good version stays in force (marked `stale`) until it is fixed or
 * removed — an invalid edit never changes what is enforced. A document whose name cannot be read
 * keeps every previous policy of its file that no valid document of the file defines again.
 *
 * Order: inline documents, then each directory in turn (config dirs, then CLI dirs), files by
 * name (`*.yaml`, `*.yml`; names starting with `.` skipped), documents in file order. The first
 * policy that matches a request applies. A repeated name is rejected.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { policyDocumentSchema } from '../filters/flow-control/config.js';
import { formatPath, problemsFromZod, problemsToError, yamlLocator, type ConfigPath, type Locator } from './locate.js';
import type { FlowControlSettings, FlowPolicySpec, RejectedPolicy } from './snapshot.js';

export interface PolicySource {
  readonly file: string;
  readonly text: string;
}

const POLICY_FILE = /^[^.].*\.ya?ml$/;

/** Files of the directories (sorted by name), and the directories that could not be read. */
export function readPolicySources(dirs: readonly string[]): { sources: PolicySource[]; unreadable: RejectedPolicy[] } {
  const sources: PolicySource[] = [];
  const unreadable: RejectedPolicy[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => POLICY_FILE.test(n)).sort();
    } catch (e) {
      unreadable.push({ source: dir, name: '*', errors: [`${dir}: cannot read policy directory: ${(e as Error).message}`], keptPrevious: false });
      continue;
    }
    for (const n of names) {
      const file = join(dir, n);
      try {
        if (!statSync(file).isFile()) continue;
        sources.push({ file, text: readFileSync(file, 'utf8') });
      } catch {
        // removed between readdir and read: the directory watch brings another event
      }
    }
  }
  return { sources, unreadable };
}

/** Directories of the config (relative to the config file's directory) and of the CLI (relative to cwd). */
export function policyDirsOf(configDirs: readonly string[], configFileDir: string, cliDirs: readonly string[] = []): string[] {
  const all = [...configDirs.map((d) => resolve(configFileDir, d)), ...cliDirs.map((d) => resolve(d))];
  return [...new Set(all)];
}

/** One document to check: its JS value, where it came from, how to locate its problems. */
interface Candidate {
  readonly source: string;
  /** Key for "same document as before": the file. */
  readonly file: string;
  readonly raw: unknown;
  readonly base: ConfigPath;
  readonly locate: Locator | undefined;
  readonly index: number;
  /** Parse errors already found (YAML syntax). */
  readonly errors?: string[];
}

export interface CompilePoliciesInput {
  readonly mainFile: string;
  /** `flowControl.policies` of the main config, its locator (positions in the main file). */
  readonly inline: readonly unknown[];
  readonly mainLocate?: Locator;
  readonly dirs: readonly string[];
  readonly sources: readonly PolicySource[];
  readonly unreadable?: readonly RejectedPolicy[];
  /** The settings in force, for keeping the last good version of a document that became invalid. */
  readonly previous?: FlowControlSettings;
}

function fileCandidates(src: PolicySource): Candidate[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(src.text, { lineCounter: lc, prettyErrors: false }) as Document[] | { errors: unknown[] };
  if (!Array.isArray(docs)) return [{ source: src.file, file: src.file, raw: undefined, base: [], locate: undefined, index: 0, errors: [`${src.file}: not a YAML stream`] }];
  const out: Candidate[] = [];
  docs.forEach((doc, index) => {
    if (doc.errors.length) {
      const errors = doc.errors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return `${src.file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
      });
      out.push({ source: src.file, file: src.file, raw: undefined, base: [], locate: undefined, index, errors });
      return;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      out.push({ source: src.file, file: src.file, raw: undefined, base: [], locate: undefined, index, errors: [`${src.file}: ${(e as Error).message}`] });
      return;
    }
    if (raw === null || raw === undefined) return; // empty document (e.g. a trailing ---)
    out.push({ source: src.file, file: src.file, raw, base: [], locate: yamlLocator(doc, lc), index });
  });
  return out;
}

function nameOf(raw: unknown): string | undefined {
  const md = (raw as { metadata?: { name?: unknown } } | undefined)?.metadata;
  return typeof md?.name === 'string' && md.name !== '' ? md.name : undefined;
}

const hashOf = (spec: unknown): string => createHash('sha1').update(JSON.stringify(spec)).digest('hex').slice(0, 12);

/** Check every document; valid ones become policies, invalid ones rejections (see the header). */
export function compilePolicies(input: CompilePoliciesInput): FlowControlSettings {
  const candidates: Candidate[] = input.inline.map((raw, i) => ({
    source: `${input.mainFile}#${formatPath(['flowControl', 'policies', i])}`,
    file: input.mainFile,
    raw,
    base: ['flowControl', 'policies', i],
    locate: input.mainLocate,
    index: i,
  }));
  for (const src of input.sources) candidates.push(...fileCandidates(src));

  const policies: FlowPolicySpec[] = [];
  const rejected: RejectedPolicy[] = [...(input.unreadable ?? [])];
  const byName = new Map<string, FlowPolicySpec>();
  const previous = input.previous?.policies ?? [];
  /** Files with an invalid document whose name is unknown: keep their other previous policies. */
  const blindFiles = new Set<string>();

  const keepPrevious = (file: string, name: string): boolean => {
    const prev = previous.find((p) => p.name === name && (p.source === file || p.source.startsWith(`${file}#`)));
    if (!prev || byName.has(name)) return false;
    const kept = { ...prev, stale: true };
    policies.push(kept);
    byName.set(name, kept);
    return true;
  };

  for (const c of candidates) {
    const name = nameOf(c.raw);
    let errors: readonly string[] | undefined = c.errors;
    if (errors === undefined) {
      const r = policyDocumentSchema.safeParse(c.raw);
      if (!r.success) errors = problemsToError(c.file, problemsFromZod(r.error.issues, c.base), c.locate).details;
      else if (byName.has(r.data.metadata.name)) {
        const first = byName.get(r.data.metadata.name)!;
        errors = problemsToError(c.file, [{ path: [...c.base, 'metadata', 'name'], message: `policy '${r.data.metadata.name}' is already defined in ${first.source}` }], c.locate).details;
        rejected.push({ source: c.source, name: r.data.metadata.name, errors, keptPrevious: false });
        continue;
      } else {
        const spec = (c.raw as { spec: unknown }).spec;
        const p: FlowPolicySpec = { name: r.data.metadata.name, source: c.source, spec, hash: hashOf(spec), stale: false };
        policies.push(p);
        byName.set(p.name, p);
        continue;
      }
    }
    if (name === undefined) blindFiles.add(c.file);
    const keptPrevious = name !== undefined && keepPrevious(c.file, name);
    rejected.push({ source: c.source, name: name ?? `#${c.index}`, errors: [...(errors ?? [])], keptPrevious });
  }
  for (const file of blindFiles) {
    for (const p of previous) if (p.source === file || p.source.startsWith(`${file}#`)) keepPrevious(file, p.name);
  }
  return { policyDirs: [...input.dirs], policies, rejected };
}

/** The settings when there are no policies at all. */
export const NO_FLOW_CONTROL: FlowControlSettings = { policyDirs: [], policies: [], rejected: [] };
