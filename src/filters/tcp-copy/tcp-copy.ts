/**
 * tcp-copy (after Layotto's TCP copy): samples connections and writes what they carry as pcap
 * files with the connection's real 4-tuple, for tshark / Wireshark.
 *
 * The proxy calls `attach()` once per accepted connection; a sampled connection gets a
 * ConnectionTap whose three callbacks (already bound, so they can be passed as listeners) only
 * copy the bytes into the writer's in-memory queue. Everything else happens off the traffic path.
 *
 * Sampling, in order: enabled → destination port in `ports` ([] = all) → random() < sampleRate →
 * at most `maxPerSecond` sampled connections per wall-clock second → the disk budget is not spent.
 * A sampled connection is copied up to `maxBytesPerConnection` payload bytes (both directions
 * together); the rest of it passes uncopied and its FIN exchange is still written.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TcpCopyConfig } from './config.js';
import { tcpCopyMetrics, type TcpCopyDecision, type TcpCopyMetrics } from './metrics.js';
import type { PcapFlow } from './packets.js';
import { PcapWriter, type StopReason } from './pcap-writer.js';

/** The connection as the proxy sees it: the client's address and where it was going. */
export interface ConnectionInfo {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
  /** Advisory: the frames' IP version follows the addresses (IPv4-mapped IPv6 is written as IPv4). */
  readonly family: 4 | 6;
}

/** Bytes of one copied connection. The methods are bound: `socket.on('data', tap.onDownstreamData)` works. */
export interface ConnectionTap {
  /** Client → server bytes. */
  onDownstreamData(buf: Buffer): void;
  /** Server → client bytes. */
  onUpstreamData(buf: Buffer): void;
  /** The connection ended (either side); further data is ignored. Idempotent. */
  onClose(): void;
}

export interface TcpCopyDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Wall clock in ms (fractions allowed); default performance.timeOrigin + performance.now(). */
  readonly now?: () => number;
  /** Uniform in [0,1); default Math.random. */
  readonly random?: () => number;
  /** Writer queue bound in payload bytes (default 8 MiB). */
  readonly maxQueueBytes?: number;
  /** TCP payload per synthesised segment (default 1400). */
  readonly segmentSize?: number;
}

export interface TcpCopyStatus {
  enabled: boolean;
  sampleRate: number;
  maxPerSecond: number;
  maxBytesPerConnection: number;
  diskBudget: number;
  maxFileSize: number;
  directory: string;
  ports: number[];
  connections: { sampled: number; skipped: number; budgetExhausted: number };
  skippedBy: { port: number; sampleRate: number; maxPerSecond: number; stopped: number };
  activeConnections: number;
  truncatedConnections: number;
  bytesCopied: number;
  droppedPackets: number;
  files: number;
  currentFile: string | null;
  diskBytes: number;
  queuedBytes: number;
  /** Why copying stopped for good, if it did. */
  stopped: { reason: StopReason; detail: string } | null;
}

const defaultNow = (): number => performance.timeOrigin + performance.now();

export class TcpCopy {
  private readonly cfg: TcpCopyConfig;
  private readonly logger: Logger;
  private readonly metrics: TcpCopyMetrics;
  /** Label children resolved once: attach() runs for every accepted connection. */
  private readonly decided: Readonly<Record<TcpCopyDecision, { inc(): void }>>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly ports: ReadonlySet<number>;
  private enabled: boolean;
  private sampleRate: number;
  private writer: PcapWriter | null = null;
  private closing = false;
  private windowSec = -1;
  private windowCount = 0;
  private stoppedWith: { reason: StopReason; detail: string } | null = null;
  private readonly counts = { sampled: 0, skipped: 0, budgetExhausted: 0 };
  private readonly skippedBy = { port: 0, sampleRate: 0, maxPerSecond: 0, stopped: 0 };
  private active = 0;
  private truncated = 0;
  private bytesCopied = 0;
  private dropped = 0;

  constructor(
    cfg: TcpCopyConfig,
    private readonly deps: TcpCopyDeps,
  ) {
    this.cfg = cfg;
    this.logger = deps.logger;
    this.metrics = tcpCopyMetrics(deps.registry);
    const c = this.metrics.connections;
    this.decided = { sampled: c.labels('sampled'), skipped: c.labels('skipped'), budget_exhausted: c.labels('budget_exhausted') };
    this.now = deps.now ?? defaultNow;
    this.random = deps.random ?? Math.random;
    this.ports = new Set(cfg.ports);
    this.enabled = cfg.enabled;
    this.sampleRate = cfg.sampleRate;
  }

  /** Switch copying of new connections on or off, optionally with a new sample rate (0..1). */
  setEnabled(on: boolean, rate?: number): void {
    if (rate !== undefined && !(Number.isFinite(rate) && rate >= 0 && rate <= 1)) {
      throw new RangeError(`rate: expected a probability from 0 to 1, got ${rate}`);
    }
    this.enabled = on && !this.closing;
    if (rate !== undefined) this.sampleRate = rate;
    this.logger.info({ enabled: this.enabled, sampleRate: this.sampleRate, stopped: this.stoppedWith?.reason ?? null }, 'tcp-copy switched');
  }

