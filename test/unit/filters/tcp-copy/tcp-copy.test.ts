import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTcpCopyConfig, TcpCopy, tcpCopyMetrics, type ConnectionInfo } from '../../../../src/filters/tcp-copy/index.js';
import { readPcap } from './pcap-reader.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const CONN: ConnectionInfo = { srcAddress: '10.1.2.3', srcPort: 50000, dstAddress: '10.9.8.7', dstPort: 8080, family: 4 };

/** A TcpCopy with a fake clock, a scripted random(), a captured log and its own registry. */
function make(cfg: Record<string, unknown>, randoms: number[] = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'tcpcopy-sampling-'));
  dirs.push(dir);
  const clock = { t: Date.UTC(2024, 0, 1) };
  const logs: { msg: string; reason?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const registry = new Registry();
  let i = 0;
  const tc = new TcpCopy(parseTcpCopyConfig({ enabled: true, directory: dir, ...cfg }), {
    logger,
    registry,
    now: () => clock.t,
    random: () => (i < randoms.length ? randoms[i++]! : 0),
  });
  return { tc, dir, clock, logs, registry };
}

async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((n, v) => n + v.value, 0);
}

describe('TcpCopy sampling', () => {
  it('returns null and counts nothing while disabled, then samples by probability once enabled', async () => {
    const { tc, registry } = make({ enabled: false, sampleRate: 0.5 }, [0.1, 0.7, 0.49, 0.5]);
    expect(tc.attach(CONN)).toBeNull();
    expect(await counter(registry, 'capa_tcpcopy_connections_total')).toBe(0);
    tc.setEnabled(true);
    const got = [tc.attach(CONN), tc.attach(CONN), tc.attach(CONN), tc.attach(CONN)].map((t) => t !== null);
    expect(got).toEqual([true, false, true, false]);
    expect(await counter(registry, 'capa_tcpcopy_connections_total', { decision: 'sampled' })).toBe(2);
    expect(await counter(registry, 'capa_tcpcopy_connections_total', { decision: 'skipped' })).toBe(2);
    expect(tc.status()).toMatchObject({ enabled: true, sampleRate: 0.5, connections: { sampled: 2, skipped: 2, budgetExhausted: 0 }, skippedBy: { sampleRate: 2 } });
    await tc.close();
  });

  it('samples at most maxPerSecond connections in each second', async () => {
    const { tc, clock } = make({ sampleRate: 1, maxPerSecond: 2 });
    const burst = (): boolean[] => [1, 2, 3, 4].map(() => tc.attach(CONN) !== null);
    expect(burst()).toEqual([true, true, false, false]);
    clock.t += 999;
    expect(burst()).toEqual([false, false, false, false]);
    clock.t += 1;
    expect(burst()).toEqual([true, true, false, false]);
    expect(tc.status()).toMatchObject({ connections: { sampled: 4, skipped: 8 }, skippedBy: { maxPerSecond: 8 } });
    await tc.close();
  });

  it('only copies connections to the configured destination ports', async () => {
    const { tc } = make({ sampleRate: 1, ports: [443] });
    expect(tc.attach(CONN)).toBeNull();
    expect(tc.attach({ ...CONN, dstPort: 443 })).not.toBeNull();
    expect(tc.status().skippedBy.port).toBe(1);
    await tc.close();
  });

  it('switches at run time and rejects a bad rate', async () => {
    const { tc, logs } = make({ enabled: false });
    tc.setEnabled(true, 0.25);
    expect(tc.status()).toMatchObject({ enabled: true, sampleRate: 0.25 });
    expect(() => tc.setEnabled(true, 1.5)).toThrow(/rate: expected a probability from 0 to 1/);
    expect(() => tc.setEnabled(true, Number.NaN)).toThrow(RangeError);
    tc.setEnabled(false);
    expect(tc.status()).toMatchObject({ enabled: false, sampleRate: 0.25 });
    expect(logs.filter((l) => l.msg === 'tcp-copy switched')).toHaveLength(2);
    await tc.close();
  });

  it('copies at most maxBytesPerConnection of a connection and counts bytes', async () => {
    const { tc, dir, registry } = make({ sampleRate: 1, maxBytesPerConnection: 1000 });
    const tap = tc.attach(CONN)!;
    tap.onDownstreamData(Buffer.alloc(600, 'a'));
    tap.onUpstreamData(Buffer.alloc(600, 'b'));
    tap.onDownstreamData(Buffer.alloc(600, 'c'));
    tap.onClose();
    tap.onClose();
    tap.onDownstreamData(Buffer.alloc(10));
    await tc.close();
    const p = readPcap(path.join(dir, readdirSync(dir)[0]!)).packets;
    expect(p.map((x) => x.payload.length)).toEqual([0, 0, 0, 600, 400, 0, 0, 0]);
    expect(p[3]!.src).toBe('10.1.2.3');
    expect(p[4]!.payload.toString()).toBe('b'.repeat(400));
    expect(await counter(registry, 'capa_tcpcopy_bytes_total')).toBe(1000);
    expect(tc.status()).toMatchObject({ bytesCopied: 1000, truncatedConnections: 1, activeConnections: 0 });
  });

  it('copies the bytes as they were when seen, even if the caller reuses its buffer', async () => {
    const { tc, dir } = make({ sampleRate: 1 });
    const tap = tc.attach(CONN)!;
    const buf = Buffer.from('first');
    tap.onDownstreamData(buf);
    buf.write('XXXXX');
    tap.onClose();
    await tc.close();
    const p = readPcap(path.join(dir, readdirSync(dir)[0]!)).packets;
    expect(p[3]!.payload.toString()).toBe('first');
  });

  it('stops at the disk budget: logged once, later sampled connections counted as budget_exhausted', async () => {
    // Each connection: 60 KiB of payload, ~65 KB of pcap; a file holds two, the budget three.
    const { tc, dir, logs, registry, clock } = make({ sampleRate: 1, maxPerSecond: 100, diskBudget: '250KiB', maxFileSize: '128KiB' });
    const tapped: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const tap = tc.attach({ ...CONN, srcPort: 50000 + i });
      tapped.push(tap !== null);
      tap?.onDownstreamData(Buffer.alloc(60 * 1024, i));
      tap?.onClose();
      await tc.flushed();
      clock.t += 10;
    }
    // The fourth connection was sampled but did not fit: the writer stopped while writing it.
    expect(tapped).toEqual([true, true, true, true, false]);
    expect(tc.status().stopped?.reason).toBe('disk_budget');
    expect(tc.attach(CONN)).toBeNull();
    expect(tc.attach(CONN)).toBeNull();
    await tc.close();
    const stops = logs.filter((l) => l.msg === 'tcp-copy stopped copying connections');
    expect(stops).toHaveLength(1);
    expect(stops[0]!.reason).toBe('disk_budget');
    const total = readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(250 * 1024);
    expect(readdirSync(dir).length).toBe(2); // rotated once at 128 KiB
    const s = tc.status();
    expect(s.diskBytes).toBe(total);
    expect(s.connections).toEqual({ sampled: 4, skipped: 0, budgetExhausted: 3 });
    expect(s.stopped?.detail).toMatch(/disk budget of 256000 bytes/);
    expect(readPcap(path.join(dir, readdirSync(dir).sort()[1]!)).packets.filter((x) => x.payload.length > 0)).toHaveLength(44);
    expect(await counter(registry, 'capa_tcpcopy_connections_total', { decision: 'budget_exhausted' })).toBe(s.connections.budgetExhausted);
  });

  it('counts dropped packets when the write queue is full', async () => {
    const { tc, registry } = make({ sampleRate: 1 });
    const small = new TcpCopy(parseTcpCopyConfig({ enabled: true, sampleRate: 1, directory: mkdtempSync(path.join(tmpdir(), 'tcpcopy-q-')) }), {
      logger: pino({ level: 'silent' }),
      registry,
      maxQueueBytes: 1000,
    });
    dirs.push(small.status().directory);
    const tap = small.attach(CONN)!;
    tap.onDownstreamData(Buffer.alloc(5000));
    tap.onDownstreamData(Buffer.alloc(2800));
    tap.onClose();
    await small.close();
    await tc.close();
    expect(small.status().droppedPackets).toBe(2 + 3);
    expect(await counter(registry, 'capa_tcpcopy_dropped_packets_total')).toBe(5);
  });

  it('creates its metrics once per registry', () => {
    const r = new Registry();
    expect(tcpCopyMetrics(r)).toBe(tcpCopyMetrics(r));
    expect(tcpCopyMetrics(new Registry())).not.toBe(tcpCopyMetrics(r));
  });
});
