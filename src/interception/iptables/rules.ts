/**
 * The capture rules, as `iptables-restore` input. They are Istio's own for the same flags (the
 * rules `istio-iptables` programs in REDIRECT mode, in the same order, see its
 * `tools/istio-iptables/pkg/capture/testdata/*.golden`), so an operator who knows the
 * `iptables-save` of an Istio pod recognises every line:
 *
 *   ISTIO_INBOUND      PREROUTING → here; the tunnel port and excluded ports RETURN, the rest → ISTIO_IN_REDIRECT
 *   ISTIO_IN_REDIRECT  REDIRECT --to-ports <inbound port>   (15006)
 *   ISTIO_REDIRECT     REDIRECT --to-ports <outbound port>  (15001)
 *   ISTIO_OUTPUT       OUTPUT → here; the proxy's own traffic, 127.0.0.6 (inbound passthrough) and
 *                      app→app over lo RETURN, a proxy→own-pod connection over lo goes inbound, the
 *                      rest → ISTIO_REDIRECT
 *
 * The text declares the four chains with `:NAME - [0:0]`, which under `iptables-restore --noflush`
 * creates a missing chain or flushes an existing one, so re-applying replaces the chains' rules in one
 * atomic commit. The jumps from the built-in PREROUTING/OUTPUT chains are the only rules outside our
 * chains; `withJumpRemoval` prefixes `-D` lines for the ones already there (read from
 * `iptables-save`), so the same commit never duplicates them.
 */
import type { CaptureOptions, Cidr, IpFamily } from './flags.js';

export const CHAINS = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'] as const;

const BUILTIN_NAT_CHAINS = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);

interface FamilyAddresses {
  /** The host loopback address (`! -d` / `-d` in ISTIO_OUTPUT). */
  readonly loopback: string;
  /** Source of Envoy's inbound passthrough connections to the app (Istio binds 127.0.0.6 / ::6). */
  readonly passthroughSource: string;
}

const ADDRESSES: Readonly<Record<IpFamily, FamilyAddresses>> = {
  4: { loopback: '127.0.0.1/32', passthroughSource: '127.0.0.6/32' },
  6: { loopback: '::1/128', passthroughSource: '::6/128' },
};

/** The `-A ...` lines for one address family, in Istio's order. */
export function ruleLines(opts: CaptureOptions, family: IpFamily): string[] {
  const { loopback, passthroughSource } = ADDRESSES[family];
  const rules: string[] = [];
  const add = (chain: string, spec: string): void => {
    rules.push(`-A ${chain} ${spec}`);
  };

  // The fixed chains: tunnel port bypass and the two REDIRECT targets.
  add('ISTIO_INBOUND', `-p tcp --dport ${opts.tunnelPort} -j RETURN`);
  add('ISTIO_REDIRECT', `-p tcp -j REDIRECT --to-ports ${opts.outboundPort}`);
  add('ISTIO_IN_REDIRECT', `-p tcp -j REDIRECT --to-ports ${opts.inboundPort}`);

  // Inbound: nothing at all (not even the PREROUTING jump) when no port is captured.
  if (opts.inboundPorts === '*') {
    add('PREROUTING', '-p tcp -j ISTIO_INBOUND');
    // Istio applies the exclusions only in the capture-everything case.
    for (const port of opts.inboundPortsExclude) add('ISTIO_INBOUND', `-p tcp --dport ${port} -j RETURN`);
    add('ISTIO_INBOUND', '-p tcp -j ISTIO_IN_REDIRECT');
  } else if (opts.inboundPorts.length > 0) {
    add('PREROUTING', '-p tcp -j ISTIO_INBOUND');
    for (const port of opts.inboundPorts) add('ISTIO_INBOUND', `-p tcp --dport ${port} -j ISTIO_IN_REDIRECT`);
  }

  // Outbound.
  add('OUTPUT', '-j ISTIO_OUTPUT');
  // Port exclusions come first, so they win over the redirect-back-to-self rules below.
  for (const port of opts.outboundPortsExclude) {
    add('ISTIO_OUTPUT', `-p tcp --dport ${port} -j RETURN`);
    add('ISTIO_OUTPUT', `-p udp --dport ${port} -j RETURN`);
  }
  // Envoy's inbound passthrough connects to the app from 127.0.0.6: never capture it.
  add('ISTIO_OUTPUT', `-o lo -s ${passthroughSource} -j RETURN`);

  // If the user explicitly captures a loopback range, app→lo traffic must not be let through.
  const loopbackIncluded = opts.outboundCidrsInclude !== '*' && opts.outboundCidrsInclude.some((c) => c.loopback);
  const owner = (kind: 'uid' | 'gid', id: number): void => {
    // proxy → a service VIP that resolved back to this pod: deliver it through inbound capture.
    add('ISTIO_OUTPUT', `-o lo ! -d ${loopback} -p tcp ! --dport ${opts.tunnelPort} -m owner --${kind}-owner ${id} -j ISTIO_IN_REDIRECT`);
    // app → app over lo (its own endpoint address): not captured.
    if (!loopbackIncluded) add('ISTIO_OUTPUT', `-o lo -m owner ! --${kind}-owner ${id} -j RETURN`);
    // The proxy's own upstream connections: never captured (TCP and UDP alike).
    add('ISTIO_OUTPUT', `-m owner --${kind}-owner ${id} -j RETURN`);
  };
  for (const uid of opts.proxyUids) owner('uid', uid);
  for (const gid of opts.proxyGids) owner('gid', gid);

  // Explicit localhost (Envoy-aware apps, container to container).
  add('ISTIO_OUTPUT', `-d ${loopback} -j RETURN`);
  for (const cidr of ofFamily(opts.outboundCidrsExclude, family)) add('ISTIO_OUTPUT', `-d ${cidr.text} -j RETURN`);
  for (const port of opts.outboundPortsInclude) add('ISTIO_OUTPUT', `-p tcp --dport ${port} -j ISTIO_REDIRECT`);
  if (opts.outboundCidrsInclude === '*') {
    add('ISTIO_OUTPUT', '-j ISTIO_REDIRECT');
  } else {
    for (const cidr of ofFamily(opts.outboundCidrsInclude, family)) add('ISTIO_OUTPUT', `-d ${cidr.text} -j ISTIO_REDIRECT`);
  }
  return rules;
}

