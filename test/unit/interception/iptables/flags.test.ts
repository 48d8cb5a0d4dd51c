import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPTURE_OPTIONS, FlagError, parseIptablesFlags } from '../../../../src/interception/iptables/flags.js';

const opts = (...argv: string[]) => parseIptablesFlags(argv).options;
const fails = (argv: string[], message: RegExp): void => {
  let err: unknown;
  try {
    parseIptablesFlags(argv);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FlagError);
  expect((err as Error).message).toMatch(message);
};

describe('parseIptablesFlags — defaults', () => {
  it("no flags: the injector's sidecar invocation, IPv4 and IPv6", () => {
    const cmd = parseIptablesFlags([]);
    expect(cmd).toEqual({ action: 'apply', dryRun: false, options: DEFAULT_CAPTURE_OPTIONS });
    expect(cmd.options).toMatchObject({
      outboundPort: 15001,
      inboundPort: 15006,
      tunnelPort: 15008,
      proxyUids: [1337],
      proxyGids: [1337],
      mode: 'REDIRECT',
      inboundPorts: '*',
      inboundPortsExclude: [15090, 15021, 15020, 15000],
      outboundCidrsInclude: '*',
      outboundCidrsExclude: [],
      outboundPortsExclude: [],
      outboundPortsInclude: [],
      ipv6: true,
    });
  });
});

describe('parseIptablesFlags — every flag, short and long', () => {
  const cases: [string, string, string, Record<string, unknown>][] = [
    ['-p', '--envoy-port', '16001', { outboundPort: 16001 }],
    ['-z', '--inbound-capture-port', '16006', { inboundPort: 16006 }],
    ['-e', '--inbound-tunnel-port', '16008', { tunnelPort: 16008 }],
    ['-u', '--proxy-uid', '3,4', { proxyUids: [3, 4] }],
    ['-g', '--proxy-gid', '0', { proxyGids: [0] }],
    ['-m', '--istio-inbound-interception-mode', 'REDIRECT', { mode: 'REDIRECT' }],
    ['-b', '--istio-inbound-ports', '8080,9090', { inboundPorts: [8080, 9090] }],
    ['-d', '--istio-local-exclude-ports', '22', { inboundPortsExclude: [22] }],
    ['-i', '--istio-service-cidr', '10.0.0.0/8,fd00::/8', { outboundCidrsInclude: [{ family: 4, text: '10.0.0.0/8', loopback: false }, { family: 6, text: 'fd00::/8', loopback: false }] }],
    ['-x', '--istio-service-exclude-cidr', '169.254.169.254/32', { outboundCidrsExclude: [{ family: 4, text: '169.254.169.254/32', loopback: false }] }],
    ['-o', '--istio-local-outbound-ports-exclude', '53,5432', { outboundPortsExclude: [53, 5432] }],
    ['-q', '--istio-outbound-ports', '443', { outboundPortsInclude: [443] }],
  ];
  for (const [short, long, value, expected] of cases) {
    it(`${short} / ${long}`, () => {
      expect(opts(short, value)).toMatchObject(expected);
      expect(opts(long, value)).toMatchObject(expected);
      expect(opts(`${long}=${value}`)).toMatchObject(expected);
      expect(opts(`${short}${value}`)).toMatchObject(expected);
      expect(opts(`${short}=${value}`)).toMatchObject(expected);
    });
  }

  it('--istio-local-outbound-ports-include is an alias of -q', () => {
    expect(opts('--istio-local-outbound-ports-include', '80,443').outboundPortsInclude).toEqual([80, 443]);
  });

  it("'*' and '' for -b and -i; empty items and blanks ignored", () => {
    expect(opts('-b', '*').inboundPorts).toBe('*');
    expect(opts('-b', '').inboundPorts).toEqual([]);
    expect(opts('-i', '*').outboundCidrsInclude).toBe('*');
    expect(opts('-i', '').outboundCidrsInclude).toEqual([]);
    expect(opts('-d', '').inboundPortsExclude).toEqual([]);
    expect(opts('-d', ' 6000, 7000, ').inboundPortsExclude).toEqual([6000, 7000]);
    expect(opts('-u', '').proxyUids).toEqual([]);
  });

  it('the last occurrence of a flag wins', () => {
    expect(opts('-p', '1', '-p', '2').outboundPort).toBe(2);
  });

  it('mode is case-insensitive', () => {
    expect(opts('-m', 'redirect').mode).toBe('REDIRECT');
  });

  it('loopback CIDRs are flagged; IPv6 text is lower-cased', () => {
    expect(opts('-i', '127.1.2.3/32,::1/128,FD00::/8').outboundCidrsInclude).toEqual([
      { family: 4, text: '127.1.2.3/32', loopback: true },
      { family: 6, text: '::1/128', loopback: true },
      { family: 6, text: 'fd00::/8', loopback: false },
    ]);
  });

  it('--ipv6 / --no-ipv6 (last wins, =false accepted)', () => {
    expect(opts('--no-ipv6').ipv6).toBe(false);
    expect(opts('--no-ipv6', '--ipv6').ipv6).toBe(true);
    expect(opts('--ipv6=false').ipv6).toBe(false);
  });

  it('--dry-run / -n, --cleanup, --help / -h', () => {
    expect(parseIptablesFlags(['--dry-run'])).toMatchObject({ action: 'apply', dryRun: true });
    expect(parseIptablesFlags(['-n'])).toMatchObject({ action: 'apply', dryRun: true });
    expect(parseIptablesFlags(['--cleanup'])).toMatchObject({ action: 'cleanup', dryRun: false });
    expect(parseIptablesFlags(['--cleanup', '--dry-run'])).toMatchObject({ action: 'cleanup', dryRun: true });
    expect(parseIptablesFlags(['--help', '--cleanup']).action).toBe('help');
    expect(parseIptablesFlags(['-h']).action).toBe('help');
  });

  it('a value may start with "-" (pflag takes the next word)', () => {
    expect(() => opts('-x', '-o')).toThrow(/-x\/--istio-service-exclude-cidr: "-o" is not a CIDR/);
  });
});

