/**
 * `capa-runtime iptables` flags: the ones Istio's `istio-iptables` users know (same letters, same
 * long names, same list syntax: comma-separated, `*` = all, `''` = none), validated up front so a
 * typo is a usage error naming the flag (exit 2), never a half-applied rule set.
 *
 * Defaults are what Istio's sidecar injector passes to istio-iptables for a plain sidecar
 * (`-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d ...`), plus capa-runtime's admin port
 * 15000 among the excluded inbound ports.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface Cidr {
  readonly family: IpFamily;
  /** As written (IPv6 lower-cased), e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  readonly text: string;
  /** The address is a loopback one (127.0.0.0/8, ::1): Istio then keeps app→lo traffic captured. */
  readonly loopback: boolean;
}

export interface CaptureOptions {
  /** `-p`: where outbound TCP is redirected (Envoy's virtualOutbound). */
  readonly outboundPort: number;
  /** `-z`: where inbound TCP is redirected (virtualInbound). */
  readonly inboundPort: number;
  /** `-e`: the HBONE tunnel port, never captured (15008). */
  readonly tunnelPort: number;
  /** `-u`: the proxy's UIDs; their traffic is never captured. */
  readonly proxyUids: readonly number[];
  /** `-g`: the proxy's GIDs. */
  readonly proxyGids: readonly number[];
  /** `-m`: only REDIRECT for now. */
  readonly mode: 'REDIRECT';
  /** `-b`: inbound ports to capture: `'*'` = all, `[]` = none. */
  readonly inboundPorts: '*' | readonly number[];
  /** `-d`: inbound ports left alone (applies only when `-b '*'`, as in Istio). */
  readonly inboundPortsExclude: readonly number[];
  /** `-i`: outbound destinations to capture: `'*'` = all, `[]` = none. */
  readonly outboundCidrsInclude: '*' | readonly Cidr[];
  /** `-x`: outbound destinations never captured. */
  readonly outboundCidrsExclude: readonly Cidr[];
  /** `-o`: outbound destination ports never captured (TCP and UDP). */
  readonly outboundPortsExclude: readonly number[];
  /** `-q`: outbound destination ports always captured. */
  readonly outboundPortsInclude: readonly number[];
  /** Also generate/apply the ip6tables rules. */
  readonly ipv6: boolean;
}

export const DEFAULT_INBOUND_PORTS_EXCLUDE: readonly number[] = [15090, 15021, 15020, 15000];

export const DEFAULT_CAPTURE_OPTIONS: CaptureOptions = Object.freeze({
  outboundPort: 15001,
  inboundPort: 15006,
  tunnelPort: 15008,
  proxyUids: [1337],
  proxyGids: [1337],
  mode: 'REDIRECT',
  inboundPorts: '*',
  inboundPortsExclude: DEFAULT_INBOUND_PORTS_EXCLUDE,
  outboundCidrsInclude: '*',
  outboundCidrsExclude: [],
  outboundPortsExclude: [],
  outboundPortsInclude: [],
  ipv6: true,
});

export interface IptablesCommand {
  readonly action: 'apply' | 'cleanup' | 'help';
  readonly dryRun: boolean;
  readonly options: CaptureOptions;
}

