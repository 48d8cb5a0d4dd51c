/**
 * Applying and removing the capture rules with `iptables-restore --noflush` (and
 * `ip6tables-restore`): the rules of one family go in as one atomic commit, never rule by rule.
 *
 * Apply, per family: read `iptables-save -t nat`, then one restore that (re)declares the ISTIO_*
 * chains (flushing them), deletes the jumps into them that are already in PREROUTING/OUTPUT and
 * appends the whole rule set. Both families are checked with `--test` before either is touched;
 * if IPv6 still fails after IPv4 went in, IPv4 is removed again, so a pod is never half captured.
 *
 * Commands run through `exec`, so tests (and `ip netns exec`) can wrap them.
 */
import { spawn } from 'node:child_process';
import type { CaptureOptions, IpFamily } from './flags.js';
import { cleanupRules, generateRules, withJumpRemoval } from './rules.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `file args...` with `input` on stdin; resolve with its exit code (never reject on code ≠ 0). */
export type Exec = (file: string, args: readonly string[], input?: string) => Promise<ExecResult>;

export interface ApplyDeps {
  readonly exec?: Exec;
}

/** An iptables command failed (exit code 1); the message says which and why. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
}

export const spawnExec: Exec = (file, args, input) =>
  new Promise((resolve) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined); // the command may exit before reading stdin
    child.on('error', (e) => resolve({ code: 127, stdout: '', stderr: `${file}: ${e.message}` }));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') + (signal ? `killed by ${signal}` : '') }),
    );
    child.stdin.end(input ?? '');
  });

const TOOLS: Readonly<Record<IpFamily, { save: string; restore: string }>> = {
  4: { save: 'iptables-save', restore: 'iptables-restore' },
  6: { save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

function families(opts: CaptureOptions): IpFamily[] {
  return opts.ipv6 ? [4, 6] : [4];
}

function describe(file: string, r: ExecResult): string {
  const why = (r.stderr.trim() || r.stdout.trim() || 'no output').split('\n').slice(0, 6).join('\n  ');
  return `${file} exited with ${r.code}: ${why}`;
}

async function readNat(exec: Exec, family: IpFamily): Promise<string> {
  const tool = TOOLS[family].save;
  const r = await exec(tool, ['-t', 'nat']);
  if (r.code !== 0) throw new ApplyError(describe(tool, r));
  return r.stdout;
}

async function restore(exec: Exec, family: IpFamily, text: string, test = false): Promise<void> {
  const tool = TOOLS[family].restore;
  const r = await exec(tool, test ? ['--noflush', '--test'] : ['--noflush'], text);
  if (r.code !== 0) throw new ApplyError(`${describe(tool, r)}\n--- input ---\n${text}`);
}

export interface ApplyResult {
  /** What was handed to iptables-restore, per family (`v6` is '' without IPv6). */
  readonly applied: { readonly v4: string; readonly v6: string };
}

/** Program the capture rules (idempotent). Throws ApplyError. */
export async function applyCapture(opts: CaptureOptions, deps: ApplyDeps = {}): Promise<ApplyResult> {
  const exec = deps.exec ?? spawnExec;
  const generated = generateRules(opts);
  const texts = new Map<IpFamily, string>();
  for (const family of families(opts)) {
    const base = family === 4 ? generated.v4 : generated.v6;
    texts.set(family, withJumpRemoval(base, await readNat(exec, family)));
  }
  for (const [family, text] of texts) await restore(exec, family, text, true);
  const done: IpFamily[] = [];
  for (const [family, text] of texts) {
    try {
      await restore(exec, family, text);
      done.push(family);
    } catch (e) {
      // Do not leave IPv4 captured and IPv6 not (or the reverse): undo what went in.
      for (const f of done) await cleanupFamily(exec, f).catch(() => undefined);
      const undone = done.length > 0 ? ' (the IPv4 rules were removed again; use --no-ipv6 if this kernel has no IPv6 nat table)' : '';
      throw new ApplyError(`${(e as Error).message}${undone}`);
    }
  }
  return { applied: { v4: texts.get(4) ?? '', v6: texts.get(6) ?? '' } };
}

async function cleanupFamily(exec: Exec, family: IpFamily): Promise<string | null> {
  const text = cleanupRules(await readNat(exec, family));
  if (text !== null) await restore(exec, family, text);
  return text;
}

export interface CleanupResult {
  /** The restore text run per family; null where there was nothing to remove. */
  readonly removed: { readonly v4: string | null; readonly v6: string | null };
  /** Non-fatal problems (an unreadable ip6tables nat table means there is nothing to remove). */
  readonly warnings: readonly string[];
}

/** Remove the jumps into ISTIO_* chains and the chains themselves. Throws ApplyError. */
export async function cleanup(opts: Pick<CaptureOptions, 'ipv6'>, deps: ApplyDeps & { dryRun?: boolean } = {}): Promise<CleanupResult> {
  const exec = deps.exec ?? spawnExec;
  const removed: { v4: string | null; v6: string | null } = { v4: null, v6: null };
  const warnings: string[] = [];
  for (const family of opts.ipv6 ? ([4, 6] as const) : ([4] as const)) {
    let saved: string;
    try {
      saved = await readNat(exec, family);
    } catch (e) {
      if (family === 4) throw e;
      warnings.push(`IPv6 skipped: ${(e as Error).message}`);
      continue;
    }
    const text = cleanupRules(saved);
    if (text !== null && !deps.dryRun) await restore(exec, family, text);
    if (family === 4) removed.v4 = text;
    else removed.v6 = text;
  }
  return { removed, warnings };
}
