/**
 * The pub/sub conformance suite (after Dapr's tests/conformance/pubsub): the same cases for every
 * backend, each built through the real component registry from user-format YAML. The delivery
 * semantics checked are the ones src/components/pubsub/pubsub.ts promises; cases of DURABLE run
 * when the matrix declares it, and check it is really absent otherwise.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pino } from 'pino';
import { builtinComponentRegistry } from '../../../src/components/index.js';
import { ComponentBackendError, ComponentRequestError } from '../../../src/components/errors.js';
import { componentSchema } from '../../../src/config/schema-components.js';
import type { DeliveryResult, Message, MessageHandler, PubSub, PubSubFeature, Subscription } from '../../../src/components/pubsub/pubsub.js';

export interface PubSubMatrixEntry {
  readonly type: string;
  /** The optional features the backend must have — and only these. */
  readonly features: readonly PubSubFeature[];
  /** The `components:` entry as a user writes it, with short redelivery delays. */
  readonly yaml: string;
  /** The longest a RETRY'd message takes to come back with that configuration. */
  readonly redeliveryMs: number;
  /** The least deliveryCount of a message redelivered after its subscription closed unanswered (2 unless the server undercounts). */
  readonly unansweredRedeliveryCount?: number;
  /** The duration metadata key that sets the redelivery delay (checked for bad input). */
  readonly delayKey: string;
  /** The same backend configured to a loopback port nothing listens on (server backends only). */
  readonly down?: () => Promise<{ yaml: string; message: RegExp }>;
  /** Removes what the run left in the backend. */
  readonly cleanup?: () => Promise<void>;
}

export function parseComponent(yaml: string): { def: ReturnType<ReturnType<typeof builtinComponentRegistry>['get']>; name: string; metadata: Record<string, unknown> } {
  const spec = componentSchema.parse(parse(yaml));
  return { def: builtinComponentRegistry().get(spec.type, spec.version), name: spec.name, metadata: spec.metadata };
}