/** A bad command line (exit code 2). The message names the flag. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export const IPTABLES_USAGE = `capa-runtime iptables — set up Istio-compatible traffic capture (iptables-restore, IPv4 + IPv6)

Usage:
  capa-runtime iptables [flags]             apply the capture rules (idempotent, one atomic commit per family)
  capa-runtime iptables --dry-run [flags]   print the rules in iptables-save format, apply nothing
  capa-runtime iptables --cleanup           remove every ISTIO_* chain and the jumps to them

Flags (istio-iptables names; lists are comma-separated, '*' = all, '' = none):
  -p, --envoy-port PORT                               outbound capture port (default 15001)
  -z, --inbound-capture-port PORT                     inbound capture port (default 15006)
  -e, --inbound-tunnel-port PORT                      tunnel port never captured (default 15008)
  -u, --proxy-uid UIDS                                proxy UIDs, never captured (default 1337)
  -g, --proxy-gid GIDS                                proxy GIDs, never captured (default 1337)
  -m, --istio-inbound-interception-mode MODE          REDIRECT (TPROXY is not supported yet)
  -b, --istio-inbound-ports PORTS                     inbound ports to capture (default '*')
  -d, --istio-local-exclude-ports PORTS               inbound ports not captured when -b is '*'
                                                      (default 15090,15021,15020,15000)
  -i, --istio-service-cidr CIDRS                      outbound destinations to capture (default '*')
  -x, --istio-service-exclude-cidr CIDRS              outbound destinations not captured (IPv4 and IPv6)
  -o, --istio-local-outbound-ports-exclude PORTS      outbound ports not captured
  -q, --istio-outbound-ports PORTS                    outbound ports always captured
                                                      (alias --istio-local-outbound-ports-include)
  -n, --dry-run                                       print, do not apply
      --ipv6 | --no-ipv6                              also program ip6tables (default: yes)
      --cleanup                                       remove the rules
  -h, --help                                          this text

Exit codes: 0 ok, 1 iptables-restore failed (stderr says why), 2 bad flags.
`;

type ValueKey =
  | 'outboundPort'
  | 'inboundPort'
  | 'tunnelPort'
  | 'proxyUids'
  | 'proxyGids'
  | 'mode'
  | 'inboundPorts'
  | 'inboundPortsExclude'
  | 'outboundCidrsInclude'
  | 'outboundCidrsExclude'
  | 'outboundPortsExclude'
  | 'outboundPortsInclude';

interface ValueFlag {
  readonly key: ValueKey;
  readonly short: string;
  readonly long: readonly string[];
}

const VALUE_FLAGS: readonly ValueFlag[] = [
  { key: 'outboundPort', short: 'p', long: ['envoy-port'] },
  { key: 'inboundPort', short: 'z', long: ['inbound-capture-port'] },
  { key: 'tunnelPort', short: 'e', long: ['inbound-tunnel-port'] },
  { key: 'proxyUids', short: 'u', long: ['proxy-uid'] },
  { key: 'proxyGids', short: 'g', long: ['proxy-gid'] },
  { key: 'mode', short: 'm', long: ['istio-inbound-interception-mode'] },
  { key: 'inboundPorts', short: 'b', long: ['istio-inbound-ports'] },
  { key: 'inboundPortsExclude', short: 'd', long: ['istio-local-exclude-ports'] },
  { key: 'outboundCidrsInclude', short: 'i', long: ['istio-service-cidr'] },
  { key: 'outboundCidrsExclude', short: 'x', long: ['istio-service-exclude-cidr'] },
  { key: 'outboundPortsExclude', short: 'o', long: ['istio-local-outbound-ports-exclude'] },
  { key: 'outboundPortsInclude', short: 'q', long: ['istio-outbound-ports', 'istio-local-outbound-ports-include'] },
];

type BoolKey = 'dryRun' | 'ipv6' | 'noIpv6' | 'cleanup' | 'help';

const BOOL_FLAGS: readonly { key: BoolKey; short?: string; long: string }[] = [
  { key: 'dryRun', short: 'n', long: 'dry-run' },
  { key: 'ipv6', long: 'ipv6' },
  { key: 'noIpv6', long: 'no-ipv6' },
  { key: 'cleanup', long: 'cleanup' },
  { key: 'help', short: 'h', long: 'help' },
];

/** istio-iptables flags we recognise but do not implement: say so instead of "unknown flag". */
const UNSUPPORTED_ISTIO_FLAGS: Readonly<Record<string, string>> = {
  c: 'istio-exclude-interfaces',
  k: 'kube-virt-interfaces',
  t: 'istio-inbound-tproxy-mark',
  r: 'istio-inbound-tproxy-route-table',
  'istio-exclude-interfaces': 'istio-exclude-interfaces',
  'kube-virt-interfaces': 'kube-virt-interfaces',
  'istio-inbound-tproxy-mark': 'istio-inbound-tproxy-mark',
  'istio-inbound-tproxy-route-table': 'istio-inbound-tproxy-route-table',
  'redirect-dns': 'redirect-dns',
  'capture-all-dns': 'capture-all-dns',
  'drop-invalid': 'drop-invalid',
  'dual-stack': 'dual-stack',
  'native-nftables': 'native-nftables',
};

function flagName(f: ValueFlag): string {
  return `-${f.short}/--${f.long[0]}`;
}

function parseBool(name: string, v: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new FlagError(`${name}: expected true or false, got "${v}"`);
}

