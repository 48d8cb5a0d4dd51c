/**
 * The generator, case by case, against the rules istio-iptables programs for the same flags.
 * Each expected rule list is the `-A` lines of Istio's golden file named in the case
 * (istio/istio master, tools/istio-iptables/pkg/capture/testdata/<name>.golden); Istio's goldens
 * show `* nat` + `-N CHAIN` where we declare `:CHAIN - [0:0]` (same chains, same order).
 * Istio's test config leaves -b, -d and -i empty, so the cases pass `-b '' -d '' -i ''` where the
 * golden did not set them.
 */
import { describe, expect, it } from 'vitest';
import { parseIptablesFlags } from '../../../../src/interception/iptables/flags.js';
import { cleanupRules, generateRules, parseNatState, ruleLines, withJumpRemoval } from '../../../../src/interception/iptables/rules.js';

const HEAD = ['*nat', ':ISTIO_INBOUND - [0:0]', ':ISTIO_REDIRECT - [0:0]', ':ISTIO_IN_REDIRECT - [0:0]', ':ISTIO_OUTPUT - [0:0]'];
const restore = (rules: string[]): string => `${[...HEAD, ...rules, 'COMMIT'].join('\n')}\n`;
const gen = (...argv: string[]) => generateRules(parseIptablesFlags(argv).options);
/** Istio's test defaults: no inbound ports, no inbound exclusions, no outbound ranges. */
const ISTIO_TEST = ['-b', '', '-d', '', '-i', ''];

const FIXED = [
  '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
  '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
  '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
];

const owner4 = (kind: 'uid' | 'gid', id: number, lo = true): string[] => [
  `-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --${kind}-owner ${id} -j ISTIO_IN_REDIRECT`,
  ...(lo ? [`-A ISTIO_OUTPUT -o lo -m owner ! --${kind}-owner ${id} -j RETURN`] : []),
  `-A ISTIO_OUTPUT -m owner --${kind}-owner ${id} -j RETURN`,
];
const owner6 = (kind: 'uid' | 'gid', id: number): string[] => [
  `-A ISTIO_OUTPUT -o lo ! -d ::1/128 -p tcp ! --dport 15008 -m owner --${kind}-owner ${id} -j ISTIO_IN_REDIRECT`,
  `-A ISTIO_OUTPUT -o lo -m owner ! --${kind}-owner ${id} -j RETURN`,
  `-A ISTIO_OUTPUT -m owner --${kind}-owner ${id} -j RETURN`,
];

// The ISTIO_OUTPUT head shared by every golden with the default uid/gid 1337.
const OUT4 = ['-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN', ...owner4('uid', 1337), ...owner4('gid', 1337), '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN'];
const OUT6 = ['-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN', ...owner6('uid', 1337), ...owner6('gid', 1337), '-A ISTIO_OUTPUT -d ::1/128 -j RETURN'];

