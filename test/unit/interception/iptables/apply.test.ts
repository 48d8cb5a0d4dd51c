/**
 * applyCapture / cleanup / the CLI with a recording `exec` (no kernel): which commands run, in
 * which order, with which input, and the exit codes. The real kernel is in netns.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ApplyError, applyCapture, cleanup, type Exec, type ExecResult } from '../../../../src/interception/iptables/apply.js';
import { runIptablesCli, V4_HEADER, V6_HEADER } from '../../../../src/interception/iptables/cli.js';
import { DEFAULT_CAPTURE_OPTIONS, IPTABLES_USAGE } from '../../../../src/interception/iptables/flags.js';
import { generateRules } from '../../../../src/interception/iptables/rules.js';

interface Call {
  file: string;
  args: string[];
  input: string | undefined;
}

const EMPTY_NAT = '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';
const APPLIED_NAT = `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
`;

function recorder(respond: (c: Call) => Partial<ExecResult> = () => ({})): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec: Exec = async (file, args, input) => {
    const call = { file, args: [...args], input };
    calls.push(call);
    const r = respond(call);
    return { code: r.code ?? 0, stdout: r.stdout ?? (file.endsWith('-save') ? EMPTY_NAT : ''), stderr: r.stderr ?? '' };
  };
  return { exec, calls };
}

const summary = (calls: Call[]): string[] => calls.map((c) => `${c.file} ${c.args.join(' ')}`);

describe('applyCapture', () => {
  it('reads both families, tests both, then applies both with --noflush; input is the generated text', async () => {
    const { exec, calls } = recorder();
    const r = await applyCapture(DEFAULT_CAPTURE_OPTIONS, { exec });
    expect(summary(calls)).toEqual([
      'iptables-save -t nat',
      'ip6tables-save -t nat',
      'iptables-restore --noflush --test',
      'ip6tables-restore --noflush --test',
      'iptables-restore --noflush',
      'ip6tables-restore --noflush',
    ]);
    const g = generateRules(DEFAULT_CAPTURE_OPTIONS);
    expect(calls[4]?.input).toBe(g.v4);
    expect(calls[5]?.input).toBe(g.v6);
    expect(r.applied).toEqual({ v4: g.v4, v6: g.v6 });
  });

  it('with --no-ipv6 never runs ip6tables', async () => {
    const { exec, calls } = recorder();
    await applyCapture({ ...DEFAULT_CAPTURE_OPTIONS, ipv6: false }, { exec });
    expect(calls.every((c) => c.file.startsWith('iptables-'))).toBe(true);
  });

  it('re-applying deletes the jumps already in place inside the same commit', async () => {
    const { exec, calls } = recorder((c) => (c.file.endsWith('-save') ? { stdout: APPLIED_NAT } : {}));
    await applyCapture({ ...DEFAULT_CAPTURE_OPTIONS, ipv6: false }, { exec });
    const input = calls.at(-1)?.input ?? '';
    expect(input).toContain(':ISTIO_OUTPUT - [0:0]\n-D PREROUTING -p tcp -j ISTIO_INBOUND\n-D OUTPUT -j ISTIO_OUTPUT\n-A ISTIO_INBOUND');
    expect(input.match(/^-A OUTPUT -j ISTIO_OUTPUT$/gm)).toHaveLength(1);
  });

  it('a failing --test applies nothing and names the tool and its stderr', async () => {
    const { exec, calls } = recorder((c) => (c.file === 'ip6tables-restore' ? { code: 2, stderr: "ip6tables-restore v1.8.9 (nf_tables): Couldn't load match `owner'" } : {}));
    const err = await applyCapture(DEFAULT_CAPTURE_OPTIONS, { exec }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as Error).message).toMatch(/^ip6tables-restore exited with 2: ip6tables-restore v1.8.9 \(nf_tables\): Couldn't load match `owner'/);
    expect(summary(calls).filter((s) => s.endsWith('--noflush'))).toEqual([]);
  });

  it('if IPv6 fails after IPv4 went in, IPv4 is removed again (never half captured)', async () => {
    let v4Applied = false;
    const { exec, calls } = recorder((c) => {
      if (c.file === 'iptables-restore' && c.args.length === 1) v4Applied = true;
      if (c.file === 'iptables-save') return { stdout: v4Applied ? APPLIED_NAT : EMPTY_NAT };
      if (c.file === 'ip6tables-restore' && c.args.length === 1) return { code: 1, stderr: 'boom' };
      return {};
    });
    const err = await applyCapture(DEFAULT_CAPTURE_OPTIONS, { exec }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^ip6tables-restore exited with 1: boom[\s\S]*the IPv4 rules were removed again; use --no-ipv6/);
    const last = calls.at(-1);
    expect(last?.file).toBe('iptables-restore');
    expect(last?.input).toContain('-X ISTIO_OUTPUT');
  });

  it('an unreadable nat table is an ApplyError', async () => {
    const { exec } = recorder((c) => (c.file === 'iptables-save' ? { code: 1, stderr: 'iptables-save: Permission denied (you must be root)' } : {}));
    await expect(applyCapture(DEFAULT_CAPTURE_OPTIONS, { exec })).rejects.toThrow(/iptables-save exited with 1: iptables-save: Permission denied/);
  });
});

describe('cleanup', () => {
  it('removes what iptables-save shows, per family', async () => {
    const { exec, calls } = recorder((c) => (c.file === 'iptables-save' ? { stdout: APPLIED_NAT } : {}));
    const r = await cleanup({ ipv6: true }, { exec });
    expect(summary(calls)).toEqual(['iptables-save -t nat', 'iptables-restore --noflush', 'ip6tables-save -t nat']);
    expect(r.removed.v4).toContain('-D OUTPUT -j ISTIO_OUTPUT');
    expect(r.removed.v6).toBeNull();
  });

  it('an unreadable ip6tables nat table is a warning, not a failure', async () => {
    const { exec } = recorder((c) => (c.file === 'ip6tables-save' ? { code: 1, stderr: "can't initialize ip6tables table `nat'" } : {}));
    const r = await cleanup({ ipv6: true }, { exec });
    expect(r.warnings).toEqual([expect.stringMatching(/^IPv6 skipped: ip6tables-save exited with 1/)]);
  });

  it('dry-run reads but does not restore', async () => {
    const { exec, calls } = recorder((c) => (c.file.endsWith('-save') ? { stdout: APPLIED_NAT } : {}));
    const r = await cleanup({ ipv6: true }, { exec, dryRun: true });
    expect(calls.every((c) => c.file.endsWith('-save'))).toBe(true);
    expect(r.removed.v6).toContain('-X ISTIO_INBOUND');
  });
});

describe('runIptablesCli', () => {
  const run = async (argv: string[], respond?: (c: Call) => Partial<ExecResult>) => {
    const out: string[] = [];
    const err: string[] = [];
    const { exec, calls } = recorder(respond);
    const code = await runIptablesCli(argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), exec });
    return { code, stdout: out.join(''), stderr: err.join(''), calls };
  };

  it('--dry-run prints both families under headers and runs nothing', async () => {
    const r = await run(['--dry-run', '-b', '8080']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
    const g = generateRules({ ...DEFAULT_CAPTURE_OPTIONS, inboundPorts: [8080] });
    expect(r.stdout).toBe(`${V4_HEADER}\n${g.v4}${V6_HEADER}\n${g.v6}`);
  });

  it('--dry-run --no-ipv6 prints IPv4 only', async () => {
    const r = await run(['--dry-run', '--no-ipv6']);
    expect(r.stdout).not.toContain(V6_HEADER);
    expect(r.stdout).not.toContain('::1/128');
  });

  it('apply: exit 0 and a line on stderr', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/capture applied \(outbound → 15001, inbound → 15006, IPv4 \+ IPv6\)/);
  });

  it('apply failure: exit 1, stderr says why', async () => {
    const r = await run(['--no-ipv6'], (c) => (c.file === 'iptables-restore' ? { code: 2, stderr: 'iptables-restore: line 7 failed' } : {}));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^capa-runtime iptables: iptables-restore exited with 2: iptables-restore: line 7 failed/);
  });

  it('bad flags: exit 2, nothing run', async () => {
    const r = await run(['-m', 'TPROXY']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('capa-runtime iptables: -m/--istio-inbound-interception-mode: TPROXY is not supported yet; use REDIRECT\n');
    expect(r.calls).toEqual([]);
  });

  it('--cleanup and --help', async () => {
    const c = await run(['--cleanup', '--no-ipv6']);
    expect(c.code).toBe(0);
    expect(c.stderr).toMatch(/nothing was set up/);
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toBe(IPTABLES_USAGE);
  });
});
