/**
 * Writes copied connections as classic libpcap files (magic 0xa1b2c3d4, LINKTYPE_ETHERNET).
 *
 * The traffic path only appends small entries to an in-memory queue (`open`, `data`, `close`);
 * frames are synthesised and written later, from setImmediate, to a file opened with
 * fs.promises, so a slow disk never slows a connection. Past `maxQueueBytes` of queued payload,
 * further packets of the connection that hit the bound are dropped (counted), not buffered.
 *
 * Files are `tcpcopy-<ISO 8601 basic time>-<n>.pcap` in `directory`. A file is closed before it
 * would grow past `maxFileSize`; the next one starts with a re-synthesised handshake for every
 * connection still open, so each file reads on its own. When the next write would take the
 * total past `diskBudget`, the writer stops for good (`stopped` = 'disk_budget').
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  frameLength,
  pcapFileHeader,
  PCAP_FILE_HEADER,
  PCAP_RECORD_HEADER,
  PcapFlow,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_SYN,
  writeFrame,
  writeRecordHeader,
  type Endpoints,
  type Segment,
} from './packets.js';

/** Largest payload put in one queue entry, so one entry's frames always fit in a file. */
export const MAX_ENTRY_PAYLOAD = 64 * 1024;
/** Payload rendered before the writer yields to the event loop (by awaiting a write). */
const BATCH_BYTES = 256 * 1024;
/** Accounting cost of an entry besides its payload. */
const ENTRY_OVERHEAD = 64;

export type StopReason = 'disk_budget' | 'write_error';

export interface PcapWriterOptions {
  readonly directory: string;
  readonly maxFileSize: number;
  readonly diskBudget: number;
  /** Payload queued but not yet written, at most (default 8 MiB). */
  readonly maxQueueBytes?: number;
  /** TCP payload per synthesised segment (default 1400). */
  readonly segmentSize?: number;
  /** Wall clock in ms, for file names (default Date.now). */
  readonly now?: () => number;
  /** Random in [0,1), for initial sequence numbers (default Math.random). */
  readonly random?: () => number;
}

/** Narrow callbacks to the owner (no back-reference). */
export interface PcapWriterEvents {
  /** Payload bytes that reached a file. */
  onWritten?(payloadBytes: number): void;
  /** Packets dropped because the queue was full. */
  onDropped?(packets: number): void;
  /** The writer stopped for good; called once. */
  onStopped?(reason: StopReason, detail: string): void;
  /** A new file was opened. */
  onFile?(file: string): void;
}

const OPEN = 0;
const DATA_FROM_CLIENT = 1;
const DATA_FROM_SERVER = 2;
const CLOSE = 3;
const FORGET = 4;

interface Entry {
  readonly kind: number;
  readonly flow: PcapFlow;
  readonly ts: number;
  readonly payload: Buffer | null;
}

export interface PcapWriterStats {
  files: number;
  currentFile: string | null;
  diskBytes: number;
  queuedBytes: number;
  droppedPackets: number;
  stopped: StopReason | null;
}

