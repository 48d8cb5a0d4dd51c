import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PcapWriter, PCAP_MAGIC, type StopReason } from '../../../../src/filters/tcp-copy/index.js';
import { ACK, FIN, PSH, SYN, readPcap, type PcapPacket } from './pcap-reader.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'tcpcopy-unit-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((f) => path.join(dir, f));
}

const T0 = Date.UTC(2024, 4, 1, 12, 30, 0, 250);
const ENDS = { srcAddress: '127.0.0.1', srcPort: 40000, dstAddress: '127.0.0.2', dstPort: 8080 };
const REQ = Buffer.from('GET /hello HTTP/1.1\r\nhost: x\r\n\r\n');
const RES = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi');

function expectValid(p: PcapPacket): void {
  expect(p.ipChecksumOk).toBe(true);
  expect(p.tcpChecksumOk).toBe(true);
  expect(p.inclLen).toBe(p.origLen);
  expect(p.inclLen).toBe(14 + p.ipTotalLength);
}

describe('PcapWriter', () => {
  it('writes a tiny exchange as handshake, data and FIN exchange with consistent sequence numbers', async () => {
    const dir = tempDir();
    const w = new PcapWriter({ directory: dir, maxFileSize: 1 << 20, diskBudget: 1 << 20, now: () => T0, random: () => 0.5 });
    const f = w.open(ENDS, T0);
    w.data(f, true, REQ, T0 + 1.5);
    w.data(f, false, RES, T0 + 2);
    w.close(f, T0 + 3);
    await w.end();
    const [file, ...rest] = files(dir);
    expect(rest).toEqual([]);
    expect(path.basename(file!)).toBe('tcpcopy-20240501T123000.250Z-1.pcap');
    const pcap = readPcap(file!);
    expect(pcap.magic).toBe(PCAP_MAGIC);
    expect([pcap.versionMajor, pcap.versionMinor]).toEqual([2, 4]);
    expect(pcap.linktype).toBe(1);
    const p = pcap.packets;
    expect(p.map((x) => x.flags)).toEqual([SYN, SYN | ACK, ACK, ACK | PSH, ACK | PSH, FIN | ACK, FIN | ACK, ACK]);
    p.forEach(expectValid);
    const c2s = [0, 2, 3, 5, 7];
    for (const i of c2s) expect([p[i]!.src, p[i]!.srcPort, p[i]!.dst, p[i]!.dstPort]).toEqual(['127.0.0.1', 40000, '127.0.0.2', 8080]);
    for (const i of [1, 4, 6]) expect([p[i]!.src, p[i]!.srcPort, p[i]!.dst, p[i]!.dstPort]).toEqual(['127.0.0.2', 8080, '127.0.0.1', 40000]);
    const cIsn = p[0]!.seq;
    const sIsn = p[1]!.seq;
    expect(cIsn).toBe(0x80000000);
    expect(p[1]!.ack).toBe(cIsn + 1);
    expect([p[2]!.seq, p[2]!.ack]).toEqual([cIsn + 1, sIsn + 1]);
    expect([p[3]!.seq, p[3]!.ack]).toEqual([cIsn + 1, sIsn + 1]);
    expect(p[3]!.payload.equals(REQ)).toBe(true);
    expect([p[4]!.seq, p[4]!.ack]).toEqual([sIsn + 1, cIsn + 1 + REQ.length]);
    expect(p[4]!.payload.equals(RES)).toBe(true);
    expect([p[5]!.seq, p[5]!.ack]).toEqual([cIsn + 1 + REQ.length, sIsn + 1 + RES.length]);
    expect([p[6]!.seq, p[6]!.ack]).toEqual([sIsn + 1 + RES.length, cIsn + 2 + REQ.length]);
    expect([p[7]!.seq, p[7]!.ack]).toEqual([cIsn + 2 + REQ.length, sIsn + 2 + RES.length]);
    // Timestamps: seconds and microseconds of the time each chunk was seen.
    expect(p[0]!.tsSec).toBe(Math.floor(T0 / 1000));
    expect(p[0]!.tsUsec).toBe(250_000);
    expect(p[3]!.tsUsec).toBe(251_500);
    expect(w.stats()).toMatchObject({ files: 1, currentFile: null, diskBytes: statSync(file!).size, queuedBytes: 0, stopped: null });
  });

  it('splits large chunks into segments and writes IPv6 (and maps IPv4-mapped addresses to IPv4)', async () => {
    const dir = tempDir();
    const w = new PcapWriter({ directory: dir, maxFileSize: 1 << 20, diskBudget: 1 << 20, segmentSize: 1400 });
    const big = Buffer.alloc(3000, 'a');
    const f6 = w.open({ srcAddress: '::1', srcPort: 1234, dstAddress: 'fe80::1:2%lo', dstPort: 80 }, Date.now());
    w.data(f6, true, big, Date.now());
    w.close(f6, Date.now());
    const f4 = w.open({ srcAddress: '::ffff:10.0.0.1', srcPort: 1, dstAddress: '::ffff:10.0.0.2', dstPort: 2 }, Date.now());
    w.close(f4, Date.now());
    await w.end();
    const p = readPcap(files(dir)[0]!).packets;
    p.forEach(expectValid);
    const six = p.filter((x) => x.v6);
    expect(six).toHaveLength(3 + 3 + 3);
    expect(six[0]!.src).toBe('0:0:0:0:0:0:0:1');
    expect(six[0]!.dst).toBe('fe80:0:0:0:0:0:1:2');
    const data = six.slice(3, 6);
    expect(data.map((x) => x.payload.length)).toEqual([1400, 1400, 200]);
    expect(data.map((x) => x.seq - data[0]!.seq)).toEqual([0, 1400, 2800]);
    expect(data.map((x) => x.flags)).toEqual([ACK, ACK, ACK | PSH]);
    const four = p.filter((x) => !x.v6);
    expect(four.map((x) => x.src)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.1']);
  });

  it('drops further packets of a connection when the queue is over its bound, and counts them', async () => {
    const dir = tempDir();
    let dropped = 0;
    const w = new PcapWriter({ directory: dir, maxFileSize: 1 << 20, diskBudget: 1 << 20, maxQueueBytes: 2000 }, { onDropped: (n) => (dropped += n) });
    const f = w.open(ENDS, Date.now());
    expect(w.data(f, true, Buffer.alloc(3000), Date.now())).toBe(true); // the queue was under the bound
    expect(w.data(f, true, Buffer.alloc(100), Date.now())).toBe(false);
    expect(w.data(f, false, Buffer.alloc(10), Date.now())).toBe(false); // the connection keeps dropping
    w.close(f, Date.now());
    await w.end();
    expect(dropped).toBe(1 + 1 + 3);
    expect(w.stats().droppedPackets).toBe(5);
    const p = readPcap(files(dir)[0]!).packets;
    expect(p.map((x) => x.flags)).toEqual([SYN, SYN | ACK, ACK, ACK, ACK, ACK | PSH]); // no FIN: dropped too
  });

  it('rotates files before they pass maxFileSize, re-opening connections still live in the new file', async () => {
    const dir = tempDir();
    const seen: string[] = [];
    const w = new PcapWriter({ directory: dir, maxFileSize: 10_000, diskBudget: 1 << 20, now: () => T0 }, { onFile: (f) => seen.push(f) });
    const f = w.open(ENDS, T0);
    for (let i = 0; i < 10; i++) w.data(f, i % 2 === 0, Buffer.alloc(3000, i), T0 + i);
    w.close(f, T0 + 20);
    await w.end();
    const all = files(dir);
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(seen).toEqual(all);
    expect(all.map((x) => path.basename(x))).toEqual(all.map((_, i) => `tcpcopy-20240501T123000.250Z-${i + 1}.pcap`));
    let payload = 0;
    let nextClientSeq = -1;
    for (const file of all) {
      expect(statSync(file).size).toBeLessThanOrEqual(10_000);
      const p = readPcap(file).packets;
      p.forEach(expectValid);
      // Every file starts with a handshake that continues the sequence numbers.
      expect(p.slice(0, 3).map((x) => x.flags)).toEqual([SYN, SYN | ACK, ACK]);
      if (nextClientSeq >= 0) expect(p[2]!.seq).toBe(nextClientSeq);
      for (const x of p) {
        payload += x.payload.length;
        if (x.srcPort === ENDS.srcPort) nextClientSeq = (x.seq + x.payload.length + (x.flags & FIN ? 1 : 0)) >>> 0;
      }
    }
    expect(payload).toBe(30_000);
    expect(readPcap(all.at(-1)!).packets.at(-1)!.flags).toBe(ACK);
  });

  it('stops for good at the disk budget, once, keeping what fit', async () => {
    const dir = tempDir();
    const stops: [StopReason, string][] = [];
    let written = 0;
    const w = new PcapWriter(
      { directory: dir, maxFileSize: 4_000, diskBudget: 9_000 },
      { onStopped: (r, d) => stops.push([r, d]), onWritten: (n) => (written += n) },
    );
    const f = w.open(ENDS, Date.now());
    for (let i = 0; i < 20; i++) w.data(f, true, Buffer.alloc(1000), Date.now());
    await w.flushed();
    expect(w.stopped).toBe('disk_budget');
    expect(w.data(f, true, Buffer.alloc(10), Date.now())).toBe(false);
    w.close(f, Date.now());
    await w.end();
    expect(stops).toHaveLength(1);
    expect(stops[0]![1]).toMatch(/disk budget of 9000 bytes/);
    const total = files(dir).reduce((n, x) => n + statSync(x).size, 0);
    expect(total).toBeLessThanOrEqual(9_000);
    expect(total).toBe(w.stats().diskBytes);
    expect(written).toBeGreaterThan(5_000);
    expect(written).toBeLessThan(9_000);
  });

  it('stops with write_error when the directory cannot be made, and ignores writes after end()', async () => {
    const stops: StopReason[] = [];
    const w = new PcapWriter({ directory: '/dev/null/tcpcopy', maxFileSize: 1 << 20, diskBudget: 1 << 20 }, { onStopped: (r) => stops.push(r) });
    const f = w.open(ENDS, Date.now());
    w.data(f, true, REQ, Date.now());
    await w.flushed();
    expect(w.stopped).toBe('write_error');
    expect(stops).toEqual(['write_error']);
    expect(w.data(f, true, REQ, Date.now())).toBe(false);
    await w.end();

    const dir = tempDir();
    const w2 = new PcapWriter({ directory: dir, maxFileSize: 1 << 20, diskBudget: 1 << 20 });
    const g = w2.open(ENDS, Date.now());
    await w2.end();
    expect(w2.data(g, true, REQ, Date.now())).toBe(false);
    w2.close(g, Date.now());
    await w2.flushed();
    expect(files(dir)).toHaveLength(1);
    expect(readPcap(files(dir)[0]!).packets).toHaveLength(3);
  });
});
