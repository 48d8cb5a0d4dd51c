/**
 * The generated rules on the real kernel, inside a network namespace this test creates (the host's
 * own iptables are never touched): `iptables-restore --test` accepts the dry-run output, applying
 * programs exactly the generated rules, applying again changes nothing, changing flags replaces
 * the rules in place, cleanup leaves no ISTIO_ chain. Also runs scripts/iptables/*.sh (the thin
 * wrappers around dist/main.js). Needs root; fails, never skips, without namespaces.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnExec, type Exec } from '../../../../src/interception/iptables/apply.js';
import { runIptablesCli, V6_HEADER } from '../../../../src/interception/iptables/cli.js';
import { parseIptablesFlags } from '../../../../src/interception/iptables/flags.js';
import { ruleLines } from '../../../../src/interception/iptables/rules.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const NS = `capa-ipt-${randomBytes(4).toString('hex')}`;
let nsCreated = false;

/** Every command of this suite runs inside the namespace. */
const inNs: Exec = (file, args, input) => spawnExec('ip', ['netns', 'exec', NS, file, ...args], input);

async function must(file: string, args: string[], input?: string): Promise<string> {
  const r = await inNs(file, args, input);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runIptablesCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), exec: inNs });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const save = (family: 4 | 6): Promise<string> => must(family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'nat']);
const rulesOf = (saved: string): string[] => saved.split('\n').filter((l) => l.startsWith('-A '));
const chainsOf = (saved: string): string[] =>
  saved
    .split('\n')
    .filter((l) => l.startsWith(':'))
    .map((l) => l.slice(1).split(' ')[0] as string);

const RICH = ['-b', '8080,9090', '-x', '10.96.0.10/32,fd00:1::/64', '-i', '10.0.0.0/8,fd00::/8', '-o', '5432', '-q', '443', '-u', '1337,1338', '-g', '1337'];

