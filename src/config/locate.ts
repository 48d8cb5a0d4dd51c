/**
 * Turning problems into `file:line:col: key.path: reason` lines. A problem carries the path of
 * the offending value in the user's YAML (as zod reports it); the locator walks the parsed YAML
 * document along that path and falls back to the nearest existing parent.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';

export type ConfigPath = readonly PropertyKey[];

export interface ConfigProblem {
  readonly path: ConfigPath;
  readonly message: string;
  /** Point at the key of the last path element rather than its value (unknown keys). */
  readonly atKey?: boolean;
  /** Exact source offset, when known (env substitution). */
  readonly offset?: number;
}

/** Maps a problem to "file:line:col". */
export type Locator = (p: ConfigProblem) => { line: number; col: number } | undefined;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `clusters[0].connectTimeout`, `typedPerFilterConfig["envoy.filters.http.fault"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (IDENT.test(String(k))) out += out ? `.${String(k)}` : String(k);
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** A locator over a parsed YAML document. */
export function yamlLocator(doc: Document | undefined, lc: LineCounter): Locator {
  return (p) => {
    if (p.offset !== undefined) return lc.linePos(p.offset);
    if (!doc) return undefined;
    let node: unknown = doc.contents;
    let at: number | undefined = rangeStart(node);
    for (let i = 0; i < p.path.length; i++) {
      if (isAlias(node)) node = node.resolve(doc);
      const key = p.path[i];
      let next: unknown;
      let keyStart: number | undefined;
      if (isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && scalarKey(it.key) === String(key));
        if (pair) {
          keyStart = rangeStart(pair.key);
          next = pair.value ?? undefined;
        }
      } else if (isSeq(node) && typeof key === 'number') {
        next = node.items[key];
      }
      if (keyStart === undefined && next === undefined) break;
      const last = i === p.path.length - 1;
      at = (last && p.atKey ? keyStart : undefined) ?? rangeStart(next) ?? keyStart ?? at;
      if (next === undefined) break;
      node = next;
    }
    return at === undefined ? { line: 1, col: 1 } : lc.linePos(at);
  };
}

function scalarKey(k: unknown): string | undefined {
  if (isScalar(k)) return String(k.value);
  return typeof k === 'string' ? k : undefined;
}

function rangeStart(n: unknown): number | undefined {
  return n && typeof n === 'object' && 'range' in n ? ((n as Node).range?.[0] ?? undefined) : undefined;
}

/** Zod issues → problems, with messages reworded for config files. */
export function problemsFromZod(issues: readonly z.core.$ZodIssue[], prefix: ConfigPath = []): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const i of issues) {
    const path = [...prefix, ...i.path];
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) out.push({ path: [...path, k], message: `unknown key '${k}'`, atKey: true });
      continue;
    }
    out.push({ path, message: reword(i.message) });
  }
  return out;
}

function reword(m: string): string {
  if (/(received undefined|got nothing)$/.test(m)) return 'is required';
  return m
    .replace(/^(Invalid input|Invalid option|Too small|Too big): /, '')
    .replace('expected object', 'expected a mapping')
    .replace('expected array', 'expected a list')
    .replace(/received array$/, 'got a list')
    .replace(/received object$/, 'got a mapping')
    .replace(/, received /, ', got ');
}

/** Collects problems; `throwIfAny` raises one ConfigError listing all of them in file order. */
export class ProblemList {
  readonly items: ConfigProblem[] = [];

  add(path: ConfigPath, message: string, extra: Partial<ConfigProblem> = {}): void {
    this.items.push({ path, message, ...extra });
  }

  addAll(ps: readonly ConfigProblem[]): void {
    this.items.push(...ps);
  }

  get size(): number {
    return this.items.length;
  }

  throwIfAny(file: string, locate: Locator | undefined): void {
    if (this.items.length === 0) return;
    throw problemsToError(file, this.items, locate);
  }
}

/** One ConfigError whose details are `file:line:col: path: reason`, sorted by position. */
export function problemsToError(file: string, problems: readonly ConfigProblem[], locate: Locator | undefined): ConfigError {
  const rows = problems.map((p, n) => {
    const pos = locate?.(p);
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const path = formatPath(p.path);
    return { n, line: pos?.line ?? 0, col: pos?.col ?? 0, text: `${where}: ${path ? `${path}: ` : ''}${p.message}` };
  });
  rows.sort((a, b) => a.line - b.line || a.col - b.col || a.n - b.n);
  const details = [...new Set(rows.map((r) => r.text))];
  const count = details.length === 1 ? '1 problem' : `${details.length} problems`;
  return new ConfigError(`invalid configuration ${file} (${count})`, details);
}
