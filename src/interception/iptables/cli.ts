/**
 * `capa-runtime iptables [flags]`: apply, `--dry-run` or `--cleanup`. Exit codes: 0 ok, 1 an
 * iptables command failed (stderr says why), 2 bad flags. `scripts/iptables/*.sh` call this, so
 * the rules exist in one place only.
 */
import { ApplyError, applyCapture, cleanup, type Exec } from './apply.js';
import { FlagError, IPTABLES_USAGE, parseIptablesFlags } from './flags.js';
import { generateRules } from './rules.js';

export interface IptablesCliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly exec?: Exec;
}

const processIo: IptablesCliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

export const V4_HEADER = '# IPv4: iptables-restore --noflush';
export const V6_HEADER = '# IPv6: ip6tables-restore --noflush';

/** Dry-run output: each family's restore input under a comment header (comments are valid restore syntax). */
export function formatDryRun(v4: string, v6: string): string {
  return `${V4_HEADER}\n${v4}${v6 === '' ? '' : `${V6_HEADER}\n${v6}`}`;
}

export async function runIptablesCli(argv: readonly string[], io: IptablesCliIo = processIo): Promise<number> {
  let cmd;
  try {
    cmd = parseIptablesFlags(argv);
  } catch (e) {
    if (e instanceof FlagError) {
      io.stderr(`capa-runtime iptables: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (cmd.action === 'help') {
    io.stdout(IPTABLES_USAGE);
    return 0;
  }
  const exec = io.exec;
  try {
    if (cmd.action === 'cleanup') {
      const r = await cleanup(cmd.options, { exec, dryRun: cmd.dryRun });
      for (const w of r.warnings) io.stderr(`capa-runtime iptables: ${w}\n`);
      if (cmd.dryRun) io.stdout(formatDryRun(r.removed.v4 ?? '', r.removed.v6 ?? ''));
      else io.stderr(`capa-runtime iptables: capture removed (${r.removed.v4 === null && r.removed.v6 === null ? 'nothing was set up' : 'ISTIO_* chains deleted'})\n`);
      return 0;
    }
    if (cmd.dryRun) {
      const { v4, v6 } = generateRules(cmd.options);
      io.stdout(formatDryRun(v4, v6));
      return 0;
    }
    await applyCapture(cmd.options, { exec });
    io.stderr(`capa-runtime iptables: capture applied (outbound → ${cmd.options.outboundPort}, inbound → ${cmd.options.inboundPort}, ${cmd.options.ipv6 ? 'IPv4 + IPv6' : 'IPv4 only'})\n`);
    return 0;
  } catch (e) {
    if (e instanceof ApplyError) {
      io.stderr(`capa-runtime iptables: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
