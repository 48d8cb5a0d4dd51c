/**
 * The original destination of a connection that iptables redirected to a capture listener, read
 * from the kernel (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) by the small N-API addon in `native/`.
 * When the addon is not built or cannot load (or CAPA_DISABLE_NATIVE=1), the process says so once
 * and capture listeners fall back to `x-envoy-original-dst-host`, then the Host header
 * (src/proxy/original-dst.ts).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';

export interface OriginalDst {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export interface OriginalDstError {
  readonly errno: number;
  readonly message: string;
}

/** The addon's exports (native/original_dst.c). */
export interface OriginalDstAddon {
  /** null: not redirected (ENOENT), no conntrack (ENOPROTOOPT), or a failure that lastError() explains. */
  getOriginalDst(fd: number): OriginalDst | null;
  /** The failure of this thread's last getOriginalDst call; null after a success or "not redirected". */
  lastError(): OriginalDstError | null;
  /** glibc mallopt(M_TRIM_THRESHOLD / M_TOP_PAD); false when not glibc. Absent in older builds. */
  tuneMalloc?(trimThreshold: number, topPad: number): boolean;
}

export type SocketOriginalDst = (socket: Socket) => OriginalDst | null;

/** The part of a pino logger used here. */
export interface OriginalDstLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * From dist/interception/original-dst/index.js (or src/… under vitest) up to the package root.
 * Kept as a URL relative to this module, so it holds wherever the package is installed.
 */
export const ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/original_dst.node', import.meta.url));

/** Loads the addon; throws with the loader's reason when it cannot. */
export function loadAddon(path: string = ADDON_PATH): OriginalDstAddon {
  const m = createRequire(import.meta.url)(path) as Partial<OriginalDstAddon> | null;
  if (typeof m?.getOriginalDst !== 'function' || typeof m.lastError !== 'function') {
    throw new Error(`${path} does not export getOriginalDst/lastError`);
  }
  return m as OriginalDstAddon;
}

/** The file descriptor of a connected TCP socket (libuv's TCPWrap exposes it on Unix); null otherwise. */
export function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/** Drops the v4-mapped prefix Node reports for IPv4 peers of a dual-stack (`::`) listener. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Each distinct warning once per process (every DataPlane calls loadOriginalDst). */
const warned = new Set<string>();

function warnOnce(logger: OriginalDstLogger, key: string, obj: object, msg: string): void {
  if (warned.has(key)) {
    logger.debug(obj, msg);
    return;
  }
  warned.add(key);
  logger.warn(obj, msg);
}

export interface LoadOriginalDstOptions {
  /** Defaults to process.env; CAPA_DISABLE_NATIVE=1 forces the fallback. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to ADDON_PATH. */
  readonly addonPath?: string;
  /** An already loaded addon (tests); skips loading. */
  readonly addon?: OriginalDstAddon;
}

/**
 * A function giving an accepted socket's original destination, or null when the addon is not
 * available (after one warning). The function returns null when the socket was not redirected,
 * including when the kernel reports the socket's own local address (conntrack without NAT).
 */
export function loadOriginalDst(logger: OriginalDstLogger, opts: LoadOriginalDstOptions = {}): SocketOriginalDst | null {
  const env = opts.env ?? process.env;
  const path = opts.addonPath ?? ADDON_PATH;
  let a: OriginalDstAddon | null = opts.addon ?? null;
  let reason = '';
  if (env.CAPA_DISABLE_NATIVE === '1') {
    a = null;
    reason = 'disabled by CAPA_DISABLE_NATIVE=1';
  } else if (a === null) {
    try {
      a = loadAddon(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      reason = err.code === 'MODULE_NOT_FOUND' ? `${path} not found; run npm run build:native` : String(err.message ?? e).split('\n')[0]!;
    }
  }
  if (a === null) {
    warnOnce(logger, `load:${reason}`, { addon: path }, `SO_ORIGINAL_DST addon not loaded (${reason}); capture listeners fall back to the Host header`);
    return null;
  }
  const addon = a;
  return (socket) => {
    const fd = socketFd(socket);
    if (fd === null) return null;
    const dst = addon.getOriginalDst(fd);
    if (dst === null) {
      const err = addon.lastError();
      if (err !== null) warnOnce(logger, `errno:${err.errno}`, { errno: err.errno, error: err.message }, 'SO_ORIGINAL_DST lookup failed; using the Host header for this connection');
      return null;
    }
    // Not redirected: conntrack (loaded for other reasons) reports the address we were reached on.
    if (dst.port === socket.localPort && dst.address === unmapped(socket.localAddress ?? '')) return null;
    return dst;
  };
}

/** The malloc settings the data path wants (the same as the GLIBC_TUNABLES the workers get). */
export const MALLOC_TRIM_THRESHOLD = 512 * 1024 * 1024;
export const MALLOC_TOP_PAD = 256 * 1024 * 1024;

/**
 * Applies MALLOC_TRIM_THRESHOLD / MALLOC_TOP_PAD to this process through the addon, unless the
 * environment already sets glibc malloc tunables (the operator's choice wins) or
 * CAPA_DISABLE_NATIVE=1. Without it, a process started directly (not through `npm start`) trims
 * the heap after every GC and moves 5x fewer TCP bytes. Returns what was done, for the start log.
 */
export function tuneMalloc(path: string = ADDON_PATH): 'tuned' | 'env' | 'unavailable' {
  if ((process.env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.')) return 'env';
  if (process.env.CAPA_DISABLE_NATIVE === '1') return 'unavailable';
  try {
    const a = loadAddon(path);
    return a.tuneMalloc?.(MALLOC_TRIM_THRESHOLD, MALLOC_TOP_PAD) === true ? 'tuned' : 'unavailable';
  } catch {
    return 'unavailable';
  }
}
