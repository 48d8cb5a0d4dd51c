/**
 * STRICT_DNS resolution (Envoy StrictDnsClusterImpl).
 *
 * Every endpoint whose address is a host name is resolved to all of its addresses; each address
 * becomes an EndpointSpec with the original port, weight, locality, priority and health
 * status. IP literals pass through unchanged. Names are re-resolved every `refreshMs` (an
 * unref'd timer, started after the previous round finished).
 *
 * - A failed lookup keeps the addresses that name had before (Envoy keeps the last good
 *   hosts) and is reported through `onError`; a name that never resolved contributes nothing.
 * - `onUpdate` runs after the first round, then only when the resolved set changed. Addresses
 *   of one name are sorted, so a DNS server that rotates its answers does not cause updates.
 * - Family (Envoy dns_lookup_family): V4_ONLY / V6_ONLY ask for that family; AUTO prefers IPv6
 *   and falls back to IPv4; V4_PREFERRED the reverse; ALL keeps both.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { ClusterSpec, EndpointSpec } from '../../config/snapshot.js';

export type DnsLookupFamily = ClusterSpec['dnsLookupFamily'];

export interface DnsResolverOptions {
  refreshMs: number;
  family: DnsLookupFamily;
  onUpdate: (resolved: EndpointSpec[]) => void;
  onError?: (host: string, err: Error) => void;
  /** Injectable for tests; defaults to dns.promises.lookup. */
  lookup?: DnsLookup;
}

// === impl DnsResolver ===

export class DnsResolver {
  private readonly endpoints: readonly EndpointSpec[];
  private readonly opts: DnsResolverOptions;
  private readonly lookup: DnsLookup;
  /** Host name → its last good addresses (sorted). */
  private readonly lastGood = new Map<string, string[]>();
  private lastSignature: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Bumped by stop() so a round in flight is ignored when it lands. */
  private generation = 0;

  constructor(endpoints: readonly EndpointSpec[], opts: DnsResolverOptions) {
    this.endpoints = endpoints;
    this.opts = opts;
    this.lookup = opts.lookup ?? dns.promises.lookup;
  }

  /** Resolves once the first round is done (and onUpdate was called with its result). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const gen = this.generation;
    await this.resolveOnce();
    if (this.running && gen === this.generation) this.scheduleNext();
  }

  stop(): void {
    this.running = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The endpoints as last reported to onUpdate ([] before the first round). */
  get current(): EndpointSpec[] {
    return this.expand();
  }

  private scheduleNext(): void {
    this.timer = setTimeout(this.onTimer, Math.max(1, this.opts.refreshMs));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    const gen = this.generation;
    void this.resolveOnce().then(() => {
      if (this.running && gen === this.generation) this.scheduleNext();
    });
  };

  /** One round: resolve every distinct name, then report if the result changed. */
  private async resolveOnce(): Promise<void> {
    const gen = this.generation;
    const names = new Set<string>();
    for (const ep of this.endpoints) if (net.isIP(ep.address) === 0) names.add(ep.address);
    const results = await Promise.all([...names].map((name) => this.resolveName(name)));
    if (gen !== this.generation) return;
    for (const [name, addrs, err] of results) {
      if (err) this.opts.onError?.(name, err);
      else this.lastGood.set(name, addrs);
    }
    const resolved = this.expand();
    const sig = signature(resolved);
    if (sig === this.lastSignature) return;
    this.lastSignature = sig;
    this.opts.onUpdate(resolved);
  }

  private async resolveName(name: string): Promise<[string, string[], Error | null]> {
    try {
      return [name, await lookupAddresses(this.lookup, name, this.opts.family), null];
    } catch (err) {
      return [name, [], err instanceof Error ? err : new Error(String(err))];
    }
  }

  private expand(): EndpointSpec[] {
    const out: EndpointSpec[] = [];
    for (const ep of this.endpoints) {
      if (net.isIP(ep.address) !== 0) {
        out.push(ep);
        continue;
      }
      const addrs = this.lastGood.get(ep.address);
      if (addrs) for (const address of addrs) out.push({ ...ep, address });
    }
    return out;
  }
}

export type DnsLookup = typeof dns.promises.lookup;

/**
 * The one DNS lookup of the clusters (STRICT_DNS / LOGICAL_DNS resolvers and the dynamic forward
 * proxy's DNS cache): the system resolver (getaddrinfo, so /etc/hosts too) asked for `family`,
 * answered with the distinct addresses of that family, sorted. Rejects when the name does not
 * resolve (ENOTFOUND...).
 */
export async function lookupAddresses(lookup: DnsLookup, name: string, fam: DnsLookupFamily): Promise<string[]> {
  const family = fam === 'V4_ONLY' ? 4 : fam === 'V6_ONLY' ? 6 : 0;
  const answers = await lookup(name, { all: true, family });
  return pickFamily(answers, fam);
}

/** Distinct addresses of the wanted family, sorted. */
function pickFamily(answers: readonly dns.LookupAddress[], fam: DnsLookupFamily): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const a of answers) {
    const list = a.family === 6 || net.isIPv6(a.address) ? v6 : v4;
    if (!list.includes(a.address)) list.push(a.address);
  }
  v4.sort();
  v6.sort();
  switch (fam) {
    case 'V4_ONLY':
      return v4;
    case 'V6_ONLY':
      return v6;
    case 'AUTO':
      return v6.length > 0 ? v6 : v4;
    case 'V4_PREFERRED':
      return v4.length > 0 ? v4 : v6;
    case 'ALL':
    default:
      return v4.concat(v6);
  }
}

function signature(eps: readonly EndpointSpec[]): string {
  let s = '';
  for (const e of eps) s += `${e.address}|${e.port}|${e.weight}|${e.priority}|${e.healthStatus};`;
  return s;
}
