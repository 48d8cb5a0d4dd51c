/**
 * Dapr's pub/sub routing rules (subscriptions v2) and message TTL through the real, fully wired
 * sidecar (src/sidecar.ts → src/runtime/runtime.ts → HttpAppChannel): a plain HTTP app declaring
 * `routes: {rules, default}` on /dapr/subscribe, the official Dapr SDK's DaprServer
 * (`subscribeWithOptions` with a route object + `subscribeToRoute` per path), and the Layotto
 * SDK's PublishEvent with `ttlInSeconds`. The unmatched, no-default case runs on the real NATS
 * JetStream so the acknowledgement is checked on the server.
 */
import { randomUUID } from 'node:crypto';
import { CommunicationProtocolEnum, DaprServer, LogLevel } from '@dapr/dapr';
import { Client } from 'layotto';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_URL, deleteJetStream } from '../../conformance/pubsub/matrix.js';
import { eventually, freePort, memoryLogger, startTestApp, type AppReply, type Received } from '../../helpers/runtime.js';
import { startSidecar, type Running } from '../../helpers/sidecar.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const stream = `capa-test-routing-${randomUUID().slice(0, 8)}`;

const SUBSCRIPTIONS = [
  {
    pubsubname: 'pubsub',
    topic: 'inventory',
    routes: {
      rules: [
        { match: 'event.type == "widget"', path: '/widgets' },
        { match: 'event.data.qty > 100', path: '/bulk' },
        { match: "event.type == 'gadget' && event.region == 'eu'", path: '/eu-gadgets' },
      ],
      default: '/products',
    },
  },
  // No default: an event no rule matches is acknowledged and never delivered.
  { pubsubname: 'nats', topic: 'strict', routes: { rules: [{ match: 'event.type == "widget"', path: '/strict-widgets' }] } },
  // Does not compile: this subscription fails, the others work.
  { pubsubname: 'pubsub', topic: 'broken', routes: { rules: [{ match: 'event.type == "widget"', path: '/ok' }, { match: 'event.type ==', path: '/bad' }], default: '/broken' } },
  { pubsubname: 'pubsub', topic: 'ttl', route: '/ttl' },
];

async function metadata(sc: Running): Promise<any> {
  return (await fetch(`http://127.0.0.1:${sc.sidecar.runtimeHttpPort}/v1.0/metadata`)).json();
}