function ofFamily(cidrs: readonly Cidr[], family: IpFamily): Cidr[] {
  return cidrs.filter((c) => c.family === family);
}

/** One family's `iptables-restore --noflush` input: the nat table, chains declared, rules, COMMIT. */
export function restoreText(opts: CaptureOptions, family: IpFamily): string {
  const lines = ['*nat', ...CHAINS.map((c) => `:${c} - [0:0]`), ...ruleLines(opts, family), 'COMMIT'];
  return `${lines.join('\n')}\n`;
}

export interface GeneratedRules {
  /** `iptables-restore --noflush` input. */
  readonly v4: string;
  /** `ip6tables-restore --noflush` input; `''` with `ipv6: false`. */
  readonly v6: string;
}

export function generateRules(opts: CaptureOptions): GeneratedRules {
  return { v4: restoreText(opts, 4), v6: opts.ipv6 ? restoreText(opts, 6) : '' };
}

// === reading iptables-save ===

export interface NatState {
  /** User-defined chains in the nat table. */
  readonly chains: readonly string[];
  /** Rules of the built-in chains that jump to an ISTIO_* chain, without the leading `-A `. */
  readonly istioJumps: readonly string[];
}

/** The parts of `iptables-save [-t nat]` output that capture setup and cleanup care about. */
export function parseNatState(saved: string): NatState {
  const chains: string[] = [];
  const istioJumps: string[] = [];
  let inNat = false;
  for (const raw of saved.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      inNat = line === '*nat';
      continue;
    }
    if (!inNat) continue;
    if (line === 'COMMIT') {
      inNat = false;
      continue;
    }
    if (line.startsWith(':')) {
      const name = line.slice(1).split(/\s+/)[0] ?? '';
      if (name !== '' && !BUILTIN_NAT_CHAINS.has(name)) chains.push(name);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const words = line.split(/\s+/);
    const chain = words[1] ?? '';
    const j = words.lastIndexOf('-j');
    const target = j < 0 ? '' : (words[j + 1] ?? '');
    if (BUILTIN_NAT_CHAINS.has(chain) && target.startsWith('ISTIO_')) istioJumps.push(line.slice(3));
  }
  return { chains, istioJumps };
}

/**
 * `restore` (from `restoreText`) with `-D` lines for the jumps into ISTIO_* chains that `saved`
 * shows already in place, so applying twice leaves one copy of each and the swap is one commit.
 */
export function withJumpRemoval(restore: string, saved: string): string {
  const { istioJumps } = parseNatState(saved);
  if (istioJumps.length === 0) return restore;
  const lines = restore.split('\n');
  const firstRule = lines.findIndex((l) => l.startsWith('-A '));
  const at = firstRule < 0 ? lines.indexOf('COMMIT') : firstRule;
  lines.splice(at, 0, ...istioJumps.map((r) => `-D ${r}`));
  return lines.join('\n');
}

/**
 * `iptables-restore --noflush` input that removes capture from the state in `saved`: the jumps
 * from built-in chains into ISTIO_* chains, then every ISTIO_* chain (flushed first, so chains
 * that jump to each other can all be deleted). `null` when there is nothing to remove.
 */
export function cleanupRules(saved: string): string | null {
  const { chains, istioJumps } = parseNatState(saved);
  const ours = chains.filter((c) => c.startsWith('ISTIO_'));
  if (ours.length === 0 && istioJumps.length === 0) return null;
  const lines = ['*nat', ...istioJumps.map((r) => `-D ${r}`), ...ours.map((c) => `-F ${c}`), ...ours.map((c) => `-X ${c}`), 'COMMIT'];
  return `${lines.join('\n')}\n`;
}
