/** The HTTP app channel against a real HTTP app: Dapr's subscription formats and reply mapping. */
import { afterEach, describe, expect, it } from 'vitest';
import type { AppSubscription } from '../../../src/runtime/app-channel.js';
import { envelopeForPublish, topicEventOf } from '../../../src/runtime/cloudevents.js';
import { HttpAppChannel } from '../../../src/runtime/http-app-channel.js';
import { freePort, memoryLogger, startTestApp, type AppReply } from '../../helpers/runtime.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function channelTo(reply: (path: string) => AppReply, timeoutMs = 2000) {
  const app = await startTestApp((r) => reply(r.path));
  const { logger, lines } = memoryLogger();
  const ch = new HttpAppChannel({ address: '127.0.0.1', port: app.port, logger, timeoutMs, listTimeoutMs: 1000 });
  cleanups.push(async () => {
    await ch.close();
    await app.close();
  });
  return { ch, app, lines };
}

const sub: AppSubscription = { pubsubName: 'pubsub', topic: 'orders', route: '/orders', metadata: {} };
const { data } = envelopeForPublish({ topic: 'orders', pubsubName: 'pubsub', source: 'checkout', data: Buffer.from('{"n":1}'), contentType: 'application/json' });
const event = topicEventOf({ data, topic: 'orders', pubsubName: 'pubsub', rawPayload: false });

describe('HttpAppChannel.listSubscriptions', () => {
  it('reads Dapr v1 and v2 formats, with metadata and deadLetterTopic; skips unusable items with a log line', async () => {
    const list = [
      { pubsubname: 'pubsub', topic: 'orders', route: 'orders', metadata: { rawPayload: 'true', maxDeliveries: 3 }, deadLetterTopic: 'dead' },
      { pubsubname: 'pubsub', topic: 'v2', routes: { default: '/v2-default', rules: [{ match: 'event.type == "x"', path: '/x' }] } },
      { pubsubname: 'pubsub', topic: 'rules-only', routes: { rules: [{ match: 'true', path: '/r' }] } },
      { pubsubname: 'pubsub', topic: 'no-route' },
      { topic: 'missing-pubsub', route: '/x' },
    ];
    const { ch, app, lines } = await channelTo(() => ({ status: 200, body: list }));
    const subs = await ch.listSubscriptions();
    expect(app.received[0]).toMatchObject({ method: 'GET', path: '/dapr/subscribe' });
    const rule = (match: string, path: string) => ({ match, path, test: expect.any(Function) });
    expect(subs).toEqual([
      { pubsubName: 'pubsub', topic: 'orders', route: '/orders', metadata: { rawPayload: 'true', maxDeliveries: '3' }, deadLetterTopic: 'dead' },
      { pubsubName: 'pubsub', topic: 'v2', route: '/v2-default', rules: [rule('event.type == "x"', '/x')], metadata: {} },
      // Rules without a default: no fallback path (an event no rule matches is not delivered).
      { pubsubName: 'pubsub', topic: 'rules-only', route: '', rules: [rule('true', '/r')], metadata: {} },
      { pubsubName: 'pubsub', topic: 'no-route', route: '/no-route', metadata: {} },
    ]);
    expect(lines.some((l) => l.msg.includes('subscription skipped') && l.reason.includes('pubsubname'))).toBe(true);
  });

  it('routing rules: compiled once, paths made absolute, an empty match always matches, routes.default before route (Dapr\'s order)', async () => {
    const list = [{ pubsubname: 'pubsub', topic: 't', route: '/legacy', routes: { default: 'dflt', rules: [{ match: ' event.data.n > 1 ', path: 'big' }, { path: 'catch-all' }] } }];
    const { ch } = await channelTo(() => ({ status: 200, body: list }));
    const [s] = await ch.listSubscriptions();
    expect(s).toMatchObject({ route: '/dflt', rules: [{ match: 'event.data.n > 1', path: '/big' }, { match: '', path: '/catch-all', test: undefined }] });
    expect(s!.rules![0]!.test!({ event: { data: { n: 2 } } })).toBe(true);
  });

  it('a rule that cannot be used skips only its subscription, with an error naming the topic, the rule and the reason', async () => {
    const list = [
      { pubsubname: 'pubsub', topic: 'good', routes: { rules: [{ match: 'event.type == "a"', path: '/a' }], default: '/d' } },
      { pubsubname: 'pubsub', topic: 'syntax', routes: { rules: [{ match: 'event.type == "a"', path: '/a' }, { match: 'event.type ==', path: '/b' }] } },
      { pubsubname: 'pubsub', topic: 'unknown-var', routes: { rules: [{ match: 'evnt.type == "a"', path: '/a' }] } },
      { pubsubname: 'pubsub', topic: 'not-bool', routes: { rules: [{ match: '1 + 2', path: '/a' }] } },
      { pubsubname: 'pubsub', topic: 'no-path', routes: { rules: [{ match: 'true' }] } },
      { pubsubname: 'pubsub', topic: 'rules-not-array', routes: { rules: 'event.type == "a"' } },
    ];
    const { ch, lines } = await channelTo(() => ({ status: 200, body: list }));
    expect((await ch.listSubscriptions()).map((s) => s.topic)).toEqual(['good']);
    const skipped = (topic: string) => lines.find((l) => l.level === 50 && l.topic === topic)!;
    expect(skipped('syntax')).toMatchObject({ pubsub: 'pubsub', rule: 1, match: 'event.type ==' });
    expect(skipped('syntax').msg).toMatch(/subscription skipped \(pubsub pubsub, topic syntax\): routing rule 1 \(match "event.type =="\) does not compile: /);
    expect(skipped('unknown-var').reason).toMatch(/does not compile: .*evnt/);
    expect(skipped('not-bool').reason).toMatch(/evaluates to int, not bool/);
    expect(skipped('no-path').reason).toMatch(/routing rule 0 .* has no path/);
    expect(skipped('rules-not-array').reason).toMatch(/routes.rules must be an array/);
  });

  it('404 means no subscriptions; 500, bad JSON and an absent app reject', async () => {
    expect(await (await channelTo(() => ({ status: 404 }))).ch.listSubscriptions()).toEqual([]);
    await expect((await channelTo(() => ({ status: 500, body: 'boom' }))).ch.listSubscriptions()).rejects.toThrow(/answered 500/);
    await expect((await channelTo(() => ({ status: 200, body: '{not json' }))).ch.listSubscriptions()).rejects.toThrow(/invalid JSON/);
    const { logger } = memoryLogger();
    const gone = new HttpAppChannel({ address: '127.0.0.1', port: await freePort(), logger });
    await expect(gone.listSubscriptions()).rejects.toThrow(/ECONNREFUSED/);
    await gone.close();
  });
});