async function waitSubscribed(sc: Running, topics: string[]): Promise<void> {
  const end = Date.now() + 5000;
  let listed: string[] = [];
  while (Date.now() < end) {
    listed = (await metadata(sc)).subscriptions.map((s: any) => s.topic);
    if (topics.every((t) => listed.includes(t))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(listed).toEqual(expect.arrayContaining(topics));
}

describe('routing rules through the wired sidecar: a plain HTTP app', () => {
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let sc: Running;
  const { logger, lines } = memoryLogger();
  const at = (path: string): Received[] => app.received.filter((r) => r.path === path);
  const publishCE = (pubsub: string, topic: string, ce: Record<string, unknown>) =>
    fetch(`http://127.0.0.1:${sc.sidecar.runtimeHttpPort}/v1.0/publish/${pubsub}/${topic}`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(ce) });

  beforeAll(async () => {
    app = await startTestApp((r): AppReply => (r.path === '/dapr/subscribe' ? { status: 200, body: SUBSCRIPTIONS } : { status: 200, body: { status: 'SUCCESS' } }));
    sc = await startSidecar(
      `
app: { id: shop, port: ${app.port} }
components:
  - { name: pubsub, type: pubsub.memory, metadata: { redeliveryDelay: 20ms } }
  - name: nats
    type: pubsub.jetstream
    metadata: { natsURL: "${NATS_URL}", streamName: ${stream}, memoryStorage: "true", redeliveryDelay: 50ms, ackWait: 1s }
`,
      { logger },
    );
    await waitSubscribed(sc, ['inventory', 'strict', 'ttl']);
  });
  afterAll(async () => {
    await sc?.stop();
    await app?.close();
    await deleteJetStream(stream);
  });

  it('each event goes to the first rule that matches it, in order, else to the default path', async () => {
    const events = [
      { id: 'w', type: 'widget', data: { qty: 500 } }, // rules 0 and 1 match: the first wins
      { id: 'b', type: 'gadget', data: { qty: 101 } },
      { id: 'g', type: 'gadget', region: 'eu', data: { qty: 1 } },
      { id: 'us', type: 'gadget', region: 'us', data: { qty: 1 } },
      { id: 'p', type: 'other', data: 'not an object' }, // event.data.qty fails on a string: no match, next rule
    ];
    for (const e of events) expect((await publishCE('pubsub', 'inventory', e)).status).toBe(204);
    await eventually('5 deliveries', () => ['/widgets', '/bulk', '/eu-gadgets', '/products'].reduce((n, p) => n + at(p).length, 0) === 5);
    expect(at('/widgets').map((r) => r.json.id)).toEqual(['w']);
    expect(at('/bulk').map((r) => r.json.id)).toEqual(['b']);
    expect(at('/eu-gadgets').map((r) => r.json.id)).toEqual(['g']);
    expect(at('/products').map((r) => r.json.id).sort()).toEqual(['p', 'us']);
    expect(at('/widgets')[0]!.json).toMatchObject({ type: 'widget', topic: 'inventory', pubsubname: 'pubsub', source: 'shop', data: { qty: 500 } });
  });

  it('no rule matched and no default: not delivered, acknowledged on JetStream (nothing pending, no redelivery)', async () => {
    expect((await publishCE('nats', 'strict', { id: 's1', type: 'gadget', data: {} })).status).toBe(204);
    expect((await publishCE('nats', 'strict', { id: 's2', type: 'widget', data: {} })).status).toBe(204);
    await eventually('the widget', () => at('/strict-widgets').length === 1);
    expect(at('/strict-widgets')[0]!.json.id).toBe('s2');
    const nc = await connect({ servers: NATS_URL });
    try {
      const jsm = await nc.jetstreamManager();
      const consumers = await jsm.consumers.list(stream).next();
      const c = consumers.find((x) => x.config.filter_subject?.endsWith('.strict'));
      expect(c).toBeDefined();
      const end = Date.now() + 3000;
      let info = await jsm.consumers.info(stream, c!.name);
      while ((info.num_ack_pending > 0 || info.delivered.stream_seq < 2) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        info = await jsm.consumers.info(stream, c!.name);
      }
      expect(info).toMatchObject({ num_ack_pending: 0, num_pending: 0, num_redelivered: 0 });
    } finally {
      await nc.close();
    }
    await new Promise((r) => setTimeout(r, 300)); // past redeliveryDelay and beyond: still one delivery
    expect(app.received.filter((r) => r.json?.id === 's1')).toHaveLength(0);
    expect(lines.some((l) => l.level === 20 && l.topic === 'strict' && /no routing rule matched/.test(l.reason))).toBe(true);
  });

  it('an expression that does not compile fails its subscription with an error naming the topic, the rule and the reason; the others work', async () => {
    const err = lines.find((l) => l.level === 50 && l.topic === 'broken')!;
    expect(err).toMatchObject({ pubsub: 'pubsub', rule: 1, match: 'event.type ==' });
    expect(err.msg).toMatch(/subscription skipped \(pubsub pubsub, topic broken\): routing rule 1 \(match "event.type =="\) does not compile/);
    const md = await metadata(sc);
    expect(md.subscriptions.map((s: any) => s.topic).sort()).toEqual(['inventory', 'strict', 'ttl']);
    expect((await publishCE('pubsub', 'broken', { id: 'x', type: 'widget' })).status).toBe(204);
    await new Promise((r) => setTimeout(r, 100));
    expect(at('/ok')).toHaveLength(0);
    expect(at('/broken')).toHaveLength(0);
  });

  it('/v1.0/metadata lists the rules in order, then the default path as a rule without a match', async () => {
    const subs = (await metadata(sc)).subscriptions;
    expect(subs.find((s: any) => s.topic === 'inventory').rules).toEqual([
      { match: 'event.type == "widget"', path: '/widgets' },
      { match: 'event.data.qty > 100', path: '/bulk' },
      { match: "event.type == 'gadget' && event.region == 'eu'", path: '/eu-gadgets' },
      { match: '', path: '/products' },
    ]);
    expect(subs.find((s: any) => s.topic === 'strict').rules).toEqual([{ match: 'event.type == "widget"', path: '/strict-widgets' }]);
    expect(subs.find((s: any) => s.topic === 'ttl').rules).toEqual([{ match: '', path: '/ttl' }]);
  });

  it('Layotto gRPC PublishEvent: ttlInSeconds sets the expiration the app sees; an invalid one is INVALID_ARGUMENT naming it', async () => {
    const client = new Client(String(sc.sidecar.runtimeGrpcPort), '127.0.0.1', { logger: quiet });
    try {
      const before = Date.now();
      await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'ttl', data: { n: 1 }, metadata: { ttlInSeconds: '60' } });
      await eventually('delivery', () => at('/ttl').length === 1);
      const exp = Date.parse(at('/ttl')[0]!.json.expiration);
      expect(exp - before).toBeGreaterThanOrEqual(60_000);
      expect(exp - Date.now()).toBeLessThanOrEqual(60_000);
      const err = await client.pubsub.publish({ pubsubName: 'pubsub', topic: 'ttl', data: { n: 2 }, metadata: { ttlInSeconds: 'soon' } }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 3, details: expect.stringMatching(/ttlInSeconds value must be a valid integer: actual is 'soon'/) });
    } finally {
      client.close();
    }
  });
});

