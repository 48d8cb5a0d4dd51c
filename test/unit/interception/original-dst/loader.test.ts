/**
 * The SO_ORIGINAL_DST addon and its loader on plain (non-redirected) loopback sockets, and the
 * fallback when the addon is disabled or missing. Redirected sockets: test/e2e/original-dst.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ADDON_PATH, MALLOC_TOP_PAD, MALLOC_TRIM_THRESHOLD, loadAddon, loadOriginalDst, socketFd, tuneMalloc, type OriginalDstAddon, type OriginalDstLogger } from '../../../../src/interception/original-dst/index.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function spyLogger(): OriginalDstLogger & { warns: string[]; debugs: string[] } {
  const warns: string[] = [];
  const debugs: string[] = [];
  return { warns, debugs, warn: (_o, m) => warns.push(m), debug: (_o, m) => debugs.push(m) };
}

interface Pair {
  server: net.Server;
  accepted: net.Socket;
  client: net.Socket;
  close(): void;
}

/** A server on `listenHost` and one connection to it from `connectHost`; resolves with the accepted socket. */
async function connectedPair(listenHost: string, connectHost: string, ipv6Only = false): Promise<Pair> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenHost, port: 0, ipv6Only }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect({ host: connectHost, port });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const accepted = await acceptedP;
  return {
    server,
    accepted,
    client,
    close() {
      client.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

function ipv6LoopbackWorks(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '::1', port: 0 }, () => s.close(() => resolve(true)));
  });
}