describe('generateRules — Istio golden cases', () => {
  it('empty.golden: no inbound ports, no outbound ranges', () => {
    const r = gen(...ISTIO_TEST, '--no-ipv6');
    expect(r.v4).toBe(restore([...FIXED, ...OUT4]));
    expect(r.v6).toBe('');
  });

  it('inbound-ports-include.golden: -b 32000,31000 (ports in the order given)', () => {
    const r = gen(...ISTIO_TEST, '-b', '32000,31000', '--no-ipv6');
    expect(r.v4).toBe(
      restore([
        ...FIXED,
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_IN_REDIRECT',
        ...OUT4,
      ]),
    );
  });

  it("inbound-ports-wildcard.golden: -b '*'", () => {
    const r = gen(...ISTIO_TEST, '-b', '*', '--no-ipv6');
    expect(r.v4).toBe(restore([...FIXED, '-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT', ...OUT4]));
  });

  it("inbound-wildcard-exclude: -b '*' -d 22,80,443 (RETURN per port before the catch-all, as Istio master's run.go)", () => {
    const r = gen(...ISTIO_TEST, '-b', '*', '-d', '22,80,443', '--no-ipv6');
    expect(r.v4).toBe(
      restore([
        ...FIXED,
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A ISTIO_INBOUND -p tcp --dport 22 -j RETURN',
        '-A ISTIO_INBOUND -p tcp --dport 80 -j RETURN',
        '-A ISTIO_INBOUND -p tcp --dport 443 -j RETURN',
        '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
        ...OUT4,
      ]),
    );
  });

  it('-d applies only with -b * (as Istio: ipv6-ipnets passes -d 6000,7000, with explicit ports and gets no RETURN)', () => {
    expect(gen('-b', '4000', '-d', '6000,7000,', '--no-ipv6').v4).not.toContain('--dport 6000');
  });

  it('ipnets.golden: -i 10.0.0.0/8', () => {
    const r = gen(...ISTIO_TEST, '-i', '10.0.0.0/8', '--no-ipv6');
    expect(r.v4).toBe(restore([...FIXED, ...OUT4, '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT']));
  });

  it('ip-range.golden (without its DNS rules): -x 1.1.0.0/16 -i 9.9.0.0/16 -u 3,4 -g 1,2', () => {
    const r = gen(...ISTIO_TEST, '-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '-u', '3,4', '-g', '1,2', '--no-ipv6');
    expect(r.v4).toBe(
      restore([
        ...FIXED,
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
        ...owner4('uid', 3),
        ...owner4('uid', 4),
        ...owner4('gid', 1),
        ...owner4('gid', 2),
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN',
        '-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT',
      ]),
    );
  });

  it('loopback-outbound-iprange.golden (without DNS): -i 127.1.2.3/32 drops the app→lo RETURNs', () => {
    const r = gen(...ISTIO_TEST, '-i', '127.1.2.3/32', '-u', '3,4', '-g', '1,2', '--no-ipv6');
    expect(r.v4).toBe(
      restore([
        ...FIXED,
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
        ...owner4('uid', 3, false),
        ...owner4('uid', 4, false),
        ...owner4('gid', 1, false),
        ...owner4('gid', 2, false),
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT',
      ]),
    );
  });

  it('outbound-ports-include.golden: -q 32000,31000', () => {
    const r = gen(...ISTIO_TEST, '-q', '32000,31000', '--no-ipv6');
    expect(r.v4).toBe(restore([...FIXED, ...OUT4, '-A ISTIO_OUTPUT -p tcp --dport 32000 -j ISTIO_REDIRECT', '-A ISTIO_OUTPUT -p tcp --dport 31000 -j ISTIO_REDIRECT']));
  });

  it('outbound ports exclude: -o 22,80,443 → TCP and UDP RETURN per port right after the OUTPUT jump (Istio master run.go)', () => {
    const r = gen(...ISTIO_TEST, '-o', '22,80,443', '--no-ipv6');
    const exclusions = [22, 80, 443].flatMap((p) => [`-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`, `-A ISTIO_OUTPUT -p udp --dport ${p} -j RETURN`]);
    expect(r.v4).toBe(restore([...FIXED, OUT4[0] as string, ...exclusions, ...OUT4.slice(1)]));
  });

  it('ipv6-empty-inbound-ports.golden: both families', () => {
    const r = gen(...ISTIO_TEST, '--ipv6');
    expect(r.v4).toBe(restore([...FIXED, ...OUT4]));
    expect(r.v6).toBe(restore([...FIXED, ...OUT6]));
  });

  it('ipv6-inbound-ports.golden: -b 4000,5000 in both families', () => {
    const inbound = ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp --dport 4000 -j ISTIO_IN_REDIRECT', '-A ISTIO_INBOUND -p tcp --dport 5000 -j ISTIO_IN_REDIRECT'];
    const r = gen(...ISTIO_TEST, '-b', '4000,5000');
    expect(r.v4).toBe(restore([...FIXED, ...inbound, ...OUT4]));
    expect(r.v6).toBe(restore([...FIXED, ...inbound, ...OUT6]));
  });

  it('ipv6-outbound-ports.golden: -q 32000,31000 in both families', () => {
    const q = ['-A ISTIO_OUTPUT -p tcp --dport 32000 -j ISTIO_REDIRECT', '-A ISTIO_OUTPUT -p tcp --dport 31000 -j ISTIO_REDIRECT'];
    const r = gen(...ISTIO_TEST, '-q', '32000,31000');
    expect(r.v4).toBe(restore([...FIXED, ...OUT4, ...q]));
    expect(r.v6).toBe(restore([...FIXED, ...OUT6, ...q]));
  });

  it('ipv6-ipnets.golden (without -k): v6 CIDRs only in the ip6tables rules', () => {
    const inbound = ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp --dport 4000 -j ISTIO_IN_REDIRECT', '-A ISTIO_INBOUND -p tcp --dport 5000 -j ISTIO_IN_REDIRECT'];
    const r = gen(...ISTIO_TEST, '-b', '4000,5000', '-d', '6000,7000,', '-x', '2001:db8::/32', '-i', '2001:db8::/32');
    expect(r.v4).toBe(restore([...FIXED, ...inbound, ...OUT4]));
    expect(r.v6).toBe(restore([...FIXED, ...inbound, ...OUT6, '-A ISTIO_OUTPUT -d 2001:db8::/32 -j RETURN', '-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT']));
  });

  it('ipv6-uid-gid.golden (without -k): -u 3,4 -g 1,2', () => {
    const inbound = ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A ISTIO_INBOUND -p tcp --dport 4000 -j ISTIO_IN_REDIRECT', '-A ISTIO_INBOUND -p tcp --dport 5000 -j ISTIO_IN_REDIRECT'];
    const r = gen(...ISTIO_TEST, '-b', '4000,5000', '-d', '6000,7000', '-u', '3,4', '-g', '1,2', '-x', '2001:db8::/32', '-i', '2001:db8::/32');
    const owners6 = [...owner6('uid', 3), ...owner6('uid', 4), ...owner6('gid', 1), ...owner6('gid', 2)];
    const owners4 = [...owner4('uid', 3), ...owner4('uid', 4), ...owner4('gid', 1), ...owner4('gid', 2)];
    expect(r.v4).toBe(restore([...FIXED, ...inbound, '-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN', ...owners4, '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN']));
    expect(r.v6).toBe(
      restore([
        ...FIXED,
        ...inbound,
        '-A OUTPUT -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN',
        ...owners6,
        '-A ISTIO_OUTPUT -d ::1/128 -j RETURN',
        '-A ISTIO_OUTPUT -d 2001:db8::/32 -j RETURN',
        '-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT',
      ]),
    );
  });
});

describe('generateRules — capa-runtime defaults and ports', () => {
  it("defaults are the injector's sidecar invocation: -b '*' -d 15090,15021,15020,15000 -i '*', IPv4 and IPv6", () => {
    const inbound = [
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15000 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
    ];
    const r = gen();
    expect(r.v4).toBe(restore([...FIXED, ...inbound, ...OUT4, '-A ISTIO_OUTPUT -j ISTIO_REDIRECT']));
    expect(r.v6).toBe(restore([...FIXED, ...inbound, ...OUT6, '-A ISTIO_OUTPUT -j ISTIO_REDIRECT']));
  });

  it('-p/-z/-e change the REDIRECT targets and the tunnel bypass', () => {
    const v4 = gen('-p', '16001', '-z', '16006', '-e', '16008', '--no-ipv6').v4;
    expect(v4).toContain('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n');
    expect(v4).toContain('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n');
    expect(v4).toContain('-A ISTIO_INBOUND -p tcp --dport 16008 -j RETURN\n');
    expect(v4).toContain('! --dport 16008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT\n');
    expect(v4).not.toMatch(/1500[168]/);
  });

  it("-u '' -g '' leaves no owner rules", () => {
    expect(gen('-u', '', '-g', '', '--no-ipv6').v4).not.toContain('owner');
  });

  it('v4 CIDRs of -i/-x stay out of the ip6tables rules and v6 ones out of iptables', () => {
    const r = gen('-i', '10.0.0.0/8,fd00::/8', '-x', '10.1.0.0/16,fd00:1::/32');
    expect(r.v4).toContain('-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN\n-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\nCOMMIT');
    expect(r.v4).not.toContain('fd00');
    expect(r.v6).toContain('-A ISTIO_OUTPUT -d fd00:1::/32 -j RETURN\n-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT\nCOMMIT');
    expect(r.v6).not.toContain('10.');
  });

  it("-i '' captures no outbound traffic (no final ISTIO_REDIRECT jump)", () => {
    const lines = ruleLines(parseIptablesFlags(['-i', '']).options, 4);
    expect(lines.filter((l) => l.endsWith('-j ISTIO_REDIRECT'))).toEqual([]);
  });
});

describe('ISTIO_OUTPUT order', () => {
  it('port exclusions, passthrough source, per-uid then per-gid triples, localhost, CIDR excludes, port includes, CIDR includes', () => {
    const opts = parseIptablesFlags(['-o', '53', '-x', '10.9.0.0/16', '-q', '8080', '-i', '10.0.0.0/8', '-u', '7', '-g', '8']).options;
    const out = ruleLines(opts, 4).filter((l) => l.startsWith('-A ISTIO_OUTPUT'));
    expect(out.map((l) => l.slice('-A ISTIO_OUTPUT '.length))).toEqual([
      '-p tcp --dport 53 -j RETURN',
      '-p udp --dport 53 -j RETURN',
      '-o lo -s 127.0.0.6/32 -j RETURN',
      '-o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 7 -j ISTIO_IN_REDIRECT',
      '-o lo -m owner ! --uid-owner 7 -j RETURN',
      '-m owner --uid-owner 7 -j RETURN',
      '-o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 8 -j ISTIO_IN_REDIRECT',
      '-o lo -m owner ! --gid-owner 8 -j RETURN',
      '-m owner --gid-owner 8 -j RETURN',
      '-d 127.0.0.1/32 -j RETURN',
      '-d 10.9.0.0/16 -j RETURN',
      '-p tcp --dport 8080 -j ISTIO_REDIRECT',
      '-d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
  });

  it('the built-in chain jumps come after the fixed chains, PREROUTING before OUTPUT', () => {
    const lines = ruleLines(parseIptablesFlags([]).options, 4);
    const pre = lines.indexOf('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    const out = lines.indexOf('-A OUTPUT -j ISTIO_OUTPUT');
    expect(pre).toBe(3);
    expect(out).toBeGreaterThan(pre);
  });
});

// A trimmed `iptables-save -t nat` of a pod with capture applied (nft backend's normalised form).
const SAVED = `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_OUTPUT_DNS - [0:0]
:ISTIO_REDIRECT - [0:0]
:OTHER - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p udp -j OTHER
-A OUTPUT -j ISTIO_OUTPUT
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS
COMMIT
# Completed
`;

describe('iptables-save handling', () => {
  it('parseNatState finds user chains and the built-in jumps into ISTIO_* chains', () => {
    expect(parseNatState(SAVED)).toEqual({
      chains: ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_OUTPUT_DNS', 'ISTIO_REDIRECT', 'OTHER'],
      istioJumps: ['PREROUTING -p tcp -j ISTIO_INBOUND', 'OUTPUT -j ISTIO_OUTPUT', 'OUTPUT -p tcp -j ISTIO_OUTPUT'],
    });
  });

  it('ignores other tables', () => {
    expect(parseNatState('*raw\n:ISTIO_X - [0:0]\n-A OUTPUT -j ISTIO_X\nCOMMIT\n')).toEqual({ chains: [], istioJumps: [] });
  });

  it('withJumpRemoval deletes the existing jumps before the first rule, in the same commit', () => {
    const text = withJumpRemoval(gen('--no-ipv6').v4, SAVED);
    const lines = text.split('\n');
    expect(lines.slice(0, 8)).toEqual([
      ...HEAD,
      '-D PREROUTING -p tcp -j ISTIO_INBOUND',
      '-D OUTPUT -j ISTIO_OUTPUT',
      '-D OUTPUT -p tcp -j ISTIO_OUTPUT',
    ]);
    expect(lines.filter((l) => l === 'COMMIT')).toHaveLength(1);
    expect(withJumpRemoval('*nat\nCOMMIT\n', '')).toBe('*nat\nCOMMIT\n');
  });

  it('cleanupRules removes the jumps, flushes then deletes every ISTIO_* chain, keeps others', () => {
    expect(cleanupRules(SAVED)).toBe(
      [
        '*nat',
        '-D PREROUTING -p tcp -j ISTIO_INBOUND',
        '-D OUTPUT -j ISTIO_OUTPUT',
        '-D OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-F ISTIO_INBOUND',
        '-F ISTIO_IN_REDIRECT',
        '-F ISTIO_OUTPUT',
        '-F ISTIO_OUTPUT_DNS',
        '-F ISTIO_REDIRECT',
        '-X ISTIO_INBOUND',
        '-X ISTIO_IN_REDIRECT',
        '-X ISTIO_OUTPUT',
        '-X ISTIO_OUTPUT_DNS',
        '-X ISTIO_REDIRECT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('cleanupRules is null when nothing is set up', () => {
    expect(cleanupRules('*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n')).toBeNull();
    expect(cleanupRules('')).toBeNull();
  });
});