describe('routing rules through the wired sidecar: the Dapr SDK DaprServer (subscribeWithOptions + subscribeToRoute)', () => {
  let sc: Running;
  let app: DaprServer;
  const got: { path: string; data: any }[] = [];

  beforeAll(async () => {
    const appPort = await freePort();
    sc = await startSidecar(`
app: { id: dapr-shop, port: ${appPort} }
components:
  - { name: pubsub, type: pubsub.memory }
`);
    const clientOptions = { daprHost: '127.0.0.1', daprPort: String(sc.sidecar.runtimeHttpPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } };
    app = new DaprServer({ serverHost: '127.0.0.1', serverPort: String(appPort), communicationProtocol: CommunicationProtocolEnum.HTTP, clientOptions, logger: { level: LogLevel.Error } });
    await app.pubsub.subscribeWithOptions('pubsub', 'orders', {
      route: {
        rules: [
          { match: "event.type == 'order.placed'", path: 'placed' },
          { match: 'event.data.total >= 1000', path: 'large' },
        ],
        default: 'other',
      },
    });
    for (const path of ['placed', 'large', 'other']) {
      app.pubsub.subscribeToRoute('pubsub', 'orders', path, async (data: unknown) => {
        got.push({ path, data });
      });
    }
    await app.start();
  });
  afterAll(async () => {
    await app?.stop();
    await sc?.stop();
  });

  it('the SDK\'s routes reach the sidecar and each event reaches the handler of the rule it matches', async () => {
    await waitSubscribed(sc, ['orders']);
    const client = app.client;
    await client.pubsub.publish('pubsub', 'orders', { total: 5000 }, { metadata: { 'cloudevent.type': 'order.placed' } });
    await client.pubsub.publish('pubsub', 'orders', { total: 5000 });
    await client.pubsub.publish('pubsub', 'orders', { total: 5 });
    await eventually('3 events', () => got.length === 3);
    const by = (p: string) => got.filter((g) => g.path === p).map((g) => g.data.total);
    expect(by('placed')).toEqual([5000]);
    expect(by('large')).toEqual([5000]);
    expect(by('other')).toEqual([5]);
  });
});