describe('parseIptablesFlags — errors name the flag', () => {
  it('ports', () => {
    fails(['-p', '0'], /^-p\/--envoy-port: "0" is not a port \(1-65535\)$/);
    fails(['--inbound-capture-port', '65536'], /^-z\/--inbound-capture-port: "65536"/);
    fails(['-e', 'abc'], /-e\/--inbound-tunnel-port/);
    fails(['-b', '80,x'], /^-b\/--istio-inbound-ports: "x" is not a port/);
    fails(['-d', '80,-1'], /-d\/--istio-local-exclude-ports: "-1"/);
    fails(['-o', '70000'], /-o\/--istio-local-outbound-ports-exclude/);
    fails(['-q', '1.5'], /-q\/--istio-outbound-ports/);
    fails(['-b', '80,*'], /-b\/--istio-inbound-ports: '\*' must be the whole value/);
  });

  it('ids', () => {
    fails(['-u', 'envoy'], /^-u\/--proxy-uid: "envoy" is not a numeric user\/group id$/);
    fails(['-g', '-1'], /-g\/--proxy-gid/);
    fails(['-g', '4294967295'], /-g\/--proxy-gid/);
  });

  it('mode: TPROXY is not supported yet, others are unknown', () => {
    fails(['-m', 'TPROXY'], /^-m\/--istio-inbound-interception-mode: TPROXY is not supported yet; use REDIRECT$/);
    fails(['--istio-inbound-interception-mode', 'NAT'], /"NAT" is not an interception mode/);
  });

  it('CIDRs', () => {
    fails(['-i', '10.0.0.0'], /^-i\/--istio-service-cidr: "10.0.0.0" is not a CIDR/);
    fails(['-i', '10.0.0.0/33'], /-i\/--istio-service-cidr: "10.0.0.0\/33"/);
    fails(['-x', 'fd00::/129'], /-x\/--istio-service-exclude-cidr/);
    fails(['-x', '300.1.1.1/8'], /-x\/--istio-service-exclude-cidr/);
    fails(['-x', 'example.com/8'], /-x\/--istio-service-exclude-cidr/);
    fails(['-x', '*'], /^-x\/--istio-service-exclude-cidr: '\*' would exclude every destination/);
    fails(['-i', '*,10.0.0.0/8'], /-i\/--istio-service-cidr: '\*' must be the whole value/);
  });

  it('missing values, unknown flags, stray words, bad booleans', () => {
    fails(['-p'], /^-p needs a value$/);
    fails(['--envoy-port'], /^--envoy-port needs a value$/);
    fails(['--bogus'], /^unknown flag --bogus/);
    fails(['-Z', '1'], /^unknown flag -Z/);
    fails(['15001'], /unexpected argument "15001"/);
    fails(['--dry-run=maybe'], /--dry-run: expected true or false/);
  });

  it('istio-iptables flags we do not implement say so', () => {
    fails(['-k', 'eth1'], /^-k: istio-iptables' --kube-virt-interfaces is not supported by capa-runtime yet$/);
    fails(['--redirect-dns'], /--redirect-dns is not supported/);
    fails(['-c', 'eth0'], /--istio-exclude-interfaces is not supported/);
  });
});