describe('capture rules in a real network namespace', () => {
  beforeAll(async () => {
    const r = await spawnExec('ip', ['netns', 'add', NS]);
    if (r.code !== 0) throw new Error(`cannot create network namespace ${NS} (this suite needs root and iproute2; it never skips): ${r.stderr}`);
    nsCreated = true;
    await must('ip', ['link', 'set', 'lo', 'up']);
    // Fail clearly (not halfway through a test) if this kernel has no nat table for a family.
    await save(4);
    await save(6).catch((e: Error) => {
      throw new Error(`ip6tables nat is not available in ${NS}; the capture defaults to IPv4 + IPv6: ${e.message}`);
    });
  });

  afterAll(async () => {
    if (!nsCreated) return;
    const r = await spawnExec('ip', ['netns', 'del', NS]);
    if (r.code !== 0) console.error(`could not delete namespace ${NS}: ${r.stderr}`);
  });

  for (const [name, flags] of [
    ['defaults', []],
    ['many flags', RICH],
  ] as const) {
    it(`iptables-restore --test accepts the --dry-run output (${name}), IPv4 and IPv6`, async () => {
      const dry = await cli(['--dry-run', ...flags]);
      expect(dry.code).toBe(0);
      const [v4, v6] = dry.stdout.split(V6_HEADER);
      expect(v4).toContain('*nat');
      expect(v6).toContain('::6/128');
      await must('iptables-restore', ['--test'], v4);
      await must('ip6tables-restore', ['--test'], v6);
      // --test applied nothing.
      expect(rulesOf(await save(4))).toEqual([]);
    });
  }

  it('apply programs exactly the generated rules; applying again changes nothing', async () => {
    const opts = parseIptablesFlags(RICH).options;
    const first = await cli(RICH);
    expect(first.stderr).toMatch(/capture applied/);
    expect(first.code).toBe(0);

    const v4 = await save(4);
    const v6 = await save(6);
    for (const saved of [v4, v6]) {
      expect(chainsOf(saved)).toEqual(expect.arrayContaining(['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT']));
    }
    expect(rulesOf(v4)).toHaveLength(ruleLines(opts, 4).length);
    expect(rulesOf(v6)).toHaveLength(ruleLines(opts, 6).length);
    // The kernel's own rendering of Istio's lines (iptables-save reorders matches, adds -m tcp).
    expect(rulesOf(v4)).toEqual(
      expect.arrayContaining([
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN',
        '-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
        '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
        '-A ISTIO_OUTPUT -p udp -m udp --dport 5432 -j RETURN',
        '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
        '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1338 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp -m tcp --dport 443 -j ISTIO_REDIRECT',
        '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
      ]),
    );
    expect(rulesOf(v6)).toEqual(expect.arrayContaining(['-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN', '-A ISTIO_OUTPUT -d fd00:1::/64 -j RETURN', '-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT']));
    // ISTIO_OUTPUT keeps Istio's order in the kernel too.
    const out4 = rulesOf(v4).filter((l) => l.startsWith('-A ISTIO_OUTPUT '));
    expect(out4.at(-1)).toBe('-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT');
    expect(out4[0]).toBe('-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN');

    const again = await cli(RICH);
    expect(again.code).toBe(0);
    expect(rulesOf(await save(4))).toEqual(rulesOf(v4));
    expect(rulesOf(await save(6))).toEqual(rulesOf(v6));
  });

  it('changing the flags replaces the rules in place (no stale jump, no duplicate)', async () => {
    expect((await cli(['-b', '', '-i', '*'])).code).toBe(0);
    const v4 = rulesOf(await save(4));
    expect(v4.filter((l) => l.startsWith('-A PREROUTING'))).toEqual([]);
    expect(v4.filter((l) => l.startsWith('-A OUTPUT'))).toEqual(['-A OUTPUT -j ISTIO_OUTPUT']);
    expect(v4).toHaveLength(ruleLines(parseIptablesFlags(['-b', '', '-i', '*']).options, 4).length);
    expect(v4).not.toContain('-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT');
    expect(v4.at(-1)).toBe('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
  });

  it('the commit is atomic: a restore that fails on its last line leaves the previous rules untouched, exit 1', async () => {
    const before = rulesOf(await save(4));
    expect(before.length).toBeGreaterThan(0);
    // Corrupt the real (non --test) restore after the chains were re-declared (which flushes them)
    // and the new rules appended: the kernel must roll all of it back.
    const corrupt: Exec = (file, args, input) =>
      file === 'iptables-restore' && !args.includes('--test') && input !== undefined
        ? inNs(file, args, input.replace(/COMMIT\n$/, '-A ISTIO_OUTPUT -j NO_SUCH_CHAIN\nCOMMIT\n'))
        : inNs(file, args, input);
    const err: string[] = [];
    const code = await runIptablesCli(['--no-ipv6', '-b', '7070'], { stdout: () => undefined, stderr: (t) => err.push(t), exec: corrupt });
    expect(code).toBe(1);
    expect(err.join('')).toMatch(/^capa-runtime iptables: iptables-restore exited with \d+: /);
    expect(rulesOf(await save(4))).toEqual(before);
  });

  it('--cleanup leaves no ISTIO_ chain or jump in either family; a second cleanup is a no-op', async () => {
    const r = await cli(['--cleanup']);
    expect(r.code).toBe(0);
    for (const family of [4, 6] as const) {
      const saved = await save(family);
      expect(saved).not.toContain('ISTIO_');
      expect(rulesOf(saved)).toEqual([]);
    }
    const again = await cli(['--cleanup']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/nothing was set up/);
  });

  it('scripts/iptables/capture.sh and cleanup.sh (wrappers around dist/main.js iptables)', async () => {
    if (!existsSync(`${ROOT}dist/interception/iptables/cli.js`)) throw new Error('dist/ has no iptables command: run npm run build before this suite');
    const capture = `${ROOT}scripts/iptables/capture.sh`;
    const cleanupSh = `${ROOT}scripts/iptables/cleanup.sh`;
    const dry = await must(capture, ['--dry-run', '--no-ipv6', '-b', '8080']);
    expect(dry).toContain('-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT');
    const bad = await inNs(capture, ['-p', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/-p\/--envoy-port: "x" is not a port/);

    await must(capture, ['-b', '8080']);
    expect(rulesOf(await save(4))).toContain('-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -j ISTIO_IN_REDIRECT');
    expect(rulesOf(await save(6))).toContain('-A ISTIO_INBOUND -p tcp -m tcp --dport 8080 -j ISTIO_IN_REDIRECT');
    await must(cleanupSh, []);
    expect(await save(4)).not.toContain('ISTIO_');
    expect(await save(6)).not.toContain('ISTIO_');
  });
});
