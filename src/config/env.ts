/**
 * `${NAME}` and `${NAME:-default}` substitution inside string scalars of a parsed YAML document.
 *
 * It runs on the YAML nodes (not on the text), so every node keeps its source range and later
 * error messages still point at the right line and column. `$${` writes a literal `${`.
 * The result of a substitution is always a string; schema fields that hold numbers or booleans
 * accept their string spelling, so `port: ${PORT}` works.
 */
import { visit, type Document, type LineCounter } from 'yaml';

export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvProblem {
  /** Offset in the source text (for line:col). */
  readonly offset: number;
  readonly message: string;
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Substitute one string. Problems are reported with their index in `text`.
 * Semantics follow the shell: `${X:-d}` uses `d` when X is unset or empty.
 */
export function substituteString(
  text: string,
  env: Env,
): { value: string; problems: { index: number; message: string }[] } {
  const problems: { index: number; message: string }[] = [];
  if (!text.includes('${')) return { value: text, problems };
  const value = text.replace(REF, (whole: string, body: string | undefined, index: number) => {
    if (whole === '$${') return '${';
    const expr = body ?? '';
    const sep = expr.indexOf(':-');
    const name = sep >= 0 ? expr.slice(0, sep) : expr;
    if (!NAME.test(name)) {
      problems.push({ index, message: `invalid variable reference '${whole}' (use \${NAME} or \${NAME:-default}; write $\${ for a literal \${)` });
      return whole;
    }
    const v = env[name];
    if (sep >= 0) return v === undefined || v === '' ? expr.slice(sep + 2) : v;
    if (v === undefined) {
      problems.push({ index, message: `environment variable ${name} is not set (use \${${name}:-default} to give a default)` });
      return whole;
    }
    return v;
  });
  return { value, problems };
}

/**
 * Substitute in every string scalar value of `doc` in place. Mapping keys are left alone.
 * Returns the problems with source offsets (the scalar's start, moved to the `${` for plain
 * single-line scalars where the offset is exact).
 */
export function substituteEnv(doc: Document, env: Env): EnvProblem[] {
  const problems: EnvProblem[] = [];
  visit(doc, {
    Scalar(key, node) {
      // Mapping keys are names, never templates.
      if (key !== 'key') substituteScalar(node, env, problems);
      return undefined;
    },
  });
  return problems;
}

function substituteScalar(node: { value: unknown; type?: string | null; range?: [number, number, number] | null }, env: Env, out: EnvProblem[]): void {
  if (typeof node.value !== 'string') return;
  const { value, problems } = substituteString(node.value, env);
  if (value !== node.value) node.value = value;
  const start = node.range?.[0] ?? 0;
  const exact = node.type === 'PLAIN';
  for (const p of problems) out.push({ offset: exact ? start + p.index : start, message: p.message });
}

/** Line and column (1-based) of an offset. */
export function positionOf(lc: LineCounter, offset: number): { line: number; col: number } {
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}
