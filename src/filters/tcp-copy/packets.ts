/**
 * Synthesised Ethernet + IPv4/IPv6 + TCP frames for pcap files, the classic pcap file and record
 * headers around them, and the per-connection state (addresses, sequence numbers) they are cut from. The link layer is a fake
 * Ethernet header (LINKTYPE_ETHERNET) with locally administered MAC addresses, which every pcap
 * reader decodes; IP and TCP checksums are computed, so tshark shows no checksum errors even when
 * told to validate them.
 */
import net from 'node:net';

export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_FILE_HEADER = 24;
export const PCAP_RECORD_HEADER = 16;
export const PCAP_SNAPLEN = 262_144;
export const LINKTYPE_ETHERNET = 1;
export const ETH_HEADER = 14;
export const IPV4_HEADER = 20;
export const IPV6_HEADER = 40;
export const TCP_HEADER = 20;
/** MSS (4 bytes) + NOP + window scale (3 bytes), sent on SYN and SYN-ACK. */
export const SYN_OPTIONS = 8;
/** Window scale shift advertised in the handshake: the 65535 window field means ~8 MiB. */
export const WINDOW_SHIFT = 7;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

const MAC_CLIENT = Buffer.from([0x02, 0, 0, 0, 0, 0x01]);
const MAC_SERVER = Buffer.from([0x02, 0, 0, 0, 0, 0x02]);

/** The two addresses of a connection in one IP family (IPv4-mapped IPv6 becomes IPv4). */
export interface FlowAddresses {
  readonly v6: boolean;
  readonly client: Buffer;
  readonly server: Buffer;
}

/** One TCP segment to synthesise. `fromClient` picks the direction (addresses, ports, MACs). */
export interface Segment {
  readonly fromClient: boolean;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly ipId: number;
  readonly payload: Buffer | null;
  /** Include SYN options (MSS, window scale). */
  readonly synOptions: boolean;
  readonly mss: number;
}

export interface FlowEnds {
  readonly addr: FlowAddresses;
  readonly clientPort: number;
  readonly serverPort: number;
}

/** Bytes of the frame for a segment with `payload` bytes (without the pcap record header). */
export function frameLength(v6: boolean, payload: number, synOptions = false): number {
  return ETH_HEADER + (v6 ? IPV6_HEADER : IPV4_HEADER) + TCP_HEADER + (synOptions ? SYN_OPTIONS : 0) + payload;
}

/** Write the Ethernet frame of `seg` into `out` at `at`; returns the bytes written. */
export function writeFrame(out: Buffer, at: number, ends: FlowEnds, seg: Segment): number {
  const { v6 } = ends.addr;
  const payloadLen = seg.payload?.length ?? 0;
  const tcpLen = TCP_HEADER + (seg.synOptions ? SYN_OPTIONS : 0) + payloadLen;
  const src = seg.fromClient ? ends.addr.client : ends.addr.server;
  const dst = seg.fromClient ? ends.addr.server : ends.addr.client;
  // Ethernet: destination MAC, source MAC, ethertype.
  (seg.fromClient ? MAC_SERVER : MAC_CLIENT).copy(out, at);
  (seg.fromClient ? MAC_CLIENT : MAC_SERVER).copy(out, at + 6);
  out.writeUInt16BE(v6 ? 0x86dd : 0x0800, at + 12);
  let p = at + ETH_HEADER;
  if (v6) {
    out.writeUInt32BE(0x60000000, p); // version 6, traffic class 0, flow label 0
    out.writeUInt16BE(tcpLen, p + 4);
    out[p + 6] = 6; // next header: TCP
    out[p + 7] = 64; // hop limit
    src.copy(out, p + 8);
    dst.copy(out, p + 24);
    p += IPV6_HEADER;
  } else {
    out[p] = 0x45;
    out[p + 1] = 0;
    out.writeUInt16BE(IPV4_HEADER + tcpLen, p + 2);
    out.writeUInt16BE(seg.ipId & 0xffff, p + 4);
    out.writeUInt16BE(0x4000, p + 6); // don't fragment
    out[p + 8] = 64; // TTL
    out[p + 9] = 6; // TCP
    out.writeUInt16BE(0, p + 10);
    src.copy(out, p + 12);
    dst.copy(out, p + 16);
    out.writeUInt16BE(fold(sum16(out, p, p + IPV4_HEADER, 0)), p + 10);
    p += IPV4_HEADER;
  }
  const tcp = p;
  out.writeUInt16BE(seg.fromClient ? ends.clientPort : ends.serverPort, tcp);
  out.writeUInt16BE(seg.fromClient ? ends.serverPort : ends.clientPort, tcp + 2);
  out.writeUInt32BE(seg.seq >>> 0, tcp + 4);
  out.writeUInt32BE(seg.ack >>> 0, tcp + 8);
  const hdrWords = (TCP_HEADER + (seg.synOptions ? SYN_OPTIONS : 0)) / 4;
  out[tcp + 12] = hdrWords << 4;
  out[tcp + 13] = seg.flags;
  out.writeUInt16BE(0xffff, tcp + 14); // window (scaled after the handshake)
  out.writeUInt16BE(0, tcp + 16); // checksum, below
  out.writeUInt16BE(0, tcp + 18); // urgent pointer
  p = tcp + TCP_HEADER;
  if (seg.synOptions) {
    out[p] = 2; // MSS
    out[p + 1] = 4;
    out.writeUInt16BE(seg.mss, p + 2);
    out[p + 4] = 1; // NOP
    out[p + 5] = 3; // window scale
    out[p + 6] = 3;
    out[p + 7] = WINDOW_SHIFT;
    p += SYN_OPTIONS;
  }
  if (seg.payload !== null) p += seg.payload.copy(out, p);
  // TCP checksum over the pseudo-header, the header and the payload.
  let s = sum16(src, 0, src.length, 0);
  s = sum16(dst, 0, dst.length, s);
  s += 6 + tcpLen; // protocol + TCP length (both pseudo-headers reduce to this for lengths < 65536)
  s = sum16(out, tcp, p, s);
  const ck = fold(s);
  out.writeUInt16BE(ck === 0 ? 0xffff : ck, tcp + 16);
  return p - at;
}