describe('SO_ORIGINAL_DST addon (native/original_dst.c)', () => {
  let addon: OriginalDstAddon;
  const pairs: Pair[] = [];

  beforeAll(() => {
    if (!existsSync(ADDON_PATH)) {
      // `npm ci` builds it (the install script); build it here when someone skipped that.
      execFileSync('npm', ['run', '--silent', 'build:native'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
    }
    addon = loadAddon();
  }, 150_000);

  afterAll(() => {
    for (const p of pairs) p.close();
  });

  it('is built at native/build/Release/original_dst.node and loads', () => {
    expect(existsSync(ADDON_PATH)).toBe(true);
    expect(ADDON_PATH.endsWith('/native/build/Release/original_dst.node')).toBe(true);
    expect(typeof addon.getOriginalDst).toBe('function');
    expect(typeof addon.lastError).toBe('function');
  });

  it('finds the fd of an accepted TCP socket', async () => {
    const p = await connectedPair('127.0.0.1', '127.0.0.1');
    pairs.push(p);
    const fd = socketFd(p.accepted);
    expect(fd).toBeTypeOf('number');
    expect(fd).toBeGreaterThan(2);
    expect(socketFd(new net.Socket())).toBeNull();
  });

  it('reports no original destination for a plain IPv4 loopback connection', async () => {
    const p = await connectedPair('127.0.0.1', '127.0.0.1');
    pairs.push(p);
    const raw = addon.getOriginalDst(socketFd(p.accepted)!);
    // Without conntrack: ENOENT/ENOPROTOOPT → null. With conntrack but no NAT: the address we were reached on.
    if (raw !== null) expect(raw).toEqual({ address: '127.0.0.1', port: p.accepted.localPort, family: 4 });
    expect(addon.lastError()).toBeNull();
    const get = loadOriginalDst(spyLogger(), { env: {} });
    expect(get).not.toBeNull();
    expect(get!(p.accepted)).toBeNull();
  });

  it('reports none for an IPv4 client of a dual-stack (::) listener (v4-mapped socket)', async () => {
    if (!(await ipv6LoopbackWorks())) {
      expect.fail('IPv6 loopback (::1) is not available on this machine: cannot test v4-mapped sockets');
    }
    const p = await connectedPair('::', '127.0.0.1');
    pairs.push(p);
    expect(p.accepted.localAddress).toBe('::ffff:127.0.0.1');
    const raw = addon.getOriginalDst(socketFd(p.accepted)!);
    if (raw !== null) expect(raw).toEqual({ address: '127.0.0.1', port: p.accepted.localPort, family: 4 });
    expect(addon.lastError()).toBeNull();
    expect(loadOriginalDst(spyLogger(), { env: {} })!(p.accepted)).toBeNull();
  });

  it('reports none for a plain IPv6 loopback connection', async () => {
    if (!(await ipv6LoopbackWorks())) {
      expect.fail('IPv6 loopback (::1) is not available on this machine');
    }
    const p = await connectedPair('::1', '::1', true);
    pairs.push(p);
    const raw = addon.getOriginalDst(socketFd(p.accepted)!);
    if (raw !== null) expect(raw).toEqual({ address: '::1', port: p.accepted.localPort, family: 6 });
    expect(addon.lastError()).toBeNull();
    expect(loadOriginalDst(spyLogger(), { env: {} })!(p.accepted)).toBeNull();
  });

  it('returns null and exposes errno for a descriptor that is not a socket', () => {
    const fd = openSync(fileURLToPath(import.meta.url), 'r');
    try {
      expect(addon.getOriginalDst(fd)).toBeNull();
      expect(addon.lastError()).toEqual({ errno: 88, message: expect.stringMatching(/not a socket|non-socket/i) });
    } finally {
      closeSync(fd);
    }
    expect(addon.getOriginalDst(-1)).toBeNull();
    expect(addon.lastError()?.errno).toBe(9); // EBADF
  });

  it('throws a TypeError when fd is not a number', () => {
    expect(() => (addon.getOriginalDst as (x: unknown) => unknown)('3')).toThrow(TypeError);
  });
});

describe('loadOriginalDst fallback', () => {
  it('CAPA_DISABLE_NATIVE=1 returns null and warns once per process, naming the fallback', () => {
    const log = spyLogger();
    const saved = process.env.CAPA_DISABLE_NATIVE;
    process.env.CAPA_DISABLE_NATIVE = '1';
    try {
      expect(loadOriginalDst(log)).toBeNull();
      expect(loadOriginalDst(log)).toBeNull();
    } finally {
      if (saved === undefined) delete process.env.CAPA_DISABLE_NATIVE;
      else process.env.CAPA_DISABLE_NATIVE = saved;
    }
    expect(log.warns).toEqual(['SO_ORIGINAL_DST addon not loaded (disabled by CAPA_DISABLE_NATIVE=1); capture listeners fall back to the Host header']);
    expect(log.debugs).toHaveLength(1);
  });

  it('a missing addon returns null with one warning saying how to build it', () => {
    const log = spyLogger();
    expect(loadOriginalDst(log, { env: {}, addonPath: '/nonexistent/original_dst.node' })).toBeNull();
    expect(loadOriginalDst(log, { env: {}, addonPath: '/nonexistent/original_dst.node' })).toBeNull();
    expect(log.warns).toHaveLength(1);
    expect(log.warns[0]).toMatch(/^SO_ORIGINAL_DST addon not loaded \(\/nonexistent\/original_dst\.node not found; run npm run build:native\); capture listeners fall back to the Host header$/);
  });

  it('a file that is not an addon returns null with the loader error', () => {
    const log = spyLogger();
    expect(loadOriginalDst(log, { env: {}, addonPath: fileURLToPath(import.meta.url) })).toBeNull();
    expect(log.warns).toHaveLength(1);
    expect(log.warns[0]).toMatch(/^SO_ORIGINAL_DST addon not loaded \(.+\); capture listeners fall back to the Host header$/);
  });

  it('the reader warns once per errno, then logs at debug', async () => {
    const log = spyLogger();
    const fake: OriginalDstAddon = { getOriginalDst: () => null, lastError: () => ({ errno: 22, message: 'Invalid argument' }) };
    const get = loadOriginalDst(log, { env: {}, addon: fake })!;
    const p = await connectedPair('127.0.0.1', '127.0.0.1');
    try {
      expect(get(p.accepted)).toBeNull();
      expect(get(p.accepted)).toBeNull();
    } finally {
      p.close();
    }
    expect(log.warns).toEqual(['SO_ORIGINAL_DST lookup failed; using the Host header for this connection']);
    expect(log.debugs).toHaveLength(1);
  });

  it("the reader treats the socket's own address as not redirected and passes anything else on", async () => {
    let answer: { address: string; port: number; family: 4 | 6 } | null = null;
    const fake: OriginalDstAddon = { getOriginalDst: () => answer, lastError: () => null };
    const get = loadOriginalDst(spyLogger(), { env: {}, addon: fake })!;
    const p = await connectedPair('::', '127.0.0.1');
    try {
      answer = { address: '127.0.0.1', port: p.accepted.localPort!, family: 4 };
      expect(get(p.accepted)).toBeNull();
      answer = { address: '10.9.8.7', port: 8080, family: 4 };
      expect(get(p.accepted)).toEqual({ address: '10.9.8.7', port: 8080, family: 4 });
      expect(get(new net.Socket())).toBeNull();
    } finally {
      p.close();
    }
  });
});

describe('glibc malloc tuning (tuneMalloc)', () => {
  it('the addon sets M_TRIM_THRESHOLD / M_TOP_PAD on glibc and refuses nonsense', () => {
    const a = loadAddon();
    expect(typeof a.tuneMalloc).toBe('function');
    expect(a.tuneMalloc!(MALLOC_TRIM_THRESHOLD, MALLOC_TOP_PAD)).toBe(true);
    expect(a.tuneMalloc!(-1, 0)).toBe(false);
  });

  it('is applied for a directly started process, and left alone when GLIBC_TUNABLES already sets malloc', () => {
    const prev = process.env.GLIBC_TUNABLES;
    try {
      delete process.env.GLIBC_TUNABLES;
      expect(tuneMalloc()).toBe('tuned');
      process.env.GLIBC_TUNABLES = 'glibc.malloc.trim_threshold=1048576';
      expect(tuneMalloc()).toBe('env');
      expect(tuneMalloc('/nonexistent/addon.node')).toBe('env');
      delete process.env.GLIBC_TUNABLES;
      expect(tuneMalloc('/nonexistent/addon.node')).toBe('unavailable');
    } finally {
      if (prev === undefined) delete process.env.GLIBC_TUNABLES;
      else process.env.GLIBC_TUNABLES = prev;
    }
  });
});