  /** A tap for a sampled connection, null otherwise. Cheap when disabled. */
  attach(conn: ConnectionInfo): ConnectionTap | null {
    if (!this.enabled) return null;
    if (this.ports.size > 0 && !this.ports.has(conn.dstPort)) return this.skip('port');
    if (!(this.random() < this.sampleRate)) return this.skip('sampleRate');
    const ts = this.now();
    const sec = Math.floor(ts / 1000);
    if (sec !== this.windowSec) {
      this.windowSec = sec;
      this.windowCount = 0;
    }
    if (this.windowCount >= this.cfg.maxPerSecond) return this.skip('maxPerSecond');
    if (this.stoppedWith !== null) {
      if (this.stoppedWith.reason !== 'disk_budget') return this.skip('stopped');
      this.counts.budgetExhausted++;
      this.decided.budget_exhausted.inc();
      return null;
    }
    this.windowCount++;
    this.counts.sampled++;
    this.decided.sampled.inc();
    const writer = this.writer ?? (this.writer = this.createWriter());
    const flow = writer.open(conn, ts);
    this.active++;
    return new Tap(writer, flow, this.cfg.maxBytesPerConnection, this.now, {
      truncated: () => this.truncated++,
      closed: () => this.active--,
    });
  }

  status(): TcpCopyStatus {
    const w = this.writer?.stats();
    return {
      enabled: this.enabled,
      sampleRate: this.sampleRate,
      maxPerSecond: this.cfg.maxPerSecond,
      maxBytesPerConnection: this.cfg.maxBytesPerConnection,
      diskBudget: this.cfg.diskBudget,
      maxFileSize: this.cfg.maxFileSize,
      directory: this.cfg.directory,
      ports: [...this.cfg.ports],
      connections: { ...this.counts },
      skippedBy: { ...this.skippedBy },
      activeConnections: this.active,
      truncatedConnections: this.truncated,
      bytesCopied: this.bytesCopied,
      droppedPackets: this.dropped,
      files: w?.files ?? 0,
      currentFile: w?.currentFile ?? null,
      diskBytes: w?.diskBytes ?? 0,
      queuedBytes: w?.queuedBytes ?? 0,
      stopped: this.stoppedWith,
    };
  }

  /** Resolves when everything copied so far is on disk. */
  flushed(): Promise<void> {
    return this.writer?.flushed() ?? Promise.resolve();
  }

  /** Stop sampling, write what is queued and close the current file. */
  async close(): Promise<void> {
    this.closing = true;
    this.enabled = false;
    await this.writer?.end();
  }

  private skip(why: keyof TcpCopy['skippedBy']): null {
    this.skippedBy[why]++;
    this.counts.skipped++;
    this.decided.skipped.inc();
    return null;
  }

  private createWriter(): PcapWriter {
    return new PcapWriter(
      {
        directory: this.cfg.directory,
        maxFileSize: this.cfg.maxFileSize,
        diskBudget: this.cfg.diskBudget,
        maxQueueBytes: this.deps.maxQueueBytes,
        segmentSize: this.deps.segmentSize,
        now: () => Math.floor(this.now()),
      },
      {
        onWritten: (n) => {
          this.bytesCopied += n;
          this.metrics.bytes.inc(n);
        },
        onDropped: (n) => {
          this.dropped += n;
          this.metrics.droppedPackets.inc(n);
        },
        onStopped: (reason, detail) => {
          this.stoppedWith = { reason, detail };
          this.logger.warn({ reason, detail, directory: this.cfg.directory }, 'tcp-copy stopped copying connections');
        },
        onFile: (file) => this.logger.info({ file }, 'tcp-copy writing a new pcap file'),
      },
    );
  }
}

// === impl Tap ===

interface TapEvents {
  truncated(): void;
  closed(): void;
}

class Tap implements ConnectionTap {
  private remaining: number;
  private done = false;
  private cut = false;

  constructor(
    private readonly writer: PcapWriter,
    private readonly flow: PcapFlow,
    maxBytes: number,
    private readonly now: () => number,
    private readonly events: TapEvents,
  ) {
    this.remaining = maxBytes;
  }

  readonly onDownstreamData = (buf: Buffer): void => this.copy(true, buf);
  readonly onUpstreamData = (buf: Buffer): void => this.copy(false, buf);

  readonly onClose = (): void => {
    if (this.done) return;
    this.done = true;
    this.writer.close(this.flow, this.now());
    this.events.closed();
  };

  private copy(fromClient: boolean, buf: Buffer): void {
    if (this.done || buf.length === 0 || this.writer.stopped !== null) return;
    if (this.remaining <= 0) {
      if (!this.cut) {
        this.cut = true;
        this.events.truncated();
      }
      return;
    }
    const n = Math.min(buf.length, this.remaining);
    this.remaining -= n;
    // Copied: the caller may reuse its buffer once this returns.
    this.writer.data(this.flow, fromClient, Buffer.from(buf.subarray(0, n)), this.now());
    if (n < buf.length && !this.cut) {
      this.cut = true;
      this.events.truncated();
    }
  }
}