export class PcapWriter {
  private readonly maxQueueBytes: number;
  private readonly segmentSize: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private queue: Entry[] = [];
  private queuedBytes = 0;
  private readonly live = new Set<PcapFlow>();
  private scheduled = false;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private fh: FileHandle | null = null;
  private file: string | null = null;
  private fileBytes = 0;
  private diskBytes = 0;
  private files = 0;
  private fileSeq = 0;
  private dirReady = false;
  private droppedPackets = 0;
  private stopReason: StopReason | null = null;
  /** end() was called: nothing more is accepted. */
  private ending = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly opts: PcapWriterOptions,
    private readonly events: PcapWriterEvents = {},
  ) {
    this.maxQueueBytes = opts.maxQueueBytes ?? 8 * 1024 * 1024;
    this.segmentSize = Math.max(1, Math.min(opts.segmentSize ?? 1400, 65_535 - 60 - 40));
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  get stopped(): StopReason | null {
    return this.stopReason;
  }

  stats(): PcapWriterStats {
    return {
      files: this.files,
      currentFile: this.file,
      diskBytes: this.diskBytes,
      queuedBytes: this.queuedBytes,
      droppedPackets: this.droppedPackets,
      stopped: this.stopReason,
    };
  }

  // === traffic side: cheap, synchronous, never touches the disk ===

  /** Start a connection: its SYN / SYN-ACK / ACK are written at `ts` (ms since the epoch). */
  open(ends: Endpoints, ts: number): PcapFlow {
    const flow = new PcapFlow(ends, this.random);
    this.push({ kind: OPEN, flow, ts, payload: null });
    return flow;
  }

  /** Payload seen in one direction. The buffer must not change afterwards (copy it first). False when dropped. */
  data(flow: PcapFlow, fromClient: boolean, payload: Buffer, ts: number): boolean {
    if (this.stopReason !== null || this.ending || payload.length === 0) return false;
    if (flow.dropping || this.queuedBytes > this.maxQueueBytes) {
      flow.dropping = true;
      this.drop(Math.ceil(payload.length / this.segmentSize));
      return false;
    }
    const kind = fromClient ? DATA_FROM_CLIENT : DATA_FROM_SERVER;
    for (let at = 0; at < payload.length; at += MAX_ENTRY_PAYLOAD) {
      this.push({ kind, flow, ts, payload: payload.subarray(at, Math.min(payload.length, at + MAX_ENTRY_PAYLOAD)) });
    }
    return true;
  }

  /** The connection ended: a FIN exchange is written (unless its packets are being dropped). */
  close(flow: PcapFlow, ts: number): void {
    if (flow.dropping) {
      this.drop(3);
      this.push({ kind: FORGET, flow, ts, payload: null });
    } else this.push({ kind: CLOSE, flow, ts, payload: null });
  }

  /** Resolves when everything queued so far is on disk (or dropped because the writer stopped). */
  flushed(): Promise<void> {
    if (!this.running && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Write what is queued, then close the file; later calls of open/data/close are ignored. */
  async end(): Promise<void> {
    this.ending = true;
    await this.flushed();
    await this.closeFile();
  }

  private push(e: Entry): void {
    if (this.stopReason !== null || this.ending) return;
    this.queue.push(e);
    this.queuedBytes += ENTRY_OVERHEAD + (e.payload?.length ?? 0);
    if (!this.scheduled && !this.running) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.pump();
      });
    }
  }

  private drop(packets: number): void {
    this.droppedPackets += packets;
    this.events.onDropped?.(packets);
  }

  // === disk side ===

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && this.stopReason === null) {
        const batch = this.queue;
        this.queue = [];
        let rendered = 0;
        for (const e of batch) {
          this.queuedBytes -= ENTRY_OVERHEAD + (e.payload?.length ?? 0);
          if (this.stopReason !== null) continue;
          await this.render(e);
          rendered += ENTRY_OVERHEAD + (e.payload?.length ?? 0);
          if (rendered >= BATCH_BYTES) {
            rendered = 0;
            await this.writePending();
          }
        }
        await this.writePending();
      }
    } catch (err) {
      this.stop('write_error', (err as Error).message);
    } finally {
      this.running = false;
      if (this.stopReason !== null) {
        this.queue = [];
        this.queuedBytes = 0;
        if (this.stopReason === 'write_error') {
          this.pending = [];
          this.pendingBytes = 0;
        }
        await this.closeFile().catch(() => undefined);
      }
      if (this.queue.length > 0) void this.pump();
      else {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  private stop(reason: StopReason, detail: string): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.events.onStopped?.(reason, detail);
  }

  /** Frame bytes (with record headers) that an entry produces. */
  private entrySize(e: Entry): number {
    const v6 = e.flow.addr.v6;
    switch (e.kind) {
      case OPEN:
        return this.handshakeSize(v6);
      case CLOSE:
        return 3 * (PCAP_RECORD_HEADER + frameLength(v6, 0));
      case FORGET:
        return 0;
      default: {
        const len = e.payload!.length;
        const segs = Math.ceil(len / this.segmentSize);
        return segs * (PCAP_RECORD_HEADER + frameLength(v6, 0)) + len;
      }
    }
  }

  private handshakeSize(v6: boolean): number {
    return 2 * (PCAP_RECORD_HEADER + frameLength(v6, 0, true)) + PCAP_RECORD_HEADER + frameLength(v6, 0);
  }

  private async render(e: Entry): Promise<void> {
    const size = this.entrySize(e);
    if (size === 0) {
      this.live.delete(e.flow);
      return;
    }
    if (e.kind !== OPEN && !e.flow.live) return; // its handshake was never written
    const rotate = this.fh === null || (this.fileBytes + size > this.opts.maxFileSize && this.fileBytes > PCAP_FILE_HEADER);
    if (this.diskBytes + size + (rotate ? PCAP_FILE_HEADER : 0) > this.opts.diskBudget) {
      this.stop('disk_budget', `disk budget of ${this.opts.diskBudget} bytes reached after ${this.diskBytes} bytes in ${this.files} file(s)`);
      return;
    }
    if (rotate) await this.nextFile(e.ts, size);
    const f = e.flow;
    switch (e.kind) {
      case OPEN:
        this.handshake(f, e.ts);
        f.live = true;
        this.live.add(f);
        break;
      case CLOSE:
        this.segment(f, e.ts, true, f.clientSeq, f.serverSeq, TCP_FIN | TCP_ACK, null);
        f.clientSeq = (f.clientSeq + 1) >>> 0;
        this.segment(f, e.ts, false, f.serverSeq, f.clientSeq, TCP_FIN | TCP_ACK, null);
        f.serverSeq = (f.serverSeq + 1) >>> 0;
        this.segment(f, e.ts, true, f.clientSeq, f.serverSeq, TCP_ACK, null);
        f.live = false;
        this.live.delete(f);
        break;
      default: {
        const fromClient = e.kind === DATA_FROM_CLIENT;
        const p = e.payload!;
        for (let at = 0; at < p.length; at += this.segmentSize) {
          const chunk = p.subarray(at, Math.min(p.length, at + this.segmentSize));
          const last = at + this.segmentSize >= p.length;
          const flags = TCP_ACK | (last ? TCP_PSH : 0);
          if (fromClient) {
            this.segment(f, e.ts, true, f.clientSeq, f.serverSeq, flags, chunk);
            f.clientSeq = (f.clientSeq + chunk.length) >>> 0;
          } else {
            this.segment(f, e.ts, false, f.serverSeq, f.clientSeq, flags, chunk);
            f.serverSeq = (f.serverSeq + chunk.length) >>> 0;
          }
        }
        this.events.onWritten?.(p.length);
      }
    }
  }

  /** SYN, SYN-ACK, ACK ending at the flow's current sequence numbers (so data continues from them). */
  private handshake(f: PcapFlow, ts: number): void {
    const c = (f.clientSeq - 1) >>> 0;
    const s = (f.serverSeq - 1) >>> 0;
    this.segment(f, ts, true, c, 0, TCP_SYN, null, true);
    this.segment(f, ts, false, s, f.clientSeq, TCP_SYN | TCP_ACK, null, true);
    this.segment(f, ts, true, f.clientSeq, f.serverSeq, TCP_ACK, null);
  }

  private segment(f: PcapFlow, ts: number, fromClient: boolean, seq: number, ack: number, flags: number, payload: Buffer | null, synOptions = false): void {
    const len = frameLength(f.addr.v6, payload?.length ?? 0, synOptions);
    const rec = Buffer.allocUnsafe(PCAP_RECORD_HEADER + len);
    writeRecordHeader(rec, ts, len);
    const seg: Segment = { fromClient, seq, ack, flags, ipId: f.ipId, payload, synOptions, mss: this.segmentSize };
    f.ipId = (f.ipId + 1) & 0xffff;
    writeFrame(rec, PCAP_RECORD_HEADER, f, seg);
    this.emit(rec);
  }

  private emit(rec: Buffer): void {
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    this.fileBytes += rec.length;
    this.diskBytes += rec.length;
  }

  private async writePending(): Promise<void> {
    if (this.fh !== null) await this.writeAll(this.fh);
  }

  private async writeAll(fh: FileHandle): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
  }

  /** Close the current file and start the next; connections still open get a fresh handshake. */
  private async nextFile(ts: number, reserve: number): Promise<void> {
    await this.writePending();
    await this.closeFile();
    if (!this.dirReady) {
      await fsp.mkdir(this.opts.directory, { recursive: true });
      this.dirReady = true;
    }
    const stamp = new Date(this.now()).toISOString().replace(/[-:]/g, '');
    for (;;) {
      const name = path.join(this.opts.directory, `tcpcopy-${stamp}-${++this.fileSeq}.pcap`);
      try {
        this.fh = await fsp.open(name, 'wx');
        this.file = name;
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    this.files++;
    this.fileBytes = 0;
    this.emit(pcapFileHeader());
    this.events.onFile?.(this.file!);
    // Re-open connections that continue in this file, as far as half the file and the budget allow.
    const room = Math.min(this.opts.maxFileSize / 2 - reserve, this.opts.diskBudget - this.diskBytes - reserve);
    let used = 0;
    for (const f of this.live) {
      const n = this.handshakeSize(f.addr.v6);
      if (used + n > room) break;
      used += n;
      this.handshake(f, ts);
    }
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.file = null;
    if (fh === null) return;
    try {
      await this.writeAll(fh);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}
