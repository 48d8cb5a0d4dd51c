/**
 * The official Dapr JavaScript SDK (@dapr/dapr, HTTP protocol) against a real sidecar: DaprClient
 * for state, publish, lock, secrets, metadata and health; DaprServer as the app, whose
 * pubsub.subscribe routes (declared on its /dapr/subscribe) receive the published events through
 * the sidecar's real delivery path. The app starts after the sidecar, as it usually does.
 * (The SDK's HTTP client has no configuration API — it throws HTTPNotSupportedError — so
 * configuration over HTTP is covered by test/integration/runtime-api/blocks-http.test.ts.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommunicationProtocolEnum, DaprClient, DaprPubSubStatusEnum, DaprServer, LogLevel } from '@dapr/dapr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../helpers/sidecar.js';
import { eventually, freePort } from '../helpers/runtime.js';

const dir = mkdtempSync(join(tmpdir(), 'capa-sdk-'));
const secretsFile = join(dir, 'secrets.json');
writeFileSync(secretsFile, JSON.stringify({ dbpass: 's3cret', apikey: 'k' }));

const logger = { level: LogLevel.Error };

describe('Dapr JS SDK (HTTP) against the sidecar', () => {
  let sc: Running;
  let client: DaprClient;
  let server: DaprServer;
  const orders: unknown[] = [];
  let flakyCalls = 0;
  const flaky: unknown[] = [];

  beforeAll(async () => {
    const appPort = await freePort();
    sc = await startSidecar(`
app:
  id: sdk-app
  port: ${appPort}
components:
  - name: statestore
    type: state.memory
  - name: pubsub
    type: pubsub.memory
    metadata: { redeliveryDelay: 20ms }
  - name: lockstore
    type: lock.memory
  - name: localsecrets
    type: secretstores.local.file
    metadata: { secretsFile: "${secretsFile}" }
`);
    const daprPort = String(sc.sidecar.runtimeHttpPort);
    const clientOptions = { daprHost: '127.0.0.1', daprPort, communicationProtocol: CommunicationProtocolEnum.HTTP, logger };
    client = new DaprClient(clientOptions);
    server = new DaprServer({ serverHost: '127.0.0.1', serverPort: String(appPort), communicationProtocol: CommunicationProtocolEnum.HTTP, clientOptions, logger });
    await server.pubsub.subscribe('pubsub', 'orders', async (data: unknown) => {
      orders.push(data);
    });
    await server.pubsub.subscribe('pubsub', 'flaky', async (data: unknown) => {
      flaky.push(data);
      return ++flakyCalls < 3 ? DaprPubSubStatusEnum.RETRY : DaprPubSubStatusEnum.SUCCESS;
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    await client?.stop();
    await sc?.stop();
  });

  it('health and metadata: the components, the app id and the DaprServer subscriptions', async () => {
    expect(await client.health.isHealthy()).toBe(true);
    // The sidecar asks the app (started after it) for its subscriptions with backoff.
    let md: any;
    const deadline = Date.now() + 5000;
    do {
      md = await client.metadata.get();
      if (md.subscriptions?.length === 2 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (true);
    expect(md.id).toBe('sdk-app');
    expect(md.components.map((c: any) => c.name).sort()).toEqual(['localsecrets', 'lockstore', 'pubsub', 'statestore']);
    expect(md.subscriptions.map((s: any) => `${s.pubsubname}/${s.topic}`).sort()).toEqual(['pubsub/flaky', 'pubsub/orders']);
  });

  it('state: save, get, getBulk, delete, transaction', async () => {
    await client.state.save('statestore', [
      { key: 'order-1', value: { id: 1, items: ['a'] } },
      { key: 'greeting', value: 'hello' },
    ]);
    expect(await client.state.get('statestore', 'order-1')).toEqual({ id: 1, items: ['a'] });
    const bulk = await client.state.getBulk('statestore', ['order-1', 'greeting', 'missing']);
    const byKey = Object.fromEntries(bulk.map((b: any) => [b.key, b.data]));
    expect(byKey).toMatchObject({ 'order-1': { id: 1, items: ['a'] }, greeting: 'hello' });
    expect(byKey.missing).toBeUndefined();
    await client.state.delete('statestore', 'greeting');
    expect(await client.state.get('statestore', 'greeting')).toBe('');
    await client.state.transaction('statestore', [
      { operation: 'upsert', request: { key: 'tx-1', value: 'one' } },
      { operation: 'delete', request: { key: 'order-1' } },
    ]);
    expect(await client.state.get('statestore', 'tx-1')).toBe('one');
    expect(await client.state.get('statestore', 'order-1')).toBe('');
  });

  it('publish reaches the DaprServer subscription as the original data', async () => {
    const r = await client.pubsub.publish('pubsub', 'orders', { orderId: 42 });
    expect(r.error).toBeUndefined();
    await client.pubsub.publish('pubsub', 'orders', 'plain text');
    await eventually('2 events at the app', () => orders.length === 2);
    expect(orders).toEqual([{ orderId: 42 }, 'plain text']);
  });

  it('a DaprServer handler answering RETRY gets the event again', async () => {
    await client.pubsub.publish('pubsub', 'flaky', { n: 1 });
    await eventually('3 deliveries', () => flaky.length === 3);
    await new Promise((r) => setTimeout(r, 150));
    expect(flaky).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
  });

  it('publish to an unknown pubsub reports the error', async () => {
    const r = await client.pubsub.publish('nope', 'orders', { x: 1 });
    expect(String(r.error)).toMatch(/ERR_PUBSUB_NOT_FOUND|pubsub nope not found/);
  });

  it('lock and unlock', async () => {
    expect(await client.lock.lock('lockstore', 'res-1', 'owner-a', 30)).toEqual({ success: true });
    expect(await client.lock.lock('lockstore', 'res-1', 'owner-b', 30)).toEqual({ success: false });
    expect((await client.lock.unlock('lockstore', 'res-1', 'owner-b')).status).toBe(2); // LockBelongsToOthers
    expect((await client.lock.unlock('lockstore', 'res-1', 'owner-a')).status).toBe(0); // Success
    expect((await client.lock.unlock('lockstore', 'res-1', 'owner-a')).status).toBe(1); // LockDoesNotExist
  });

  it('secrets: get and getBulk', async () => {
    expect(await client.secret.get('localsecrets', 'dbpass')).toEqual({ dbpass: 's3cret' });
    expect(await client.secret.getBulk('localsecrets')).toEqual({ dbpass: { dbpass: 's3cret' }, apikey: { apikey: 'k' } });
  });
});