/** Ones' complement sum of big-endian 16-bit words in buf[start, end), added to `acc`. */
export function sum16(buf: Buffer, start: number, end: number, acc: number): number {
  let s = acc;
  let i = start;
  for (; i + 1 < end; i += 2) {
    s += (buf[i]! << 8) | buf[i + 1]!;
    if (s > 0x7fffffff) s = (s & 0xffff) + (s >>> 16);
  }
  if (i < end) s += buf[i]! << 8;
  return s;
}

/** Fold a running sum into the final 16-bit ones' complement checksum. */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * Bytes of both ends in one family. IPv4 and IPv4-mapped IPv6 ("::ffff:127.0.0.1", what a
 * dual-stack server reports) become IPv4; if only one end is IPv4, it is mapped into IPv6.
 * Unparseable addresses become 0.0.0.0 / :: rather than failing the copy.
 */
export function flowAddresses(client: string, server: string): FlowAddresses {
  const c = parseAddress(client);
  const s = parseAddress(server);
  if (c.length === 4 && s.length === 4) return { v6: false, client: c, server: s };
  return { v6: true, client: toV6(c), server: toV6(s) };
}

function toV6(b: Buffer): Buffer {
  if (b.length === 16) return b;
  const out = Buffer.alloc(16);
  out[10] = 0xff;
  out[11] = 0xff;
  b.copy(out, 12);
  return out;
}

/** 4 bytes for IPv4 (also when IPv4-mapped), 16 for IPv6. */
export function parseAddress(text: string): Buffer {
  const zone = text.indexOf('%');
  const a = (zone >= 0 ? text.slice(0, zone) : text).replace(/^\[|\]$/g, '');
  const kind = net.isIP(a);
  if (kind === 4) return parseV4(a);
  if (kind === 6) {
    const b = parseV6(a);
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return mapped ? Buffer.from(b.subarray(12)) : b;
  }
  return Buffer.alloc(4);
}

function parseV4(a: string): Buffer {
  return Buffer.from(a.split('.').map((x) => Number(x)));
}

function parseV6(a: string): Buffer {
  const out = Buffer.alloc(16);
  const words = (part: string): number[] => {
    if (part === '') return [];
    const groups = part.split(':');
    const ws: number[] = [];
    for (const g of groups) {
      if (g.includes('.')) {
        const v4 = parseV4(g);
        ws.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else ws.push(parseInt(g, 16));
    }
    return ws;
  };
  const gap = a.indexOf('::');
  const head = words(gap >= 0 ? a.slice(0, gap) : a);
  const tail = gap >= 0 ? words(a.slice(gap + 2)) : [];
  head.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  tail.forEach((w, i) => out.writeUInt16BE(w, 16 - (tail.length - i) * 2));
  return out;
}

// === pcap framing ===

/** The 24-byte classic pcap file header (little-endian, microsecond timestamps, Ethernet). */
export function pcapFileHeader(): Buffer {
  const h = Buffer.alloc(PCAP_FILE_HEADER);
  h.writeUInt32LE(PCAP_MAGIC, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8); // thiszone
  h.writeUInt32LE(0, 12); // sigfigs
  h.writeUInt32LE(PCAP_SNAPLEN, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return h;
}

/** A record header at out[0..16): `ts` in ms since the epoch (fractions kept to the µs), `len` frame bytes. */
export function writeRecordHeader(out: Buffer, ts: number, len: number): void {
  const sec = Math.floor(ts / 1000);
  out.writeUInt32LE(sec >>> 0, 0);
  out.writeUInt32LE(Math.min(999_999, Math.floor((ts - sec * 1000) * 1000)), 4);
  out.writeUInt32LE(len, 8);
  out.writeUInt32LE(len, 12);
}

// === impl PcapFlow ===

export interface Endpoints {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
}

/** A connection's synthesis state: addresses and the next sequence number each way. */
export class PcapFlow {
  readonly addr: FlowAddresses;
  readonly clientPort: number;
  readonly serverPort: number;
  /** Next sequence number the client sends (its random ISN + 1 at first). */
  clientSeq: number;
  serverSeq: number;
  ipId = 0;
  /** The handshake was rendered and the FIN exchange was not. */
  live = false;
  /** Queue bound was hit: further packets of this connection are dropped. */
  dropping = false;

  constructor(ends: Endpoints, random: () => number) {
    this.addr = flowAddresses(ends.srcAddress, ends.dstAddress);
    this.clientPort = ends.srcPort;
    this.serverPort = ends.dstPort;
    this.clientSeq = (Math.floor(random() * 0x1_0000_0000) + 1) >>> 0;
    this.serverSeq = (Math.floor(random() * 0x1_0000_0000) + 1) >>> 0;
  }
}