/** Parse `capa-runtime iptables ...` (the words after `iptables`). Throws FlagError. */
export function parseIptablesFlags(argv: readonly string[]): IptablesCommand {
  const raw = new Map<ValueKey, { value: string; flag: ValueFlag }>();
  const bools = new Map<BoolKey, boolean>();
  let ipv6: boolean | undefined;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    let name: string;
    let inline: string | undefined;
    let long: boolean;
    if (arg.startsWith('--') && arg.length > 2) {
      long = true;
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (arg.startsWith('-') && arg.length > 1 && arg !== '--') {
      long = false;
      name = arg.slice(1, 2);
      const rest = arg.slice(2);
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest;
    } else {
      throw new FlagError(`unexpected argument "${arg}" (values belong to a flag, e.g. -b '*')`);
    }
    const shown = long ? `--${name}` : `-${name}`;

    const vf = VALUE_FLAGS.find((f) => (long ? f.long.includes(name) : f.short === name));
    if (vf) {
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new FlagError(`${shown} needs a value`);
        value = argv[++i] as string;
      }
      raw.set(vf.key, { value, flag: vf });
      continue;
    }
    const bf = BOOL_FLAGS.find((f) => (long ? f.long === name : f.short === name));
    if (bf) {
      const on = inline === undefined ? true : parseBool(shown, inline);
      if (bf.key === 'ipv6') ipv6 = on;
      else if (bf.key === 'noIpv6') ipv6 = !on;
      else bools.set(bf.key, on);
      continue;
    }
    const unsupported = UNSUPPORTED_ISTIO_FLAGS[name];
    if (unsupported !== undefined) {
      throw new FlagError(`${shown}: istio-iptables' --${unsupported} is not supported by capa-runtime yet`);
    }
    throw new FlagError(`unknown flag ${shown}\nRun capa-runtime iptables --help for the flags.`);
  }

  const d = DEFAULT_CAPTURE_OPTIONS;
  const get = <T>(key: ValueKey, fallback: T, parse: (value: string, name: string) => T): T => {
    const r = raw.get(key);
    return r === undefined ? fallback : parse(r.value.trim(), flagName(r.flag));
  };

  const options: CaptureOptions = {
    outboundPort: get('outboundPort', d.outboundPort, parsePort),
    inboundPort: get('inboundPort', d.inboundPort, parsePort),
    tunnelPort: get('tunnelPort', d.tunnelPort, parsePort),
    proxyUids: get('proxyUids', d.proxyUids, parseIds),
    proxyGids: get('proxyGids', d.proxyGids, parseIds),
    mode: get('mode', d.mode, parseMode),
    inboundPorts: get('inboundPorts', d.inboundPorts, (v, n) => (v === '*' ? '*' : parsePortList(v, n))),
    inboundPortsExclude: get('inboundPortsExclude', d.inboundPortsExclude, parsePortList),
    outboundCidrsInclude: get('outboundCidrsInclude', d.outboundCidrsInclude, (v, n) => (v === '*' ? '*' : parseCidrList(v, n))),
    outboundCidrsExclude: get('outboundCidrsExclude', d.outboundCidrsExclude, (v, n) => {
      if (v === '*') throw new FlagError(`${n}: '*' would exclude every destination; leave -i empty ('') to capture no outbound traffic`);
      return parseCidrList(v, n);
    }),
    outboundPortsExclude: get('outboundPortsExclude', d.outboundPortsExclude, parsePortList),
    outboundPortsInclude: get('outboundPortsInclude', d.outboundPortsInclude, parsePortList),
    ipv6: ipv6 ?? d.ipv6,
  };

  const help = bools.get('help') ?? false;
  const cleanup = bools.get('cleanup') ?? false;
  return { action: help ? 'help' : cleanup ? 'cleanup' : 'apply', dryRun: bools.get('dryRun') ?? false, options };
}

// === value parsers (exported for tests and for callers that build options in code) ===

/** Istio's list syntax: comma-separated, blanks and empty items ignored (`"6000,7000,"`). */
function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parsePort(v: string, name: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
    throw new FlagError(`${name}: "${v}" is not a port (1-65535)`);
  }
  return Number(v);
}

export function parsePortList(v: string, name: string): number[] {
  return splitList(v).map((p) => {
    if (p === '*') throw new FlagError(`${name}: '*' must be the whole value, not part of a list`);
    return parsePort(p, name);
  });
}

export function parseIds(v: string, name: string): number[] {
  return splitList(v).map((id) => {
    if (!/^\d{1,10}$/.test(id) || Number(id) > 4294967294) {
      throw new FlagError(`${name}: "${id}" is not a numeric user/group id`);
    }
    return Number(id);
  });
}

export function parseMode(v: string, name: string): 'REDIRECT' {
  const mode = v.toUpperCase();
  if (mode === 'REDIRECT') return 'REDIRECT';
  if (mode === 'TPROXY') throw new FlagError(`${name}: TPROXY is not supported yet; use REDIRECT`);
  throw new FlagError(`${name}: "${v}" is not an interception mode (REDIRECT; TPROXY is not supported yet)`);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function parseCidr(v: string, name: string): Cidr {
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const bits = slash < 0 ? '' : v.slice(slash + 1);
  const family: IpFamily | 0 = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) {
    throw new FlagError(`${name}: "${v}" is not a CIDR (e.g. 10.96.0.0/12 or fd00::/8)`);
  }
  return {
    family,
    text: family === 6 ? v.toLowerCase() : v,
    loopback: LOOPBACK.check(addr, family === 4 ? 'ipv4' : 'ipv6'),
  };
}

export function parseCidrList(v: string, name: string): Cidr[] {
  return splitList(v).map((c) => {
    if (c === '*') throw new FlagError(`${name}: '*' must be the whole value, not part of a list`);
    return parseCidr(c, name);
  });
}