describe('HttpAppChannel.deliver', () => {
  it('POSTs the envelope as application/cloudevents+json to the route', async () => {
    const { ch, app } = await channelTo(() => ({ status: 200 }));
    expect(await ch.deliver(sub, event)).toBe('SUCCESS');
    const r = app.received[0]!;
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/orders');
    expect(r.headers['content-type']).toBe('application/cloudevents+json');
    expect(r.json).toEqual(event.envelope);
    expect(r.json.data).toEqual({ n: 1 });
  });

  const cases: [string, AppReply, string][] = [
    ['2xx, empty body', { status: 204 }, 'SUCCESS'],
    ['{"status":"SUCCESS"}', { status: 200, body: { status: 'SUCCESS' } }, 'SUCCESS'],
    ['2xx, body not JSON', { status: 200, body: 'ok' }, 'SUCCESS'],
    ['{"status":"RETRY"}', { status: 200, body: { status: 'RETRY' } }, 'RETRY'],
    ['{"status":"drop"} (any case)', { status: 200, body: { status: 'drop' } }, 'DROP'],
    ['an unknown status', { status: 200, body: { status: 'MAYBE' } }, 'RETRY'],
    ['404', { status: 404 }, 'DROP'],
    ['500', { status: 500 }, 'RETRY'],
    ['503', { status: 503 }, 'RETRY'],
  ];
  for (const [what, reply, want] of cases) {
    it(`app answers ${what} → ${want}`, async () => {
      const { ch } = await channelTo(() => reply);
      expect(await ch.deliver(sub, event)).toBe(want);
    });
  }

  it('a timeout or an absent app rejects (the subscriber retries)', async () => {
    const { ch } = await channelTo(() => 'hang', 200);
    await expect(ch.deliver(sub, event)).rejects.toThrow(/did not answer POST \/orders within 200 ms/);
    const { logger } = memoryLogger();
    const gone = new HttpAppChannel({ address: '127.0.0.1', port: await freePort(), logger });
    await expect(gone.deliver(sub, event)).rejects.toThrow(/ECONNREFUSED/);
    await gone.close();
  });

  it('reuses connections (keep-alive)', async () => {
    const { ch, app } = await channelTo(() => ({ status: 200 }));
    for (let i = 0; i < 3; i++) await ch.deliver(sub, event);
    expect(new Set(app.received.map((r) => r.remotePort)).size).toBe(1);
    expect(await ch.post('/configuration/s/k', { id: 'x' })).toBe(200);
    expect(app.received[3]).toMatchObject({ path: '/configuration/s/k', json: { id: 'x' } });
  });
});
