/** A small classic-pcap reader for the tests: file header, records, Ethernet, IPv4/IPv6, TCP. */
import { readFileSync } from 'node:fs';

export interface PcapPacket {
  tsSec: number;
  tsUsec: number;
  inclLen: number;
  origLen: number;
  v6: boolean;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
  /** IPv4 header checksum verifies (always true for IPv6). */
  ipChecksumOk: boolean;
  tcpChecksumOk: boolean;
  ipTotalLength: number;
}

export interface PcapFile {
  magic: number;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  linktype: number;
  packets: PcapPacket[];
}

export const SYN = 0x02;
export const FIN = 0x01;
export const ACK = 0x10;
export const PSH = 0x08;

function sum(buf: Buffer, acc = 0): number {
  let s = acc;
  for (let i = 0; i < buf.length; i += 2) s += (buf[i]! << 8) | (i + 1 < buf.length ? buf[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function ip(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(b.readUInt16BE(i).toString(16));
  return w.join(':');
}

export function readPcap(file: string): PcapFile {
  return parsePcap(readFileSync(file));
}

export function parsePcap(buf: Buffer): PcapFile {
  const magic = buf.readUInt32LE(0);
  const out: PcapFile = {
    magic,
    versionMajor: buf.readUInt16LE(4),
    versionMinor: buf.readUInt16LE(6),
    snaplen: buf.readUInt32LE(16),
    linktype: buf.readUInt32LE(20),
    packets: [],
  };
  let at = 24;
  while (at < buf.length) {
    if (at + 16 > buf.length) throw new Error(`truncated record header at ${at}`);
    const tsSec = buf.readUInt32LE(at);
    const tsUsec = buf.readUInt32LE(at + 4);
    const inclLen = buf.readUInt32LE(at + 8);
    const origLen = buf.readUInt32LE(at + 12);
    const frame = buf.subarray(at + 16, at + 16 + inclLen);
    if (frame.length !== inclLen) throw new Error(`truncated record at ${at}`);
    at += 16 + inclLen;
    const etherType = frame.readUInt16BE(12);
    const ipStart = 14;
    const v6 = etherType === 0x86dd;
    let tcpStart: number;
    let src: Buffer;
    let dst: Buffer;
    let ipChecksumOk = true;
    let ipTotalLength: number;
    if (v6) {
      src = frame.subarray(ipStart + 8, ipStart + 24);
      dst = frame.subarray(ipStart + 24, ipStart + 40);
      ipTotalLength = 40 + frame.readUInt16BE(ipStart + 4);
      tcpStart = ipStart + 40;
    } else {
      const ihl = (frame[ipStart]! & 0x0f) * 4;
      src = frame.subarray(ipStart + 12, ipStart + 16);
      dst = frame.subarray(ipStart + 16, ipStart + 20);
      ipTotalLength = frame.readUInt16BE(ipStart + 2);
      ipChecksumOk = sum(frame.subarray(ipStart, ipStart + ihl)) === 0xffff;
      tcpStart = ipStart + ihl;
    }
    const tcp = frame.subarray(tcpStart, ipStart + ipTotalLength);
    const hdr = (tcp[12]! >> 4) * 4;
    const pseudo = sum(Buffer.concat([src, dst]), 6 + tcp.length);
    const tcpChecksumOk = sum(tcp, pseudo) === 0xffff;
    out.packets.push({
      tsSec,
      tsUsec,
      inclLen,
      origLen,
      v6,
      src: ip(src),
      dst: ip(dst),
      srcPort: tcp.readUInt16BE(0),
      dstPort: tcp.readUInt16BE(2),
      seq: tcp.readUInt32BE(4),
      ack: tcp.readUInt32BE(8),
      flags: tcp[13]!,
      window: tcp.readUInt16BE(14),
      payload: Buffer.from(tcp.subarray(hdr)),
      ipChecksumOk,
      tcpChecksumOk,
      ipTotalLength,
    });
  }
  return out;
}
