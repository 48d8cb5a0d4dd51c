/**
 * JetStreamPublisher against the machine's nats-server: PubAcks matched to their publishes by the
 * reply subject's sequence number, in whatever order they come; timeouts; late and foreign
 * replies ignored; "no responders"; close. The replies that are not a real stream's come from a
 * core NATS subscriber standing in for JetStream on a subject of the test's own.
 */
import { connect, createInbox, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamPublisher } from '../../../../../src/components/pubsub/jetstream/publisher.js';
import { WriteBatch } from '../../../../../src/components/pubsub/jetstream/writes.js';
import { NATS_URL, deleteJetStream } from '../../../../conformance/pubsub/matrix.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const stamp = `${process.pid}-${Date.now()}`;
const stream = `capa-pubtest-${stamp}`;
let nc: NatsConnection;
let side: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  side = await connect({ servers: NATS_URL });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: 'memory' as never });
});

afterAll(async () => {
  await deleteJetStream(stream);
  await side?.close();
  await nc?.close();
});

function publisher(timeoutMs = 2000): JetStreamPublisher {
  return new JetStreamPublisher(nc, new WriteBatch(), timeoutMs, createInbox());
}

describe('JetStreamPublisher', () => {
  it('resolves each publish with its own stream sequence', async () => {
    const p = publisher();
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => p.publish(`${stream}.a`, enc(`m${i}`), undefined)));
    expect(acks.every((a) => a.stream === stream)).toBe(true);
    expect(new Set(acks.map((a) => a.seq)).size).toBe(50);
    // In publish order: one socket write, stored in that order.
    expect(acks.map((a) => a.seq)).toEqual([...acks.map((a) => a.seq)].sort((x, y) => x - y));
    p.close(new Error('done'));
  });

  it('matches replies that come back in reverse order to the right publishes', async () => {
    const subject = `capa-pubtest-rev-${stamp}`;
    const held: { reply: string; data: string }[] = [];
    const sub = side.subscribe(subject, {
      callback: (_e, m) => {
        held.push({ reply: m.reply!, data: new TextDecoder().decode(m.data) });
        if (held.length < 5) return;
        // Answer the last first, each PubAck naming the message it acknowledges in `seq`.
        for (const h of held.reverse()) side.publish(h.reply, enc(JSON.stringify({ stream: 'S', seq: Number(h.data) })));
      },
    });
    await side.flush();
    const p = publisher();
    const acks = await Promise.all([1, 2, 3, 4, 5].map((n) => p.publish(subject, enc(String(n)), undefined)));
    expect(acks.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5]);
    sub.unsubscribe();
    p.close(new Error('done'));
  });

  it('fails a publish with no PubAck in time, ignores its late reply, and goes on', async () => {
    const subject = `capa-pubtest-slow-${stamp}`;
    const late: string[] = [];
    const sub = side.subscribe(subject, { callback: (_e, m) => late.push(m.reply!) });
    await side.flush();
    const p = publisher(150);
    const t0 = Date.now();
    await expect(p.publish(subject, enc('x'), undefined)).rejects.toThrow(/no PubAck within 150 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    // The late reply arrives now, for a publish that has failed already: nothing happens to the next one.
    side.publish(late[0]!, enc(JSON.stringify({ stream: 'S', seq: 99 })));
    const ok = await p.publish(`${stream}.b`, enc('y'), undefined);
    expect(ok.stream).toBe(stream);
    sub.unsubscribe();
    p.close(new Error('done'));
  });

  it('rejects on a JetStream error reply and on "no responders"', async () => {
    const subject = `capa-pubtest-err-${stamp}`;
    const sub = side.subscribe(subject, {
      callback: (_e, m) => m.respond(enc(JSON.stringify({ error: { code: 400, err_code: 10060, description: 'expected stream does not match' } }))),
    });
    await side.flush();
    const p = publisher();
    await expect(p.publish(subject, enc('x'), undefined)).rejects.toThrow('expected stream does not match (code 400, err_code 10060)');
    await expect(p.publish(`capa-pubtest-nobody-${stamp}`, enc('x'), undefined)).rejects.toThrow(/no responders/);
    sub.unsubscribe();
    p.close(new Error('done'));
  });

  it('close() rejects what still waits, with the reason given', async () => {
    const subject = `capa-pubtest-hold-${stamp}`;
    const sub = side.subscribe(subject, { callback: () => undefined });
    await side.flush();
    const p = publisher(10_000);
    const h = headers();
    h.set('Content-Type', 'text/plain');
    const waiting = [p.publish(subject, enc('1'), h), p.publish(subject, enc('2'), h)];
    await new Promise((r) => setTimeout(r, 50));
    p.close(new Error('the component was closed'));
    for (const w of waiting) await expect(w).rejects.toThrow('the component was closed');
    sub.unsubscribe();
  });
});