export function buildPubSub(yaml: string): PubSub {
  const { def, name, metadata } = parseComponent(yaml);
  if (!def) throw new Error('unknown component type');
  return def.create(def.metadataSchema.parse(metadata), { name, logger: pino({ level: 'silent' }) }) as PubSub;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; fails naming `what` after `ms`. */
async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A handler that records every delivery and answers with `answer` (SUCCESS by default). */
function recorder(answer: (m: Message, seen: Message[]) => DeliveryResult | Promise<DeliveryResult> = () => 'SUCCESS') {
  const seen: Message[] = [];
  const handler: MessageHandler = async (m) => {
    seen.push(m);
    return answer(m, seen);
  };
  return { seen, handler, bodies: () => seen.map((m) => m.data.toString()) };
}

export function pubsubConformance(entry: PubSubMatrixEntry): void {
  describe(`pubsub conformance: ${entry.type}`, () => {
    let ps: PubSub;
    const run = randomUUID().slice(0, 8);
    const has = (f: PubSubFeature): boolean => entry.features.includes(f);
    let n = 0;
    /** A topic (and group) unique to the test. */
    const fresh = (): { topic: string; group: string } => ({ topic: `t-${run}-${++n}`, group: `g-${run}-${n}` });
    const open: Subscription[] = [];
    const subscribe = async (topic: string, group: string, handler: MessageHandler): Promise<Subscription> => {
      const s = await ps.subscribe({ topic, consumerGroup: group }, handler);
      open.push(s);
      return s;
    };
    const publish = (topic: string, body: string | Buffer, extra: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<void> =>
      ps.publish({ topic, data: Buffer.isBuffer(body) ? body : Buffer.from(body), ...extra });
    /** Long enough that a message that was going to come back has come back. */
    const settle = (): Promise<void> => sleep(entry.redeliveryMs * 3);

    beforeAll(async () => {
      ps = buildPubSub(entry.yaml);
      await ps.init();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });
    afterAll(async () => {
      await ps?.close();
      await entry.cleanup?.();
    });

    it('declares exactly the features of the matrix', () => {
      expect([...ps.features()].sort()).toEqual([...entry.features].sort());
      expect(ps.status?.().ready ?? true).toBe(true);
    });

    it('delivers the published bytes, content type and metadata', async () => {
      const { topic, group } = fresh();
      const r = recorder();
      await subscribe(topic, group, r.handler);
      const data = Buffer.from([0, 255, 1, 254, 10, 13, 0xc3, 0xbc]);
      await publish(topic, data, { contentType: 'application/octet-stream', metadata: { traceparent: '00-abc-def-01', 'x-ü': 'a\nb' } });
      await until(() => r.seen.length === 1, 'the message');
      const m = r.seen[0]!;
      expect(m.data.equals(data)).toBe(true);
      expect(m.contentType).toBe('application/octet-stream');
      expect(m.metadata).toEqual({ traceparent: '00-abc-def-01', 'x-ü': 'a\nb' });
      expect(m.topic).toBe(topic);
      expect(m.id).not.toBe('');
      expect(m.deliveryCount).toBe(1);
    });

    it('an empty payload and no content type or metadata arrive as such', async () => {
      const { topic, group } = fresh();
      const r = recorder();
      await subscribe(topic, group, r.handler);
      await publish(topic, Buffer.alloc(0));
      await until(() => r.seen.length === 1, 'the message');
      expect(r.seen[0]!.data.length).toBe(0);
      expect(r.seen[0]!.contentType).toBeUndefined();
      expect(r.seen[0]!.metadata).toEqual({});
    });

    it('delivers 100 messages to one subscriber, each once, in publish order', async () => {
      const { topic, group } = fresh();
      const r = recorder();
      await subscribe(topic, group, r.handler);
      const sent = Array.from({ length: 100 }, (_, i) => `m${i}`);
      for (const body of sent) await publish(topic, body);
      await until(() => r.seen.length >= 100, '100 messages');
      await sleep(50);
      expect(r.bodies()).toEqual(sent);
      expect(new Set(r.seen.map((m) => m.id)).size).toBe(100);
    });

    it('RETRY: the message comes back with deliveryCount 2; SUCCESS then stops it', async () => {
      const { topic, group } = fresh();
      const r = recorder((m) => (m.deliveryCount === 1 ? 'RETRY' : 'SUCCESS'));
      await subscribe(topic, group, r.handler);
      await publish(topic, 'again');
      await until(() => r.seen.length === 2, 'the redelivery');
      expect(r.seen.map((m) => [m.data.toString(), m.deliveryCount])).toEqual([
        ['again', 1],
        ['again', 2],
      ]);
      expect(r.seen[1]!.id).toBe(r.seen[0]!.id);
      await settle();
      expect(r.seen.length).toBe(2);
    });

    it('a rejecting handler counts as RETRY', async () => {
      const { topic, group } = fresh();
      const r = recorder((m) => {
        if (m.deliveryCount === 1) throw new Error('app is down');
        return 'SUCCESS';
      });
      await subscribe(topic, group, r.handler);
      await publish(topic, 'boom');
      await until(() => r.seen.length === 2, 'the redelivery');
      expect(r.seen.map((m) => m.deliveryCount)).toEqual([1, 2]);
      await settle();
      expect(r.seen.length).toBe(2);
    });

    it('DROP: the message is not delivered again; the next one still is', async () => {
      const { topic, group } = fresh();
      const r = recorder((m) => (m.data.toString() === 'drop me' ? 'DROP' : 'SUCCESS'));
      await subscribe(topic, group, r.handler);
      await publish(topic, 'drop me');
      await publish(topic, 'keep me');
      await until(() => r.seen.length === 2, 'both messages');
      await settle();
      expect(r.bodies()).toEqual(['drop me', 'keep me']);
    });

    it('one consumer group: two subscriptions share the messages, none twice', async () => {
      const { topic, group } = fresh();
      const slow = async (): Promise<DeliveryResult> => {
        await sleep(5);
        return 'SUCCESS';
      };
      const a = recorder(slow);
      const b = recorder(slow);
      await subscribe(topic, group, a.handler);
      await subscribe(topic, group, b.handler);
      const sent = Array.from({ length: 40 }, (_, i) => `s${i}`);
      for (const body of sent) await publish(topic, body);
      await until(() => a.seen.length + b.seen.length >= 40, 'all 40 messages');
      await settle();
      const all = [...a.bodies(), ...b.bodies()];
      expect(all.sort()).toEqual([...sent].sort());
      expect(a.seen.length).toBeGreaterThan(0);
      expect(b.seen.length).toBeGreaterThan(0);
    });

    it('two consumer groups each get every message', async () => {
      const { topic, group } = fresh();
      const a = recorder();
      const b = recorder();
      await subscribe(topic, `${group}-a`, a.handler);
      await subscribe(topic, `${group}-b`, b.handler);
      const sent = Array.from({ length: 10 }, (_, i) => `g${i}`);
      for (const body of sent) await publish(topic, body);
      await until(() => a.seen.length >= 10 && b.seen.length >= 10, 'both groups');
      await sleep(50);
      expect(a.bodies()).toEqual(sent);
      expect(b.bodies()).toEqual(sent);
    });

    it('close() of a subscription stops delivery to it', async () => {
      const { topic, group } = fresh();
      const r = recorder();
      const s = await subscribe(topic, group, r.handler);
      await publish(topic, 'before');
      await until(() => r.seen.length === 1, 'the first message');
      await s.close();
      await publish(topic, 'after');
      await settle();
      expect(r.bodies()).toEqual(['before']);
    });

    if (has('DURABLE')) {
      it('durable: a message published while the group had no subscription arrives when it subscribes again', async () => {
        const { topic, group } = fresh();
        const first = recorder();
        const s = await subscribe(topic, group, first.handler);
        await publish(topic, 'one');
        await until(() => first.seen.length === 1, 'the first message');
        await s.close();
        await publish(topic, 'while away');
        const second = recorder();
        await subscribe(topic, group, second.handler);
        await until(() => second.seen.length === 1, 'the message published while away');
        await settle();
        expect(second.bodies()).toEqual(['while away']);
        expect(first.bodies()).toEqual(['one']);
      });

      it('durable: messages published before the group first subscribed are delivered', async () => {
        const { topic, group } = fresh();
        await publish(topic, 'early 1');
        await publish(topic, 'early 2');
        const r = recorder();
        await subscribe(topic, group, r.handler);
        await until(() => r.seen.length === 2, 'the earlier messages');
        expect(r.bodies()).toEqual(['early 1', 'early 2']);
      });

      it('durable: a message left unanswered at close goes to the next subscriber of the group', async () => {
        const { topic, group } = fresh();
        const hung = recorder(() => new Promise<DeliveryResult>(() => undefined));
        const s = await subscribe(topic, group, hung.handler);
        await publish(topic, 'unanswered');
        await until(() => hung.seen.length === 1, 'the first delivery');
        await s.close();
        const next = recorder();
        await subscribe(topic, group, next.handler);
        await until(() => next.seen.length === 1, 'the redelivery to the next subscriber');
        expect(next.bodies()).toEqual(['unanswered']);
        expect(next.seen[0]!.deliveryCount).toBeGreaterThanOrEqual(entry.unansweredRedeliveryCount ?? 2);
        await settle();
        expect(next.seen.length).toBe(1);
      });
    } else {
      it('not durable: what is published while a group has no subscription is not kept for it', async () => {
        const { topic, group } = fresh();
        await publish(topic, 'nobody listens');
        const first = recorder();
        const s = await subscribe(topic, group, first.handler);
        await s.close();
        await publish(topic, 'while away');
        const r = recorder();
        await subscribe(topic, group, r.handler);
        await publish(topic, 'now');
        await until(() => r.seen.length === 1, 'the new message');
        await settle();
        expect(r.bodies()).toEqual(['now']);
        expect(first.seen).toEqual([]);
      });
    }

    it('an empty topic or consumer group is a bad request', async () => {
      await expect(publish('', 'x')).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(ps.subscribe({ topic: '', consumerGroup: 'g' }, async () => 'SUCCESS')).rejects.toBeInstanceOf(ComponentRequestError);
      await expect(ps.subscribe({ topic: 't', consumerGroup: '' }, async () => 'SUCCESS')).rejects.toBeInstanceOf(ComponentRequestError);
    });

    it('bad metadata names the field and the reason', () => {
      const { def } = parseComponent(entry.yaml);
      const bad = def!.metadataSchema.safeParse({ [entry.delayKey]: 'soon' });
      expect(bad.success).toBe(false);
      expect(bad.error!.issues[0]!.path).toEqual([entry.delayKey]);
      expect(bad.error!.issues[0]!.message).toMatch(/duration/);
      const unknown = def!.metadataSchema.safeParse({ noSuchKey: '1' });
      expect(unknown.success).toBe(false);
      expect(JSON.stringify(unknown.error!.issues)).toContain('noSuchKey');
    });

    if (entry.down) {
      it('backend down: init rejects naming the address; publish rejects and stores nothing', async () => {
        const { yaml, message } = await entry.down!();
        const down = buildPubSub(yaml);
        try {
          const err = await down.init().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(ComponentBackendError);
          expect((err as Error).message).toMatch(message);
          expect(down.status?.().ready).toBe(false);
          await expect(down.publish({ topic: 'x', data: Buffer.from('lost') })).rejects.toBeInstanceOf(ComponentBackendError);
          await expect(down.subscribe({ topic: 'x', consumerGroup: 'g' }, async () => 'SUCCESS')).rejects.toBeInstanceOf(ComponentBackendError);
        } finally {
          await down.close();
        }
      });
    } else {
      it('after close() publish and subscribe reject as backend errors', async () => {
        const other = buildPubSub(entry.yaml);
        await other.init();
        await other.close();
        await expect(other.publish({ topic: 'x', data: Buffer.from('lost') })).rejects.toBeInstanceOf(ComponentBackendError);
        await expect(other.subscribe({ topic: 'x', consumerGroup: 'g' }, async () => 'SUCCESS')).rejects.toBeInstanceOf(ComponentBackendError);
      });
    }
  });
}
